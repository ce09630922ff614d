"""The hardening sweep of issue 15, re-runnable: ``python bench/sweep.py``.

Starts ``python app.py`` (waitress, the embedded default; ``--server gunicorn`` for the production
one) on a free port of 127.0.0.1 with a fresh SQLite store, and in one run:
1. **Hostile inputs**: hand-made bad requests (deep JSON, lone surrogates, huge names and labels,
   wrong types, bombs, noise, huge pictures, empty files) and ``--mutations`` mutated image files
   (PNG, JPEG, GIF, TIFF, WebP, BMP) on every task. Counts 5xx answers, errors without the JSON
   body, and the slowest answer.
2. **Starvation**: ``--idle`` connections that send half a request and stop, and ``--heavy``
   clients that post large page photos without pause, while one client asks ``/healthz`` every
   0.1 s: its p50, p99 and slowest answer, and what the heavy clients got (200, 503 busy).
3. **Disk**: one client sends the worst input the server keeps (an 800x800 photo of fine texture,
   below the noise test) as fast as it is answered: bytes the store grows per answer, that times
   the per-client rate limit per hour, and the quota that caps it.
4. **Memory**: the server's RSS fresh, after the heavy phase, and a few seconds later.

Rate limits are raised for phases 1-3 (one address sends everything) and then checked: past the
default limit, answers are 429 with Retry-After. Every phase is bounded in requests and seconds.
Prints a summary and writes it as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.canvas import PNG_LEVEL, SIZE, drawing, image_bytes, png_url  # noqa: E402
from bench.server import HOST, RAISED_LIMITS, Server, multipart, start_server  # noqa: E402
from models.preprocessing import png_data_url, to_png  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", choices=["waitress", "gunicorn"], default="waitress")
    p.add_argument("--mutations", type=int, default=600, help="mutated image files sent (phase 1)")
    p.add_argument("--idle", type=int, default=150, help="half-sent connections held open (phase 2)")
    p.add_argument("--heavy", type=int, default=8, help="clients posting large pages at once (phase 2)")
    p.add_argument("--seconds", type=float, default=30.0, help="length of phases 2 and 3")
    p.add_argument("--out", default=None, help="write the summary here as JSON")
    return p.parse_args()


# ------------------------------------------------------------------ the server
def start(kind: str, tmp: Path, limits_raised: bool) -> Server:
    """The server with a 512 MB store quota, waited for until /readyz answers 200."""
    limits = RAISED_LIMITS if limits_raised else {}
    return start_server(kind, tmp, ready="/readyz", HWR_PREDICTION_QUOTA_MB="512", **limits)


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 60
) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def form(data: bytes, task: str, filename: str = "f.png") -> tuple[bytes, dict]:
    """An upload of ``data`` for ``task``: (body, headers)."""
    body, kind = multipart(data, {"task": task}, filename, boundary="sweep" + str(random.random())[2:])
    return body, {"Content-Type": kind}


# the sweep's own 7 (not bench.canvas.SEVEN: its requests stay byte for byte those of earlier sweeps),
# its pen 1/16 of the side, so the 96 px base of the mutated files keeps a stroke
SWEEP_SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.5, 0.8)]


def seven(size: int = SIZE) -> Image.Image:
    """A drawn 7 on a ``size`` square canvas."""
    return drawing(SWEEP_SEVEN, size=size, width=max(2, size // 16))


def page_photo(side: int = 3800, seed: int = 0) -> bytes:
    """A large photo-like page: rows of digit-like strokes on uneven paper, JPEG (a heavy page)."""
    rng = np.random.default_rng(seed)
    paper = (np.linspace(225, 245, side)[None, :] + rng.normal(0, 2, (side, side))).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(paper).convert("RGB")
    draw = ImageDraw.Draw(img)
    for row in range(8):
        for col in range(10):
            x, y = 250 + col * 330, 300 + row * 420
            draw.line([(x, y), (x + 160, y), (x + 70, y + 230)], fill=(40, 40, 60), width=18)
    return image_bytes(img, "JPEG", quality=85)


# ------------------------------------------------------------------ phase 1: hostile inputs
def hand_made() -> list[tuple[str, str, bytes | None, dict]]:
    """(name, path, body, headers) of the hand-made bad requests."""
    j = {"Content-Type": "application/json"}
    png = to_png(seven(), compress_level=PNG_LEVEL)
    url = png_data_url(png)
    noise = to_png(np.random.default_rng(1).integers(0, 256, (800, 800), dtype=np.uint8), compress_level=PNG_LEVEL)
    huge = Image.new("RGBA", (6300, 6300), (0, 0, 0, 0))
    ImageDraw.Draw(huge).line([(2000, 1500), (2000, 4800)], fill=(0, 0, 0, 255), width=40)
    huge_png = to_png(huge, compress_level=1)
    bomb = to_png(Image.new("1", (10_000, 10_000)), compress_level=PNG_LEVEL)
    cases = [
        ("deep json submit", "/submit", b"[" * 100_000 + b"]" * 100_000, j),
        ("deep json feedback", "/feedback", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, j),
        ("surrogate id", "/feedback", b'{"prediction_id": "\\ud800", "correct": true}', j),
        ("surrogate label", "/feedback", b'{"prediction_id": "x", "correct": false, "label": "\\udfff"}', j),
        ("huge task", "/submit", json.dumps({"image": url, "task": "t" * 100_000}).encode(), j),
        (
            "huge label",
            "/feedback",
            json.dumps({"prediction_id": "x", "correct": False, "label": "L" * 1_000_000}).encode(),
            j,
        ),  # noqa: E501
        ("not json", "/submit", b"{nope", j),
        ("json list", "/submit", b"[1,2]", j),
        ("task object", "/submit", json.dumps({"image": url, "task": {"a": 1}}).encode(), j),
        ("image number", "/submit", b'{"image": 5}', j),
        ("bad base64", "/submit", b'{"image": "data:image/png;base64,@@@@"}', j),
        ("text/plain", "/submit", b"hello", {"Content-Type": "text/plain"}),
        ("no body", "/submit", None, j),
        ("noise page", "/upload", *form(noise, "page")),
        ("noise line", "/upload", *form(noise, "line")),
        ("huge rgba page", "/upload", *form(huge_png, "page")),
        ("huge rgba digit", "/upload", *form(huge_png, "digit")),
        ("bomb", "/upload", *form(bomb, "page")),
        ("empty file", "/upload", *form(b"", "digit")),
        ("empty filename", "/upload", *form(png, "digit", filename="")),
        ("truncated png", "/upload", *form(png[: len(png) // 2], "digit")),
        ("garbage", "/upload", *form(os.urandom(5000), "character")),
        ("unknown task", "/upload", *form(png, "klingon")),
        ("alphabet object", "/submit", json.dumps({"image": url, "task": "character", "alphabet": [1]}).encode(), j),
        ("decoder bogus", "/submit", json.dumps({"image": url, "task": "line", "decoder": "x" * 5000}).encode(), j),
        ("admin no token", "/admin/feedback/export", None, {}),
        ("cross origin", "/submit", json.dumps({"image": url}).encode(), j | {"Origin": "https://evil.example"}),
    ]
    for name in ("healthz", "readyz"):
        cases.append((name, f"/{name}", None, {}))
    return cases


def mutated(rng: random.Random) -> tuple[bytes, str]:
    img = seven(96)
    fmt = rng.choice(["PNG", "JPEG", "GIF", "TIFF", "WEBP", "BMP"])
    data = bytearray(image_bytes(img.convert("P") if fmt == "GIF" else img, fmt))
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(data))
        kind = rng.random()
        if kind < 0.6:
            data[at] = rng.randrange(256)
        elif kind < 0.8:
            data[at:at] = os.urandom(rng.randint(1, 32))
        else:
            del data[max(8, at) :]
    return bytes(data), fmt


def hostile(port: int, mutations: int) -> dict:
    results, slowest, fives, not_json, slow = {}, 0.0, [], [], []
    sent = [(name, path, body, headers) for name, path, body, headers in hand_made()]
    rng = random.Random(15)
    tasks = ["digit", "character", "page", "line"]
    for i in range(mutations):
        data, fmt = mutated(rng)
        sent.append((f"mutated {fmt} {i}", "/upload", *form(data, tasks[i % 4])))
    for name, path, body, headers in sent:
        method = "GET" if path in ("/healthz", "/readyz", "/admin/feedback/export") else "POST"
        t = time.perf_counter()
        try:
            status, _, data = request(port, method, path, body, headers)
        except OSError as exc:
            status, data = 0, str(exc).encode()
        took = time.perf_counter() - t
        slowest = max(slowest, took)
        if took > 1.0:
            slow.append((name, status, round(took, 2), len(body or b"")))
        results[status] = results.get(status, 0) + 1
        if status >= 500 or status == 0:
            fives.append((name, status, data[:200].decode("utf-8", "replace")))
        if status >= 400:
            try:
                assert json.loads(data)["error"]["code"]
            except (ValueError, KeyError, TypeError, AssertionError):
                not_json.append((name, status))
        if not name.startswith("mutated"):
            print(f"  {name}: {status} in {took * 1000:.0f} ms, {len(data):,} bytes")
    return {
        "requests": len(sent),
        "status_counts": dict(sorted(results.items())),
        "server_errors": fives,
        "errors_without_json": not_json,
        "slowest_s": round(slowest, 3),
        "over_1s": slow,
    }


# ------------------------------------------------------------------ phase 2: starvation
HALF_A_REQUEST = b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{"


def idle_connections(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send half a request and then nothing."""
    idle = []
    for _ in range(count):
        s = socket.create_connection((HOST, port), timeout=10)
        s.sendall(HALF_A_REQUEST)
        idle.append(s)
    return idle


