"""Load on the production server: ``python bench/load.py``.

Starts ``gunicorn -c gunicorn.conf.py`` on a free port of 127.0.0.1 (a fresh SQLite store in a
temporary folder, or ``DATABASE_URL`` when set), or drives ``--url``. For each concurrency level it
measures, in one run:
- ``/healthz`` alone (the baseline);
- each task (``/submit`` of one 280x280 canvas digit, ``/feedback`` on stored answers, ``/upload``
  of one typical handwritten line with ``--tasks ...,line``) with that many clients, while one
  more client asks ``/healthz`` every ``--probe-interval`` seconds, as a health checker would (does
  it queue behind them?).
It also prints how long gunicorn took to answer, each worker's resident memory after the warm-up
and at the end, and whether TensorFlow is mapped into a worker (it should not be: the server runs
ONNX Runtime).
Every phase is bounded twice: a number of requests and a number of seconds, whichever comes first.
Prints throughput and p50/p99 per task and the ratio of each p50 to the ``/healthz`` p50.

The clients run in this process and share the machine's cores with the server: on a small machine
they take some of its CPU, so the figures are a lower bound of what the server alone can do.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.canvas import SEVEN, drawing, png_url  # noqa: E402
from bench.server import RAISED_LIMITS, Server, multipart, rss_mb, start_server  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=None, help="drive this server (http://host:port) instead of starting gunicorn")
    p.add_argument("--concurrency", default="1,4,16", help="comma-separated numbers of concurrent clients")
    p.add_argument("--requests", type=int, default=600, help="requests per phase at most")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per phase at most")
    p.add_argument("--tasks", default="submit,feedback", help="comma-separated tasks: submit, feedback, line")
    p.add_argument(
        "--probe-interval",
        type=float,
        default=0.05,
        help="seconds between the /healthz probe's requests during a task (a health checker is paced; "
        "0 sends them back to back, which takes CPU from the task measured)",
    )
    return p.parse_args()


@dataclass
class Phase:
    """One bounded phase: how many requests are left, until when, and what each took."""

    budget: int
    deadline: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0  # seconds from its first request to its last answer
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        """Whether a client may send one more request (and count it)."""
        with self.lock:
            if self.budget <= 0 or time.perf_counter() >= self.deadline:
                return False
            self.budget -= 1
            return True


def client(
    host: str, port: int, phase: Phase, make_request, stop: threading.Event | None = None, pause: float = 0.0
) -> None:
    """Send requests on one keep-alive connection until the phase (or ``stop``) ends, ``pause``
    seconds apart (0: back to back)."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    while (stop is None or not stop.is_set()) and phase.take():
        if pause and stop is not None and stop.wait(pause):
            break
        method, path, body = make_request()
        body, kind = body if isinstance(body, tuple) else (body, "application/json")
        headers = {"Content-Type": kind} if body is not None else {}
        t = time.perf_counter()
        try:
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
        with phase.lock:
            if ok:
                phase.latencies.append(time.perf_counter() - t)
            else:
                phase.errors += 1
    conn.close()


LINE = ROOT / "tests" / "resources" / "lines" / "a02-086-06.png"  # one typical IAM-OnDB test line, 503x125


def has_tensorflow(pid: int) -> bool:
    """Whether TensorFlow's library is mapped into the process."""
    return "tensorflow" in Path(f"/proc/{pid}/maps").read_text()


def report_workers(server: Server | None, when: str) -> None:
    """Print each worker's memory and whether it holds TensorFlow (only for a server started here)."""
    if server is None:
        return
    for pid in server.workers():
        print(f"worker {pid} {when}: {rss_mb(pid):.0f} MB resident, TensorFlow loaded: {has_tensorflow(pid)}")


def run_phase(host: str, port: int, clients: int, make_request, args, probe: bool) -> tuple[Phase, Phase | None]:
    """``clients`` clients on one task, plus (``probe``) one client on /healthz meanwhile, one
    request every ``args.probe_interval`` seconds, as a load balancer's health check."""
    start = time.perf_counter()
    main = Phase(args.requests, start + args.seconds)
    threads = [threading.Thread(target=client, args=(host, port, main, make_request)) for _ in range(clients)]
    side, stop = None, threading.Event()
    if probe:
        side = Phase(10**9, start + args.seconds)
        threads.append(threading.Thread(target=client, args=(host, port, side, healthz, stop, args.probe_interval)))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads[:clients]:
        t.join()
    main.elapsed = time.perf_counter() - t0
    stop.set()
    for t in threads[clients:]:
        t.join()
    if side is not None:
        side.elapsed = main.elapsed
    return main, side


