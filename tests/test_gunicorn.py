"""The README's production command: gunicorn with gunicorn.conf.py serves /healthz and real
/submit answers on 127.0.0.1, reloads gracefully on HUP (new workers, still answering), and stops
cleanly on TERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.helpers import SEVEN_URL, post_json, start_gunicorn


def workers(master: int) -> set[int]:
    """The master's worker processes."""
    return {int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def wait_for(proc: subprocess.Popen, check, what: str, seconds: float = 300):
    deadline = time.time() + seconds
    while True:
        try:
            result = check()
            if result:
                return result
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        assert proc.poll() is None, f"gunicorn exited before {what}"
        assert time.time() < deadline, f"gunicorn: no {what} within {seconds} s"
        time.sleep(0.5)


def submit(base: str) -> dict:
    return post_json(base + "/submit", {"image": SEVEN_URL, "task": "digit"})[2]


def test_gunicorn_serves_reloads_and_stops(tmp_path):
    proc, port, health = start_gunicorn(tmp_path, HWR_ADMIN_TOKEN="tok")
    base = f"http://127.0.0.1:{port}"
    try:
        assert health["status"] == "ok" and "digit" in health["loaded"]  # models loaded before serving
        answer = submit(base)
        assert answer["text"] == "7" and len(answer["prediction_id"]) == 32
        first = wait_for(
            proc, lambda: workers(proc.pid) if len(workers(proc.pid)) == os.cpu_count() else None, "one worker per core"
        )
        proc.send_signal(signal.SIGHUP)  # graceful reload
        wait_for(proc, lambda: len(workers(proc.pid)) == len(first) and not workers(proc.pid) & first, "new workers")
        assert submit(base)["text"] == "7"
        # /metrics sums every worker's counts, those of the workers the reload replaced included
        scrape = urllib.request.Request(base + "/metrics", headers={"Authorization": "Bearer tok"})
        text = urllib.request.urlopen(scrape, timeout=30).read().decode()
        wanted = ("hwr_requests_total{", 'route="/submit"', 'status="200"')
        submits = [line for line in text.splitlines() if all(part in line for part in wanted)]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in submits) == 2
    finally:
        proc.terminate()
        code = proc.wait(timeout=120)
    assert code == 0  # a clean stop