@dataclass
class HeavyClients:
    """Clients that post large page photos without pause (after a 503, they wait its Retry-After)."""

    port: int
    clients: int
    pages: list[bytes] = field(default_factory=lambda: [page_photo(seed=i) for i in range(3)])
    status: dict[int, int] = field(default_factory=dict)  # answers by HTTP status (0: no answer)
    times: list[float] = field(default_factory=list)  # seconds of each 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self.post_pages, args=(k,)) for k in range(self.clients)]
        for t in self.threads:
            t.start()

    def stop(self) -> None:
        self.done.set()
        for t in self.threads:
            t.join()

    def post_pages(self, k: int) -> None:
        while not self.done.is_set():
            body, headers = form(self.pages[k % len(self.pages)], "page", "page.jpg")
            t = time.perf_counter()
            try:
                status, head, _ = request(self.port, "POST", "/upload", body, headers, timeout=120)
            except OSError:
                status, head = 0, {}
            with self.lock:
                self.status[status] = self.status.get(status, 0) + 1
                if status == 200:
                    self.times.append(time.perf_counter() - t)
            if status == 503:
                time.sleep(float(head.get("Retry-After", 1)))


def probe_health(server: Server, seconds: float) -> tuple[list[float], int, float]:
    """/healthz every 0.1 s for ``seconds``: its latencies (s), its failures, and the server's peak RSS (MB)."""
    health, failures, peak = [], 0, server.rss_mb()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        try:
            status, _, _ = request(server.port, "GET", "/healthz", timeout=30)
            failures += status != 200
        except OSError:
            failures += 1
        health.append(time.perf_counter() - t)
        peak = max(peak, server.rss_mb())
        time.sleep(0.1)
    return health, failures, peak


