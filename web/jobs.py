"""The teach queue: each teach, and each sheet's training, runs in a worker process of its own
(``python -m training.teach``), at a lower CPU priority, so that training never blocks anybody's
predictions, and one at a time on a machine (the workers take turns through a lock file).

A job is a folder ``<jobs dir>/<job id>/`` with ``request.json``, ``sample.png``, ``pid``,
``worker.log`` and the ``state.json`` its worker keeps up to date, so every server process (or
gunicorn worker) can answer for every job. Finished jobs' folders are removed after a day.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NotRequired

from models.files import write_json
from models.job_state import JobState, failed_state, queued_state, read_state, write_state

ROOT = Path(__file__).resolve().parent.parent
JOB_TTL_SECONDS = 24 * 3600  # a finished job's results (and its sample) are kept this long
ESTIMATE_SECONDS = 45.0  # a teach on 2 cores, worker start included, before any has been measured here


class JobStatus(JobState):
    """``GET /personal/jobs/<id>``: the job's state, its id and what it was asked (``TeachQueue.request``)."""

    job_id: str
    kind: NotRequired[str]  # "sheet" for a sheet's training; absent for a teach
    task: NotRequired[str]
    label: NotRequired[str]
    profile: NotRequired[str]
    pictures: NotRequired[dict[str, dict[str, str]]]  # when done: label -> picture -> URL (``web.personal``)


class QueueFull(Exception):
    """Too many teaches are waiting; ``retry_after`` says in how many seconds to try again."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TeachQueue:
    """Starts teach jobs and answers for them; ``max_waiting`` teaches may wait behind the running one."""

    def __init__(self, jobs_dir: Path, max_waiting: int = 2, nice: int = 10):
        self.dir = Path(jobs_dir)
        self.max_waiting = max_waiting
        self.nice = nice
        self._lock = threading.Lock()

    def _job(self, job_id: str) -> Path | None:
        if not (len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)):
            return None
        folder = self.dir / job_id
        return folder if (folder / "request.json").exists() else None

    def state(self, job_id: str) -> JobStatus | None:
        """The job's state (``None`` for an unknown id); a job whose worker died is marked failed."""
        folder = self._job(job_id)
        if folder is None:
            return None
        state = read_state(folder)
        if state["state"] in ("queued", "running"):
            try:
                pid = int((folder / "pid").read_text())
            except (OSError, ValueError):
                pid = None
            if pid is not None and not _alive(pid) and read_state(folder)["state"] in ("queued", "running"):
                state = failed_state("The teach worker stopped before it finished.")
                write_state(folder, state)
        return state | {"job_id": job_id, **self.request(job_id)}

    def request(self, job_id: str) -> dict:
        """What the job was asked to do (kind: a teach or a sheet; task, label, profile), without
        server paths."""
        folder = self._job(job_id)
        req = json.loads((folder / "request.json").read_text()) if folder else {}
        return {k: req[k] for k in ("kind", "task", "label", "profile") if k in req}

    def _pending(self) -> list[JobStatus]:
        """States of the jobs still queued or running, oldest first."""
        if not self.dir.exists():
            return []
        folders = sorted(self.dir.glob("*/request.json"), key=lambda p: p.stat().st_mtime)
        states = [self.state(p.parent.name) for p in folders]
        return [s for s in states if s and s["state"] in ("queued", "running")]

    def counts(self) -> dict[str, int]:
        """How many teaches are queued and how many are running now."""
        pending = self._pending()
        return {state: sum(1 for s in pending if s["state"] == state) for state in ("queued", "running")}

    def _clean(self) -> None:
        """Remove finished jobs older than ``JOB_TTL_SECONDS`` (disk use stays bounded)."""
        cutoff = time.time() - JOB_TTL_SECONDS
        for folder in self.dir.glob("*"):
            if (
                folder.is_dir()
                and folder.stat().st_mtime < cutoff
                and read_state(folder)["state"] in ("done", "failed")
            ):
                shutil.rmtree(folder, ignore_errors=True)

    def forget(self, profile: str) -> None:
        """Remove the finished jobs of ``profile`` (its samples and results): the profile is deleted."""
        for folder in self.dir.glob("*"):
            if (folder / "request.json").exists() and self.request(folder.name).get("profile") == profile:
                if read_state(folder)["state"] in ("done", "failed"):
                    shutil.rmtree(folder, ignore_errors=True)

    def submit(self, request: dict, sample_png: bytes) -> str:
        """Queue a teach (``request``: task, label, profile, profile_dir, base_dir, weights_dir);
        returns its job id. Raises ``QueueFull`` when ``max_waiting`` teaches already wait."""
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._clean()
            pending = self._pending()
            if len(pending) > self.max_waiting:
                running = sum(float(s.get("eta_s") or ESTIMATE_SECONDS) for s in pending if s["state"] == "running")
                waiting = sum(1 for s in pending if s["state"] == "queued")
                raise QueueFull(int(running + waiting * ESTIMATE_SECONDS) + 1)
            job_id = secrets.token_hex(16)
            folder = self.dir / job_id
            folder.mkdir()
            (folder / "sample.png").write_bytes(sample_png)
            estimate = ESTIMATE_SECONDS * (len(pending) + 1)
            write_state(folder, queued_state(estimate))
            write_json(folder / "request.json", request | {"estimate_s": ESTIMATE_SECONDS})
            self._start(folder)
            return job_id

    def _start(self, folder: Path) -> None:
        log = open(folder / "worker.log", "wb")
        env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "training.teach", "--job", str(folder), "--nice", str(self.nice)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        log.close()
        (folder / "pid").write_text(str(proc.pid))

        def reap() -> None:
            proc.wait()  # no zombie; a crash that wrote no final state is reported as failed
            if read_state(folder)["state"] in ("queued", "running"):
                write_state(folder, failed_state(f"The teach worker ended with status {proc.returncode}."))

        threading.Thread(target=reap, name=f"teach-{folder.name[:8]}", daemon=True).start()
