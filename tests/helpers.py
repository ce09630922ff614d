"""Helpers shared by tests: reading the feedback database the way another process would."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app_py(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int, dict]:
    """``python app.py`` (the README's first command) on a free port with its store in
    ``tmp_path`` and ``env`` added; waits for ``/healthz`` and returns (process, port, its answer)."""
    port = free_port()
    env = os.environ | {"HWR_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "3",
                        "HWR_FEEDBACK_DB": str(tmp_path / "fb.db")} | env  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 180
    while True:
        try:
            return proc, port, json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5))
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise AssertionError(proc.stdout.read() if proc.stdout else "app.py did not start") from None
            time.sleep(0.5)


def store_target_of(app) -> str:
    """Where the app's feedback store lives: its postgresql:// URL or its SQLite file."""
    return app.config.get("DATABASE_URL") or app.config["FEEDBACK_DB"]


def read_table(where, sql: str, args: tuple = ()) -> list[dict]:
    """Rows of ``sql`` (``?`` placeholders) from an app's store or a store target (file or URL),
    read on a connection of their own, as another process would see them: only what was committed."""
    target = where if isinstance(where, str) else store_target_of(where)
    if target.startswith(("postgresql://", "postgres://")):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(target, row_factory=dict_row) as conn:
            return [dict(r) for r in conn.execute(sql.replace("?", "%s"), args)]
    conn = sqlite3.connect(target)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()
