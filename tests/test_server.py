"""The README's first command: ``python app.py`` serves the page and the API over real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from tests.helpers import ROOT, SEVEN_URL, post_json, start_app_py

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
        _, headers, answer = post_json(base + "/submit", {"image": SEVEN_URL, "task": "digit"}, timeout=30)
        assert headers["X-RateLimit-Limit"] == "120"  # rate limits are on by default
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


FAULTS_PER_ARRAY = """
import resource, sys
import numpy as np
from web import allocator
if sys.argv[1] == "tuned":
    assert allocator.keep_freed_memory()
def step():  # four 640 KB temporaries alive at once, as in the glyph path
    a = np.ones(160_000, np.float32)
    b, c = a * 2, a + 1
    return float((b * c).sum())
for _ in range(50):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(500):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 500)
"""


def test_the_app_reuses_freed_memory_for_numpy_temporaries():
    """``create_app`` sets glibc's malloc (web/allocator.py) so an array of a canvas's size is
    carved from memory kept from the last one, not from fresh pages: glibc's defaults page-faulted
    them in (about 600 faults for four arrays of 640 KB), tuned it takes none."""

    def faults(mode: str) -> float:
        run = [sys.executable, "-c", FAULTS_PER_ARRAY, mode]
        return float(subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=True).stdout)

    assert faults("default") > 50
    assert faults("tuned") < 1