def starvation(server: Server, idle_count: int, heavy_clients: int, seconds: float) -> dict:
    idle = idle_connections(server.port, idle_count)
    heavy = HeavyClients(server.port, heavy_clients)
    heavy.start()
    health, failures, peak = probe_health(server, seconds)
    heavy.stop()
    for s in idle:
        s.close()
    lat = np.array(health) * 1000
    return {
        "idle_connections": idle_count,
        "heavy_clients": heavy_clients,
        "healthz_requests": len(health),
        "healthz_failures": failures,
        "healthz_p50_ms": round(float(np.percentile(lat, 50)), 1),
        "healthz_p99_ms": round(float(np.percentile(lat, 99)), 1),
        "healthz_max_ms": round(float(lat.max()), 1),
        "heavy_status_counts": dict(sorted(heavy.status.items())),
        "heavy_page_p50_s": round(float(np.median(heavy.times)), 2) if heavy.times else None,
        "rss_peak_mb": round(peak),
    }


# ------------------------------------------------------------------ phase 3: disk
def store_bytes(tmp: Path) -> int:
    return sum(f.stat().st_size for f in tmp.glob("feedback.sqlite3*"))


def disk(port: int, tmp: Path, seconds: float) -> dict:
    rng = np.random.default_rng(5)
    texture = rng.normal(200, 30, (800, 800)).clip(0, 255).astype(np.uint8)  # fine texture: not "noise"
    img = Image.fromarray(texture).convert("RGB")
    ImageDraw.Draw(img).line([(200, 160), (600, 160), (380, 640)], fill="black", width=40)
    data = to_png(img, compress_level=PNG_LEVEL)
    body, headers = form(data, "digit")
    time.sleep(1)
    before, answered, statuses = store_bytes(tmp), 0, {}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        status, _, _ = request(port, "POST", "/upload", body, headers)
        statuses[status] = statuses.get(status, 0) + 1
        answered += status == 200
    time.sleep(1)
    grown = store_bytes(tmp) - before
    per_answer = grown / max(1, answered)
    return {
        "input_bytes": len(data),
        "answers": answered,
        "status_counts": statuses,
        "store_growth_bytes": grown,
        "bytes_per_answer": round(per_answer),
        "answers_per_second": round(answered / seconds, 1),
        "worst_mb_per_client_hour_at_rate_limit": round(per_answer * 120 * 60 / 1e6, 1),
        "worst_mb_per_client_hour_unlimited": round(per_answer * answered / seconds * 3600 / 1e6, 1),
        "quota_mb": 512,
    }


