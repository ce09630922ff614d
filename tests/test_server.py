"""The README's first command: ``python app.py`` serves the page and the API over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import SEVEN, canvas_digit, data_url, png_bytes

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_app_py_serves_page_and_api(tmp_path):
    port = free_port()
    env = os.environ | {"HWR_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "3", "HWR_FEEDBACK_DB": str(tmp_path / "fb.db")}
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                health = json.load(urllib.request.urlopen(base + "/healthz", timeout=5))
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.5)
        assert health["status"] == "ok" and "digit" in health["loaded"]  # models preloaded at start-up
        page = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        assert "<canvas" in page
        body = json.dumps({"image": data_url(png_bytes(canvas_digit(SEVEN))), "task": "digit"}).encode()
        req = urllib.request.Request(base + "/submit", body, {"Content-Type": "application/json"})
        answer = json.load(urllib.request.urlopen(req, timeout=30))
        assert answer["text"] == "7"
        try:
            urllib.request.urlopen(urllib.request.Request(base + "/submit", b"x", {"Content-Type": "text/plain"}))
            raise AssertionError("a wrong content type must be refused")
        except urllib.error.HTTPError as exc:
            assert exc.code == 415 and json.load(exc)["error"]["code"] == "unsupported_media_type"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
