"""Nothing acknowledged is lost: two real servers (``python app.py``) share one feedback database
(the SQLite file, or a real PostgreSQL server); one is killed with SIGKILL in the middle of a
burst of feedback sent to both, and every feedback either of them acknowledged is there, read by
the survivor, with the value that was acknowledged (or a later one still in flight when it died)."""

from __future__ import annotations

import csv
import io
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.server import COMMANDS, RAISED_LIMITS, Server, spawn
from feedback.store import FeedbackStore, PredictionRow, is_database_url
from tests.helpers import SEVEN_URL, post_json, read_table

TOKEN = "durability-token"


def app_py(tmp_path: Path, target: str) -> Server:
    """``python app.py`` with its feedback store at ``target`` (a file or a URL), not waited for."""
    store = {"DATABASE_URL": target} if is_database_url(target) else {"HWR_FEEDBACK_DB": target}
    # one client address sends the whole burst: the per-client limits (240 feedback a minute)
    # would answer 429 on a fast machine, and this test is about durability, not limits
    env = store | {"HWR_ADMIN_TOKEN": TOKEN, "HWR_THREADS": "8"} | RAISED_LIMITS
    return spawn(COMMANDS["waitress"], tmp_path, **env)


def post(url: str, body: dict) -> dict:
    """The JSON answer; an error answer raises its ``urllib.error.HTTPError``."""
    return post_json(url, body, timeout=30, raise_errors=True)[2]


def test_sigkill_of_one_of_two_instances_loses_no_acknowledged_feedback(store_target, tmp_path):
    servers = [app_py(tmp_path, store_target) for _ in range(2)]  # both start at once, on one new database
    bases = [server.url for server in servers]
    procs = [server.proc for server in servers]
    try:
        for server in servers:
            server.wait_ready(seconds=240)
        image = SEVEN_URL
        pids = [post(bases[i % 2] + "/submit", {"image": image})["prediction_id"] for i in range(48)]
        acked: dict[str, tuple[int, str]] = {}  # prediction id -> (revision, label) last acknowledged
        after_kill = [0]  # acknowledgements the survivor gave once the other was dead
        refused: list[tuple[str, int]] = []  # (server, HTTP status) of answers that were errors
        lock, go, killed, stop = threading.Lock(), threading.Event(), threading.Event(), threading.Event()

        def writer(base: str, mine: list[str]) -> None:
            labels = "0123456789"
            for i in range(10_000):
                if stop.is_set():
                    return
                pid = mine[i % len(mine)]
                label = labels[(i // len(mine)) % 10]
                body = {"prediction_id": pid, "correct": label == "7", "label": label}
                try:
                    ack = post(base + "/feedback", body)
                except urllib.error.HTTPError as exc:  # the server answered, with an error
                    refused.append((base, exc.code))
                    return
                except (urllib.error.URLError, ConnectionError, OSError):
                    return  # its server is gone
                with lock:
                    acked[pid] = (ack["revision"], label)
                    after_kill[0] += killed.is_set()
                if len(acked) >= 24:
                    go.set()

        # writer k rates predictions made by both servers, through server k % 2
        threads = [threading.Thread(target=writer, args=(bases[k % 2], pids[k::8])) for k in range(8)]
        for t in threads:
            t.start()
        assert go.wait(60)
        time.sleep(0.5)  # well inside the burst
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=30)
        killed.set()
        time.sleep(1.0)  # the survivor goes on taking feedback
        stop.set()
        for t in threads:
            t.join(timeout=60)
        with lock:
            acknowledged = dict(acked)
        assert not refused, refused
        assert len(acknowledged) >= 24 and after_kill[0] > 0
        req = urllib.request.Request(
            bases[1] + "/admin/feedback/export?format=csv", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        rows = list(csv.DictReader(io.StringIO(urllib.request.urlopen(req, timeout=30).read().decode())))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
    stored = {r["prediction_id"]: r for r in rows}
    assert len(stored) == len(rows)  # one row per prediction, never duplicated
    revisions = {r["prediction_id"]: r["revision"] for r in read_table(store_target, "SELECT * FROM feedback")}
    for pid, (revision, label) in acknowledged.items():
        assert pid in stored, "an acknowledged feedback is missing after the crash"
        assert revisions[pid] >= revision
        if revisions[pid] == revision:
            assert stored[pid]["correct_label"] == label


def _durability(store: FeedbackStore) -> str:
    """How this thread's connection commits now: SQLite's ``synchronous`` or PostgreSQL's
    ``synchronous_commit``."""
    conn = store._connect()
    if store.engine.name == "sqlite":
        return {2: "full", 1: "normal"}[conn.execute("PRAGMA synchronous").fetchone()[0]]
    return conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"]


def test_answers_share_an_fsync_while_feedback_pays_its_own(store_target):
    store = FeedbackStore(store_target)
    seen = []
    begin = store.engine.begin

    def watched(conn, durable=True):
        begin(conn, durable)
        seen.append(_durability(store))  # what the transaction just opened commits with

    store.engine.begin = watched
    row = PredictionRow("digit", "7", 0.99, False, [], "digit", "1", "3", b"png", b"png")
    pid = store.add_predictions([row])[0]
    store.record_feedback(pid, True, None)
    assert seen == (["normal", "full"] if store.engine.name == "sqlite" else ["off", "on"])
    assert _durability(store) in ("full", "on")  # and the connection is durable again after an answer
    assert store.prediction(pid)["predicted"] == "7"
