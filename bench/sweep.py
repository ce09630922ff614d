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
import base64
import http.client
import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


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
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(kind: str, tmp: Path, limits_raised: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = os.environ | {
        "HWR_PORT": str(port),
        "HWR_FEEDBACK_DB": str(tmp / "feedback.sqlite3"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "HWR_PREDICTION_QUOTA_MB": "512",
    }
    if limits_raised:
        env |= {"HWR_RATELIMIT_RECOGNITION": "1000000 per minute", "HWR_RATELIMIT_FEEDBACK": "1000000 per minute"}
    cmd = (
        [sys.executable, "app.py"]
        if kind == "waitress"
        else [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py"]
    )
    log = open(tmp / f"server-{port}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while True:
        try:
            status, _, _ = request(port, "GET", "/readyz", timeout=5)
            if status == 200:
                return proc, port
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"the server did not start: see {log.name}")
        time.sleep(0.5)


def rss_mb(proc: subprocess.Popen) -> float:
    """Resident memory of the server and its children (gunicorn workers), in MB."""
    pids = [proc.pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        pids += [int(p) for p in out]
    except OSError:
        pass
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


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


def multipart(data: bytes, task: str, filename: str = "f.png") -> tuple[bytes, dict]:
    boundary = "sweep" + str(random.random())[2:]
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="task"\r\n\r\n{task}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def encode(img: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def seven(size: int = 280) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).line(
        [(size // 4, size // 5), (3 * size // 4, size // 5), (size // 2, 4 * size // 5)],
        fill="black",
        width=max(2, size // 16),
    )
    return img


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
    return encode(img, "JPEG", quality=85)


# ------------------------------------------------------------------ phase 1: hostile inputs
def hand_made() -> list[tuple[str, str, bytes | None, dict]]:
    """(name, path, body, headers) of the hand-made bad requests."""
    j = {"Content-Type": "application/json"}
    png = encode(seven())
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    noise = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (800, 800), dtype=np.uint8)))
    huge = Image.new("RGBA", (6300, 6300), (0, 0, 0, 0))
    ImageDraw.Draw(huge).line([(2000, 1500), (2000, 4800)], fill=(0, 0, 0, 255), width=40)
    huge_png = encode(huge, compress_level=1)
    bomb = encode(Image.new("1", (10_000, 10_000)))
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
        ("noise page", "/upload", *multipart(noise, "page")),
        ("noise line", "/upload", *multipart(noise, "line")),
        ("huge rgba page", "/upload", *multipart(huge_png, "page")),
        ("huge rgba digit", "/upload", *multipart(huge_png, "digit")),
        ("bomb", "/upload", *multipart(bomb, "page")),
        ("empty file", "/upload", *multipart(b"", "digit")),
        ("empty filename", "/upload", *multipart(png, "digit", filename="")),
        ("truncated png", "/upload", *multipart(png[: len(png) // 2], "digit")),
        ("garbage", "/upload", *multipart(os.urandom(5000), "character")),
        ("unknown task", "/upload", *multipart(png, "klingon")),
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
    data = bytearray(encode(img.convert("P") if fmt == "GIF" else img, fmt))
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
        sent.append((f"mutated {fmt} {i}", "/upload", *multipart(data, tasks[i % 4])))
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
def starvation(port: int, idle_count: int, heavy_clients: int, seconds: float, proc) -> dict:
    half = b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999\r\n\r\n{"
    idle = []
    for _ in range(idle_count):
        s = socket.create_connection((HOST, port), timeout=10)
        s.sendall(half)
        idle.append(s)
    pages = [page_photo(seed=i) for i in range(3)]
    stop = threading.Event()
    heavy_status: dict[int, int] = {}
    heavy_times: list[float] = []
    lock = threading.Lock()

    def heavy(k: int):
        while not stop.is_set():
            body, headers = multipart(pages[k % len(pages)], "page", "page.jpg")
            t = time.perf_counter()
            try:
                status, head, _ = request(port, "POST", "/upload", body, headers, timeout=120)
            except OSError:
                status, head = 0, {}
            with lock:
                heavy_status[status] = heavy_status.get(status, 0) + 1
                if status == 200:
                    heavy_times.append(time.perf_counter() - t)
            if status == 503:
                time.sleep(float(head.get("Retry-After", 1)))

    threads = [threading.Thread(target=heavy, args=(k,)) for k in range(heavy_clients)]
    for t in threads:
        t.start()
    health, failures, peak = [], 0, rss_mb(proc)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        try:
            status, _, _ = request(port, "GET", "/healthz", timeout=30)
            failures += status != 200
        except OSError:
            failures += 1
        health.append(time.perf_counter() - t)
        peak = max(peak, rss_mb(proc))
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
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
        "heavy_status_counts": dict(sorted(heavy_status.items())),
        "heavy_page_p50_s": round(float(np.median(heavy_times)), 2) if heavy_times else None,
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
    data = encode(img, "PNG")
    body, headers = multipart(data, "digit")
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
    url = "data:image/png;base64," + base64.b64encode(encode(seven())).decode()
    body = json.dumps({"image": url, "task": "digit"}).encode()
    statuses, retry_after = {}, None
    for _ in range(130):
        status, head, _ = request(port, "POST", "/submit", body, {"Content-Type": "application/json"})
        statuses[status] = statuses.get(status, 0) + 1
        if status == 429:
            retry_after = head.get("Retry-After")
    return {"submits": 130, "status_counts": statuses, "retry_after": retry_after}


def main() -> None:
    args = parse_args()
    summary: dict = {"server": args.server, "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        proc, port = start_server(args.server, tmp, limits_raised=True)
        try:
            summary["rss_fresh_mb"] = round(rss_mb(proc))
            print("1. hostile inputs")
            summary["hostile"] = hostile(port, args.mutations)
            print(json.dumps(summary["hostile"]))
            print(f"2. {args.idle} idle connections and {args.heavy} heavy page clients for {args.seconds:.0f} s")
            summary["starvation"] = starvation(port, args.idle, args.heavy, args.seconds, proc)
            print(json.dumps(summary["starvation"]))
            time.sleep(5)
            summary["rss_after_heavy_mb"] = round(rss_mb(proc))
            print(f"3. disk: one client, the worst kept input, {args.seconds:.0f} s")
            summary["disk"] = disk(port, tmp, args.seconds)
            print(json.dumps(summary["disk"]))
        finally:
            proc.terminate()
            proc.wait(timeout=120)
        proc, port = start_server(args.server, tmp, limits_raised=False)
        try:
            print("4. rate limits at their defaults")
            summary["rate_limits"] = rate_limits(port)
            print(json.dumps(summary["rate_limits"]))
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
