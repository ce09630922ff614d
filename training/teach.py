"""One job of the web app's queue: ``python -m training.teach --job DIR`` (``web.jobs`` starts
it). The job folder holds ``request.json`` and ``sample.png``; progress and the result go to its
``state.json``. A job teaches one sample (``training.lib.one_sample``) or, with ``"kind": "sheet"``,
trains a profile from a checked handwriting sheet (``training.lib.sheet_profile``).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from models.handwriting_sheets import load_sheet
from models.job_state import done_state, failed_state, running_state, write_state
from training.lib.one_sample import TeachConfig, teach


@dataclass(frozen=True)
class TeachJob:
    """How the worker runs; what to teach is the job's ``request.json`` (its state records the result)."""

    job: Path  # a job folder made by the web app's teach queue
    nice: int = 10  # lower this process's CPU priority by this much: serving requests comes first


def parse_args(argv=None) -> TeachJob:
    d = TeachJob(Path("."))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", type=Path, required=True, help="a job folder made by the web app's teach queue")
    p.add_argument("--nice", type=int, default=d.nice, help="lower this process's CPU priority by this much")
    return TeachJob(**vars(p.parse_args(argv)))


def run_job(job: Path) -> int:
    """Run the job in folder ``job`` (``request.json`` + ``sample.png``), reporting to ``state.json``;
    jobs take turns through a lock file beside them, so one teach runs at a time on this machine."""
    request = json.loads((job / "request.json").read_text())
    with open(job.parent / "teach.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another teach runs
        report = progress_reporter(job, request.get("estimate_s", 60))
        report("prepare", 0.0)
        try:
            record = run_request(job, request, report)
        except Exception as exc:  # the job reports every failure; the worker process then ends
            write_state(job, failed_state(f"{type(exc).__name__}: {exc}"))
            return 1
        write_state(job, done_state(record))
    return 0


def run_request(job: Path, request: dict, report) -> dict:
    """Do what the job asks: train a profile from a checked sheet (``kind`` ``"sheet"``) or teach
    it one sample; returns the record the job's state carries as its result."""
    if request.get("kind") == "sheet":
        from training.lib.sheet_profile import train_personal  # imports TensorFlow: after the job said "prepare"

        report("train", 0.05)
        sheet = load_sheet(Path(request["sheets_root"]), request["sheet_id"])
        return train_personal(sheet, request["profile"], Path(request["profile_dir"]), Path(request["base_dir"]))
    return teach(
        (job / "sample.png").read_bytes(),
        request["task"],
        request["label"],
        Path(request["profile_dir"]),
        report,
        TeachConfig(**request.get("options", {})),
        weights_dir=Path(request["weights_dir"]),
        base_dir=Path(request["base_dir"]),
    )


def progress_reporter(job: Path, estimate_s: float):
    """``report(step, fraction)`` for ``teach``: writes the step, the fraction done and the time
    left (extrapolated from the time so far; ``estimate_s`` until 2% is done) to ``state.json``."""
    started = time.monotonic()

    def report(step: str, fraction: float) -> None:
        elapsed = time.monotonic() - started
        eta = elapsed / fraction - elapsed if fraction > 0.02 else estimate_s
        write_state(job, running_state(step, round(fraction, 3), round(max(eta, 0.0), 1)))

    return report


def main(argv=None) -> None:
    cfg = parse_args(argv)
    if cfg.nice:
        os.nice(cfg.nice)  # serving requests comes first
    sys.exit(run_job(cfg.job))


if __name__ == "__main__":
    main()
