"""A teach job's state: what its worker (``training.teach``) writes to ``<job>/state.json`` as it
goes, and what the teach queue (``web.jobs``) reads back and answers ``GET /personal/jobs/<id>`` with.

The record belongs to the job queue, but it lives here because both of its ends use it: the worker
writes it and the web app reads (and, for a worker that died, writes) it. Both import ``models``,
and neither may import the other (``models`` never imports ``web``; a worker never imports Flask).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NotRequired, TypedDict

from models.files import read_json, write_json

STATE_FILE = "state.json"


class JobState(TypedDict):
    """A job's ``state.json``, key for key, in the order written."""

    state: str  # "queued", "running", "done" or "failed"
    step: str  # what the worker does now: "queued", "prepare", "train", ... then "done" or "failed"
    progress: float  # the fraction done, 0 to 1
    eta_s: NotRequired[float]  # seconds left, estimated; absent until the queue wrote a state
    result: NotRequired[dict[str, Any]]  # when done: the record of what was taught or trained
    error: NotRequired[str]  # when failed: why


def queued_state(eta_s: float) -> JobState:
    """The state of a job just queued, expected to end in ``eta_s`` seconds."""
    return {"state": "queued", "step": "queued", "progress": 0.0, "eta_s": eta_s}


def running_state(step: str, progress: float, eta_s: float) -> JobState:
    """The state of a job at ``step``, ``progress`` of the way, ``eta_s`` seconds from its end."""
    return {"state": "running", "step": step, "progress": progress, "eta_s": eta_s}


def done_state(result: dict[str, Any]) -> JobState:
    """The final state of a job that finished, with its record."""
    return {"state": "done", "step": "done", "progress": 1.0, "eta_s": 0, "result": result}


def failed_state(error: str) -> JobState:
    """The final state of a job that failed, saying why."""
    return {"state": "failed", "step": "failed", "progress": 1.0, "eta_s": 0, "error": error}


def write_state(job: Path, state: JobState) -> None:
    """A teach job's state, for ``GET /personal/jobs/<id>`` (written atomically)."""
    write_json(Path(job) / STATE_FILE, state)


def read_state(job: Path) -> JobState:
    """A teach job's last written state (``queued`` when its worker has not written one yet)."""
    try:
        return read_json(Path(job) / STATE_FILE)
    except (OSError, ValueError):
        return {"state": "queued", "step": "queued", "progress": 0.0}