# ------------------------------------------------------------------ phase 5: rate limits on
def rate_limits(port: int) -> dict:
    url = png_url(seven())
    body = json.dumps({"image": url, "task": "digit"}).encode()
    statuses, retry_after = {}, None
    for _ in range(130):
        status, head, _ = request(port, "POST", "/submit", body, {"Content-Type": "application/json"})
        statuses[status] = statuses.get(status, 0) + 1
        if status == 429:
            retry_after = head.get("Retry-After")
    return {"submits": 130, "status_counts": statuses, "retry_after": retry_after}


def under_load(server: Server, tmp: Path, args, summary: dict) -> None:
    """Phases 1-3 and the memory readings, on a server with raised rate limits, into ``summary``."""
    summary["rss_fresh_mb"] = round(server.rss_mb())
    print("1. hostile inputs")
    summary["hostile"] = hostile(server.port, args.mutations)
    print(json.dumps(summary["hostile"]))
    print(f"2. {args.idle} idle connections and {args.heavy} heavy page clients for {args.seconds:.0f} s")
    summary["starvation"] = starvation(server, args.idle, args.heavy, args.seconds)
    print(json.dumps(summary["starvation"]))
    time.sleep(5)
    summary["rss_after_heavy_mb"] = round(server.rss_mb())
    print(f"3. disk: one client, the worst kept input, {args.seconds:.0f} s")
    summary["disk"] = disk(server.port, tmp, args.seconds)
    print(json.dumps(summary["disk"]))


def main() -> None:
    args = parse_args()
    summary: dict = {"server": args.server, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = start(args.server, tmp, limits_raised=True)
        try:
            under_load(server, tmp, args, summary)
        finally:
            server.stop()
        server = start(args.server, tmp, limits_raised=False)
        try:
            print("4. rate limits at their defaults")
            summary["rate_limits"] = rate_limits(server.port)
            print(json.dumps(summary["rate_limits"]))
        finally:
            server.stop()
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