def healthz():
    return "GET", "/healthz", None


def summary(phase: Phase) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of a phase."""
    lat = np.array(phase.latencies) * 1000
    if not len(lat):
        return 0.0, float("nan"), float("nan")
    return len(lat) / phase.elapsed, float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def connect(url: str | None, tmp: Path) -> tuple[Server | None, str, int]:
    """The server to drive: ``url``'s, or gunicorn started here (None, host, port when ``url``)."""
    if url:
        host, _, port = url.split("//", 1)[1].partition(":")
        return None, host, int(port.rstrip("/") or 80)
    t0 = time.time()
    server = start_server("gunicorn", tmp, **RAISED_LIMITS)
    print(f"gunicorn up in {time.time() - t0:.1f} s on port {server.port} ({os.cpu_count()} cores)")
    return server, server.host, server.port


def feedback_requests(pids: list[str]):
    """A request maker: feedback on ``pids`` in turn, each given the labels 0-9 in turn (right for 7)."""
    counter = iter(range(10**9))
    lock = threading.Lock()

    def feedback():
        with lock:
            i = next(counter)
        label = "0123456789"[(i // len(pids)) % 10]
        body = {"prediction_id": pids[i % len(pids)], "correct": label == "7", "label": label}
        return "POST", "/feedback", json.dumps(body)

    return feedback


def warm_up(host: str, port: int, tasks: list[str]) -> dict:
    """Every worker's first pass (20 /submit) before measuring, and 50 stored answers for the
    feedback task; the request maker of each task."""
    image = json.dumps({"image": png_url(drawing(SEVEN)), "task": "digit"})
    submit = lambda: ("POST", "/submit", image)  # noqa: E731
    client(host, port, Phase(20, time.perf_counter() + 120), submit)
    pids = []
    if "feedback" in tasks:
        req = urllib.request.Request(
            f"http://{host}:{port}/submit", image.encode(), {"Content-Type": "application/json"}
        )
        pids = [json.load(urllib.request.urlopen(req, timeout=60))["prediction_id"] for _ in range(50)]
    line = multipart(LINE.read_bytes(), {"task": "line"}, LINE.name, "image/png")
    return {"submit": submit, "feedback": feedback_requests(pids), "line": lambda: ("POST", "/upload", line)}


def print_header(args) -> None:
    print(f"each phase: at most {args.requests} requests and {args.seconds:.0f} s")
    print("| clients | task | requests | req/s | p50 ms | p99 ms | p50 / healthz p50 | errors |")
    print("|---|---|---|---|---|---|---|---|")


def measure(host: str, port: int, clients: int, makers: dict, tasks: list[str], args) -> None:
    """One concurrency level: /healthz alone, then each task with /healthz probed meanwhile; a row each."""
    base, _ = run_phase(host, port, clients, healthz, args, probe=False)
    rate, h50, h99 = summary(base)
    print(
        f"| {clients} | healthz alone | {len(base.latencies)} | {rate:.0f} | {h50:.2f} | {h99:.2f} | 1.0 "
        f"| {base.errors} |"
    )
    for task in tasks:
        phase, side = run_phase(host, port, clients, makers[task], args, probe=True)
        rate, p50, p99 = summary(phase)
        print(
            f"| {clients} | {task} | {len(phase.latencies)} | {rate:.0f} | {p50:.2f} | {p99:.2f} "
            f"| {p50 / h50:.1f} | {phase.errors} |"
        )
        _, s50, s99 = summary(side)
        print(
            f"| {clients} | healthz during {task} | {len(side.latencies)} | | {s50:.2f} | {s99:.2f} "
            f"| {s50 / h50:.1f} | {side.errors} |"
        )


def main() -> None:
    args = parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        server, host, port = connect(args.url, Path(tmp))
        try:
            makers = warm_up(host, port, tasks)
            report_workers(server, "after the warm-up")
            print_header(args)
            for n in levels:
                measure(host, port, n, makers, tasks, args)
            report_workers(server, "at the end")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
