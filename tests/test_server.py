"""The README's first command: ``python app.py`` serves the page and the API over real HTTP."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import SEVEN, canvas_digit, data_url, png_bytes, start_app_py

ROOT = Path(__file__).resolve().parent.parent


HALF_A_REQUEST = b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{"


def slow_clients_hold_no_thread(port: int, base: str) -> None:
    """150 connections that send half a request and then nothing (more than waitress's default
    limit of 100, which locked everyone out) leave /healthz answering, and the server closes them
    once HWR_CHANNEL_TIMEOUT (4 s here) has passed."""
    idle = []
    try:
        for _ in range(150):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(HALF_A_REQUEST)
            idle.append(s)
        for path in ("/healthz", "/readyz"):
            assert urllib.request.urlopen(base + path, timeout=10).status == 200
        idle[0].settimeout(60)
        assert idle[0].recv(1024) == b""  # closed by the server, not by this 60 s guard
    finally:
        for s in idle:
            s.close()


def test_python_app_py_serves_page_and_api(tmp_path):
    proc, port, health = start_app_py(tmp_path, HWR_CHANNEL_TIMEOUT="4")
    base = f"http://127.0.0.1:{port}"
    try:
        assert health["status"] == "ok" and "digit" in health["loaded"]  # models preloaded at start-up
        page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        assert "<canvas" in page
        body = json.dumps({"image": data_url(png_bytes(canvas_digit(SEVEN))), "task": "digit"}).encode()
        req = urllib.request.Request(base + "/submit", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.load(resp)
            assert resp.headers["X-RateLimit-Limit"] == "120"  # rate limits are on by default
        assert answer["text"] == "7"
        assert json.load(urllib.request.urlopen(base + "/readyz", timeout=5))["status"] == "ready"
        try:
            urllib.request.urlopen(urllib.request.Request(base + "/submit", b"x", {"Content-Type": "text/plain"}))
            raise AssertionError("a wrong content type must be refused")
        except urllib.error.HTTPError as exc:
            assert exc.code == 415 and json.load(exc)["error"]["code"] == "unsupported_media_type"
        slow_clients_hold_no_thread(port, base)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
