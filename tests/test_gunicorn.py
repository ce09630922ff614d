"""The README's production command: gunicorn with gunicorn.conf.py serves /healthz and real
/submit answers on 127.0.0.1, reloads gracefully on HUP (new workers, still answering), sums every
worker's counts in /metrics, and stops cleanly on TERM. One server serves the module's tests; each
step of its life (an answer, the reload, the stop) happens once, in the first test that needs it,
so every test also runs alone."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from functools import cached_property
from pathlib import Path

import pytest

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


class Gunicorn:
    """The module's server and the steps of its life, each taken once, in this order."""

    def __init__(self, tmp_path: Path):
        self.proc, port, self.health = start_gunicorn(tmp_path, HWR_ADMIN_TOKEN="tok")
        self.base = f"http://127.0.0.1:{port}"

    @cached_property
    def first_answer(self) -> dict:
        """The answer to a /submit before any reload."""
        return submit(self.base)

    @cached_property
    def answer_after_reload(self) -> dict:
        """The answer to a /submit once a HUP has replaced every worker (one per core) by a new one."""
        self.first_answer  # noqa: B018 (answered by the workers the reload replaces)
        proc = self.proc
        first = wait_for(
            proc, lambda: workers(proc.pid) if len(workers(proc.pid)) == os.cpu_count() else None, "one worker per core"
        )
        proc.send_signal(signal.SIGHUP)  # graceful reload
        wait_for(proc, lambda: len(workers(proc.pid)) == len(first) and not workers(proc.pid) & first, "new workers")
        return submit(self.base)

    @cached_property
    def exit_code(self) -> int:
        """What the master exits with on TERM."""
        self.proc.terminate()
        return self.proc.wait(timeout=120)


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    server = Gunicorn(tmp_path_factory.mktemp("gunicorn"))
    yield server
    server.exit_code  # noqa: B018 (stopped, if no test did)


def test_gunicorn_serves_health_and_answers(gunicorn):
    health = gunicorn.health
    assert health["status"] == "ok" and "digit" in health["loaded"]  # models loaded before serving
    answer = gunicorn.first_answer
    assert answer["text"] == "7" and len(answer["prediction_id"]) == 32


def test_gunicorn_reloads_gracefully_on_hup(gunicorn):
    assert gunicorn.answer_after_reload["text"] == "7"


def test_metrics_sum_every_worker_those_the_reload_replaced_included(gunicorn):
    gunicorn.answer_after_reload  # noqa: B018 (one answer before the reload, one after)
    scrape = urllib.request.Request(gunicorn.base + "/metrics", headers={"Authorization": "Bearer tok"})
    text = urllib.request.urlopen(scrape, timeout=30).read().decode()
    wanted = ("hwr_requests_total{", 'route="/submit"', 'status="200"')
    submits = [line for line in text.splitlines() if all(part in line for part in wanted)]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in submits) == 2


def test_gunicorn_stops_cleanly_on_term(gunicorn):
    gunicorn.answer_after_reload  # noqa: B018 (stopped after serving and reloading)
    assert gunicorn.exit_code == 0  # a clean stop
