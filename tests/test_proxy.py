"""The production layout's reverse proxy: Debian's nginx runs ``deploy/nginx.conf`` as shipped (its
two ports changed) in front of ``python app.py`` with ``HWR_PROXY_HOPS=1``. Skipped where nginx is
not installed, except under CI, where that is a failure (scripts/test.sh installs it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.server import free_port
from tests.helpers import ROOT, SEVEN_URL, post_json, start_app_py

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


@pytest.fixture
def nginx_binary():
    if NGINX is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the reverse-proxy test: install Debian's nginx-light")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return NGINX


def start_nginx(binary: str, prefix: Path, listen: int, upstream: int) -> subprocess.Popen:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "listen 127.0.0.1:8080;" in conf and "server 127.0.0.1:5000;" in conf
    conf = conf.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{listen};")
    conf = conf.replace("server 127.0.0.1:5000;", f"server 127.0.0.1:{upstream};")
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(conf)
    cmd = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", listen), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(proc.stdout.read() if proc.stdout else "nginx did not start") from None
            time.sleep(0.2)


def test_behind_nginx_clients_are_told_apart_and_slow_ones_wait_at_the_proxy(tmp_path, nginx_binary):
    app, app_port, _ = start_app_py(tmp_path, HWR_PROXY_HOPS="1", HWR_RATELIMIT_RECOGNITION="2 per minute")
    proxy_port = free_port()
    nginx = start_nginx(nginx_binary, tmp_path / "nginx", proxy_port, app_port)
    base = f"http://127.0.0.1:{proxy_port}"
    body = {"image": SEVEN_URL, "task": "digit"}
    idle = []
    try:
        status, headers, answer = post_json(base + "/submit", body)
        assert status == 200 and answer["text"] == "7"
        assert len(headers["X-Request-ID"]) == 32  # nginx's $request_id, passed on by the app
        assert post_json(base + "/submit", body)[0] == 200
        status, headers, refused = post_json(base + "/submit", body)
        assert status == 429 and refused["error"]["code"] == "rate_limited" and int(headers["Retry-After"]) >= 1
        # a client cannot claim another address: nginx appends the real one, the app believes one hop
        assert post_json(base + "/submit", body, {"X-Forwarded-For": "198.51.100.7"})[0] == 429
        # 150 clients that send half a header hold nginx connections, not the app's: it still
        # answers, through the proxy and directly, and nginx drops them after client_header_timeout
        for _ in range(150):
            s = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
            s.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: app")
            idle.append(s)
        for url in (base + "/healthz", base + "/readyz", f"http://127.0.0.1:{app_port}/healthz"):
            assert urllib.request.urlopen(url, timeout=10).status == 200
        idle[0].settimeout(60)
        assert not idle[0].recv(1024)  # closed by nginx (10 s), not by this 60 s guard
    finally:
        for s in idle:
            s.close()
        nginx.terminate()
        app.terminate()
        nginx.wait(timeout=30)
        app.wait(timeout=30)
