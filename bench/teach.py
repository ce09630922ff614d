"""Teaching a profile over real HTTP, and what it costs everybody else:
``python bench/teach.py [--clients 4] [--seconds 20]``.

Starts the production server (``python app.py``: waitress, models preloaded) on a free port of
127.0.0.1 with its data in a temporary folder, then
1. idle: ``--clients`` concurrent clients send ``POST /submit`` (a drawn digit) and ``GET /healthz``
   (the bare route) for ``--seconds``;
2. teaching: one drawn "2" is taught with ``POST /personal/teach`` and the same load runs until the
   job is done; the teach's time is measured from the POST to the job's ``done``.
It prints p50/p90/p99 of both routes in both phases, /submit as a ratio to /healthz in the same
phase, requests per second, and the teach time. Traffic goes to 127.0.0.1 only, bounded in count.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.canvas import drawing, png_url  # noqa: E402
from bench.server import RAISED_LIMITS, start_server  # noqa: E402

MAX_REQUESTS_PER_CLIENT = 5000  # a hard bound on the load, whatever the phase's length
TWO_STROKE = [(0.3, 0.3), (0.45, 0.2), (0.62, 0.25), (0.65, 0.4), (0.5, 0.55), (0.3, 0.75), (0.7, 0.75)]
TWO = png_url(drawing(TWO_STROKE, joint="curve"))
SEVEN = png_url(drawing([(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)], joint="curve"))


def call(url: str, body: dict | None = None) -> tuple[int, dict, float]:
    """(status, JSON body, milliseconds) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    return status, json.loads(payload or b"{}"), (time.perf_counter() - start) * 1000


def load(base: str, clients: int, until) -> dict[str, list[float]]:
    """Run ``clients`` clients, each alternating /submit and /healthz, until ``until()`` is true."""
    times: dict[str, list[float]] = {"submit": [], "healthz": []}
    errors = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if until():
                return
            s1, _, t1 = call(base + "/submit", {"image": SEVEN, "task": "digit"})
            s2, _, t2 = call(base + "/healthz")
            with lock:
                times["submit"].append(t1)
                times["healthz"].append(t2)
                if s1 != 200 or s2 != 200:
                    errors.append((s1, s2))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times["seconds"] = [time.monotonic() - started]
    times["errors"] = errors
    return times


def summary(times: dict) -> dict:
    out = {}
    for route in ("submit", "healthz"):
        ms = np.array(times[route])
        out[route] = {f"p{q}": round(float(np.percentile(ms, q)), 1) for q in (50, 90, 99)} | {"n": len(ms)}
    out["submit_over_healthz_p50"] = round(out["submit"]["p50"] / out["healthz"]["p50"], 1)
    out["submit_per_s"] = round(len(times["submit"]) / times["seconds"][0], 1)
    out["errors"] = len(times["errors"])
    return out


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=4, help="concurrent clients")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the idle phase")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args()


def teach_under_load(base: str, clients: int) -> tuple[dict, dict, float]:
    """Teach the drawn 2 to the profile "bench" and run the load until its job is done or failed:
    (the load's times, the job's last state, seconds from the POST to the job's end)."""
    status, job, _ = call(base + "/personal/teach", {"image": TWO, "task": "digit", "label": "2", "profile": "bench"})
    assert status == 202, job
    posted = time.monotonic()
    state = {"state": "queued"}

    def finished() -> bool:
        return state["state"] in ("done", "failed")

    def follow() -> None:
        while not finished():
            state.update(call(base + job["status_url"])[1])
            time.sleep(0.25)

    watcher = threading.Thread(target=follow)
    watcher.start()
    busy = load(base, clients, finished)
    watcher.join()
    return busy, state, round(time.monotonic() - posted, 1)


def measure(base: str, clients: int, seconds: float) -> dict:
    """A warm-up, the idle phase, the teaching phase, and a read with the taught profile."""
    for _ in range(20):
        call(base + "/submit", {"image": SEVEN, "task": "digit"})
    end = time.monotonic() + seconds
    idle = load(base, clients, lambda: time.monotonic() > end)
    busy, state, teach_s = teach_under_load(base, clients)
    answer = call(base + "/submit", {"image": TWO, "task": "digit", "profile": "bench"})[1]
    return {
        "idle": summary(idle),
        "while_teaching": summary(busy),
        "teach": {
            "state": state["state"],
            "seconds_post_to_done": teach_s,
            "seconds_in_worker": state.get("result", {}).get("seconds"),
            "timings": state.get("result", {}).get("timings"),
        },
        "answer_with_profile": {k: answer.get(k) for k in ("text", "model", "writer")},
        "machine": {"cpus": os.cpu_count(), "clients": clients},
    }


def report(result: dict) -> None:
    print(f"{'phase':<16}{'route':<10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'n':>7}")
    for phase in ("idle", "while_teaching"):
        for route in ("submit", "healthz"):
            s = result[phase][route]
            print(f"{phase:<16}{route:<10}{s['p50']:>9}{s['p90']:>9}{s['p99']:>9}{s['n']:>7}")
        r = result[phase]
        print(
            f"{'':<16}/submit p50 = {r['submit_over_healthz_p50']}x /healthz, {r['submit_per_s']} /submit per s, "
            f"{r['errors']} errors"
        )
    print(f"teach: {json.dumps(result['teach'])}")
    print(f"answer with the profile: {json.dumps(result['answer_with_profile'])}")


def main() -> None:
    args = parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hwr-bench-teach-"))
    server = start_server("waitress", tmp, HWR_PERSONAL_DIR=str(tmp / "personal"), **RAISED_LIMITS)
    try:
        result = measure(server.url, args.clients, args.seconds)
    finally:
        server.stop(30)
    if args.json:
        print(json.dumps(result))
    else:
        report(result)


if __name__ == "__main__":
    main()
