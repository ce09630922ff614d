"""Nothing acknowledged is lost: the real server (``python app.py``) is killed with SIGKILL in the
middle of a burst of feedback, restarted on the same database, and every acknowledged feedback is
there with the value that was acknowledged (or a later one still in flight when it died)."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import SEVEN, canvas_digit, data_url, png_bytes
from tests.test_server import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "durability-token"


def start(db: Path, port: int) -> subprocess.Popen:
    env = os.environ | {"HWR_PORT": str(port), "HWR_FEEDBACK_DB": str(db), "HWR_ADMIN_TOKEN": TOKEN,
                        "HWR_THREADS": "8", "TF_CPP_MIN_LOG_LEVEL": "3"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
            return proc
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None and time.time() < deadline, "the server did not start"
            time.sleep(0.3)


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=30))


def test_sigkill_during_a_burst_loses_no_acknowledged_feedback(tmp_path):
    db, port = tmp_path / "feedback.sqlite3", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(db, port)
    try:
        image = data_url(png_bytes(canvas_digit(SEVEN)))
        pids = [post(base + "/submit", {"image": image})["prediction_id"] for _ in range(48)]
        acked: dict[str, tuple[int, str]] = {}  # prediction id -> (revision, label) last acknowledged
        lock, go = threading.Lock(), threading.Event()

        def writer(mine: list[str]) -> None:
            labels = "0123456789"
            for i in range(10_000):
                pid = mine[i % len(mine)]
                label = labels[(i // len(mine)) % 10]
                body = {"prediction_id": pid, "correct": label == "7", "label": label}
                try:
                    ack = post(base + "/feedback", body)
                except (urllib.error.URLError, ConnectionError, OSError):
                    return  # the server is gone
                with lock:
                    acked[pid] = (ack["revision"], label)
                if len(acked) >= 24:
                    go.set()

        threads = [threading.Thread(target=writer, args=(pids[k::8],)) for k in range(8)]
        for t in threads:
            t.start()
        assert go.wait(60)
        time.sleep(0.5)  # well inside the burst
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for t in threads:
            t.join(timeout=60)
        with lock:
            acknowledged = dict(acked)
        assert len(acknowledged) >= 24
    finally:
        if proc.poll() is None:
            proc.kill()

    proc = start(db, port)  # restart on the same database
    try:
        req = urllib.request.Request(base + "/admin/feedback/export?format=csv",
                                     headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
        rows = list(csv.DictReader(io.StringIO(urllib.request.urlopen(req, timeout=30).read().decode())))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    stored = {r["prediction_id"]: r for r in rows}
    assert len(stored) == len(rows)  # one row per prediction, never duplicated
    import sqlite3

    conn = sqlite3.connect(db)
    revisions = dict(conn.execute("SELECT prediction_id, revision FROM feedback").fetchall())
    conn.close()
    for pid, (revision, label) in acknowledged.items():
        assert pid in stored, "an acknowledged feedback is missing after the crash"
        assert revisions[pid] >= revision
        if revisions[pid] == revision:
            assert stored[pid]["correct_label"] == label
