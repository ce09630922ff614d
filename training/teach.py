"""One teach job of the web app's queue: ``python -m training.teach --job DIR`` (``web.jobs``
starts it). The job folder holds ``request.json`` and ``sample.png``; progress and the result go
to its ``state.json``. What a teach does is ``training.teaching``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from training.teaching import TeachConfig, teach


def run_job(job: Path) -> int:
    """Run the job in folder ``job`` (``request.json`` + ``sample.png``), reporting to ``state.json``;
    jobs take turns through a lock file beside them, so one teach runs at a time on this machine."""
    import fcntl

    from models.profiles import write_state

    request = json.loads((job / "request.json").read_text())
    with open(job.parent / "teach.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another teach runs
        started = time.monotonic()

        def report(step: str, fraction: float) -> None:
            elapsed = time.monotonic() - started
            eta = elapsed / fraction - elapsed if fraction > 0.02 else request.get("estimate_s", 60)
            write_state(
                job,
                {"state": "running", "step": step, "progress": round(fraction, 3), "eta_s": round(max(eta, 0.0), 1)},
            )

        report("prepare", 0.0)
        try:
            record = teach(
                (job / "sample.png").read_bytes(),
                request["task"],
                request["label"],
                Path(request["profile_dir"]),
                report,
                TeachConfig(**request.get("options", {})),
                weights_dir=Path(request["weights_dir"]),
                base_dir=Path(request["base_dir"]),
            )
        except Exception as exc:  # the job reports every failure; the worker process then ends
            write_state(
                job,
                {
                    "state": "failed",
                    "step": "failed",
                    "progress": 1.0,
                    "eta_s": 0,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            return 1
        write_state(job, {"state": "done", "step": "done", "progress": 1.0, "eta_s": 0, "result": record})
    return 0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--job", type=Path, required=True, help="a job folder made by the web app's teach queue")
    p.add_argument("--nice", type=int, default=10, help="lower this process's CPU priority by this much")
    args = p.parse_args(argv)
    if args.nice:
        os.nice(args.nice)  # serving requests comes first
    sys.exit(run_job(args.job))


if __name__ == "__main__":
    main()
