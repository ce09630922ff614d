"""The embedded feedback store: SQLite, written first, the source of truth for everything else.

Every prediction the app answers is recorded (input image and the 28x28 the model saw, both PNG,
with the label, confidence, model and preprocessing versions), so a later yes/no can be tied to
it. Predictions nobody gave feedback on are deleted after ``prediction_ttl`` seconds. Feedback is
one row per prediction (a second answer updates it and bumps its revision); each write is one
transaction, committed with ``synchronous=FULL`` before the caller acknowledges it. The Google
Sheets copy (``feedback.sheets``) reads pending rows from here and marks what it sent.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 2
MIGRATIONS = {  # version -> SQL that brings the previous version to it; never edit a released one
    1: """
    CREATE TABLE predictions (
        id TEXT PRIMARY KEY,                -- uuid4 hex, returned to the client as prediction_id
        created_at TEXT NOT NULL,           -- UTC ISO 8601
        task TEXT NOT NULL,
        predicted TEXT NOT NULL,            -- the top candidate (also when the answer was "not sure")
        confidence REAL NOT NULL,
        unsure INTEGER NOT NULL,
        candidates TEXT NOT NULL,           -- JSON list of {label, probability}
        model_name TEXT NOT NULL,
        model_version TEXT NOT NULL,
        preprocessing_version TEXT NOT NULL,
        input_png BLOB NOT NULL,            -- the image as the preprocessing received it
        model_input_png BLOB NOT NULL       -- the 28x28 the model saw
    );
    CREATE INDEX predictions_created ON predictions(created_at);
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY AUTOINCREMENT,  -- the row id sent to Google Sheets
        prediction_id TEXT NOT NULL UNIQUE REFERENCES predictions(id),
        correct INTEGER NOT NULL,
        label TEXT,                         -- the right label, NULL when the person did not say
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        revision INTEGER NOT NULL DEFAULT 1,
        synced_revision INTEGER NOT NULL DEFAULT 0  -- revision last copied to the sheet
    );
    CREATE INDEX feedback_pending ON feedback(id) WHERE revision > synced_revision;
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,              -- one sync at a time across processes
        owner TEXT NOT NULL,
        expires REAL NOT NULL
    );
    """,
    2: """
    -- 'glyph': input_png is the whole image of one character; 'page': it is a crop of a page
    -- around the glyph (neighbours and ruling included), so retraining uses model_input_png
    ALTER TABLE predictions ADD COLUMN source TEXT NOT NULL DEFAULT 'glyph';
    """,
}


class StoreError(RuntimeError):
    """The database cannot be used by this code (for example, made by a newer version)."""


class UnknownPrediction(LookupError):
    """Feedback names a prediction the store does not have (never made, or expired)."""


@dataclass(frozen=True)
class FeedbackRow:
    """One feedback row joined with its prediction: what export, sync and retraining read."""

    id: int
    prediction_id: str
    task: str
    predicted: str
    confidence: float
    correct: bool
    label: str | None
    created_at: str
    updated_at: str
    revision: int
    model_name: str
    model_version: str
    preprocessing_version: str
    input_png: bytes
    model_input_png: bytes
    source: str = "glyph"  # "glyph" or "page" (see migration 2)


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FeedbackStore:
    """Connections, schema and every query on the feedback database; thread-safe."""

    def __init__(self, path: Path | str, prediction_ttl: float = 7 * 24 * 3600):
        self.path = Path(path)
        self.prediction_ttl = prediction_ttl
        self._local = threading.local()
        self._writes = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # -------------------------------------------------------------- connection and schema
    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we acknowledge it
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken immediately, so writers queue instead of failing)."""
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                conn.execute("ROLLBACK")
            raise

    def _migrate(self) -> None:
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path.name} has schema version {version}; this code knows up to {SCHEMA_VERSION}. "
                    "Upgrade the app or point it at another database."
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[target]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")

    def schema_version(self) -> int:
        """The schema version of the open database."""
        return self._connect().execute("PRAGMA user_version").fetchone()[0]

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -------------------------------------------------------------- predictions and feedback
    def add_prediction(
        self,
        task: str,
        predicted: str,
        confidence: float,
        unsure: bool,
        candidates: list[dict],
        model_name: str,
        model_version: str,
        preprocessing_version: str,
        input_png: bytes,
        model_input_png: bytes,
        source: str = "glyph",
    ) -> str:
        """Record one answer and return its new prediction id."""
        args = (task, predicted, confidence, unsure, candidates, model_name, model_version, preprocessing_version)
        return self.add_predictions([(*args, input_png, model_input_png)], source)[0]

    def add_predictions(self, rows: list[tuple], source: str = "glyph") -> list[str]:
        """Record many answers (``add_prediction``'s arguments, in order) in one transaction; their ids."""
        ids = [uuid.uuid4().hex for _ in rows]
        stamp = now_iso()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO predictions (id, created_at, task, predicted, confidence, unsure, candidates, model_name,"
                " model_version, preprocessing_version, input_png, model_input_png, source)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(pid, stamp, task, predicted, float(conf), int(unsure), json.dumps(cands), name, version, prep,
                  input_png, seen_png, source)
                 for pid, (task, predicted, conf, unsure, cands, name, version, prep, input_png, seen_png)
                 in zip(ids, rows, strict=True)],
            )  # fmt: skip
        self._writes += len(rows)
        if self._writes >= 200:
            self._writes = 0
            self.prune_predictions()
        return ids

    def prediction(self, prediction_id: str) -> sqlite3.Row:
        """The stored prediction; raises ``UnknownPrediction``."""
        row = self._connect().execute("SELECT * FROM predictions WHERE id = ?", (prediction_id,)).fetchone()
        if row is None:
            raise UnknownPrediction(prediction_id)
        return row

    def record_feedback(self, prediction_id: str, correct: bool, label: str | None) -> tuple[int, int]:
        """Insert or update the feedback on one prediction in one committed transaction.

        Returns (feedback id, revision). Raises ``UnknownPrediction``.
        """
        stamp = now_iso()
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM predictions WHERE id = ?", (prediction_id,)).fetchone() is None:
                raise UnknownPrediction(prediction_id)
            row = conn.execute(
                """INSERT INTO feedback (prediction_id, correct, label, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT(prediction_id) DO UPDATE SET
                     correct = excluded.correct, label = excluded.label,
                     updated_at = excluded.updated_at, revision = feedback.revision + 1
                   WHERE feedback.correct IS NOT excluded.correct OR feedback.label IS NOT excluded.label
                   RETURNING id, revision""",
                (prediction_id, int(correct), label, stamp, stamp),
            ).fetchone()
            if row is None:  # the same answer again: nothing changed
                row = conn.execute(
                    "SELECT id, revision FROM feedback WHERE prediction_id = ?", (prediction_id,)
                ).fetchone()
        return int(row["id"]), int(row["revision"])

    def prune_predictions(self, now: float | None = None) -> int:
        """Delete predictions older than the TTL that never got feedback; returns how many."""
        cutoff = dt.datetime.fromtimestamp((now or time.time()) - self.prediction_ttl, dt.timezone.utc)
        cutoff_iso = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM predictions WHERE created_at < ? AND id NOT IN (SELECT prediction_id FROM feedback)",
                (cutoff_iso,),
            )
        return cur.rowcount

    # -------------------------------------------------------------- reading feedback
    _ROWS = """SELECT f.id, f.prediction_id, p.task, p.predicted, p.confidence, f.correct, f.label,
                      f.created_at, f.updated_at, f.revision, p.model_name, p.model_version,
                      p.preprocessing_version, p.input_png, p.model_input_png, p.source
               FROM feedback f JOIN predictions p ON p.id = f.prediction_id"""

    def feedback(self, task: str | None = None, labelled_only: bool = False, images: bool = True) -> list[FeedbackRow]:
        """Every feedback row (optionally of one task, or only those with a known right label), by id.
        With ``images=False`` the PNG fields are empty (a CSV export needs no pictures)."""
        where, args = [], []
        if task:
            where.append("p.task = ?")
            args.append(task)
        if labelled_only:
            where.append("f.label IS NOT NULL")
        rows = (
            self._ROWS
            if images
            else self._ROWS.replace("p.input_png, p.model_input_png", "x'' AS input_png, x'' AS model_input_png")
        )
        sql = rows + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY f.id"
        return [_row(r) for r in self._connect().execute(sql, args)]

    def pending_sync(self, limit: int = 500) -> list[FeedbackRow]:
        """Feedback rows whose latest revision has not reached the sheet, oldest first."""
        sql = self._ROWS + " WHERE f.revision > f.synced_revision ORDER BY f.id LIMIT ?"
        return [_row(r) for r in self._connect().execute(sql, (limit,))]

    def mark_synced(self, sent: list[tuple[int, int]]) -> None:
        """Record that (feedback id, revision) pairs reached the sheet."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE feedback SET synced_revision = MAX(synced_revision, ?) WHERE id = ?",
                [(rev, fid) for fid, rev in sent],
            )

    def counts(self) -> dict[str, int]:
        """How many predictions, feedback rows and rows waiting for the sheet the store holds."""
        conn = self._connect()
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "predictions": one("SELECT COUNT(*) FROM predictions"),
            "feedback": one("SELECT COUNT(*) FROM feedback"),
            "pending_sync": one("SELECT COUNT(*) FROM feedback WHERE revision > synced_revision"),
        }

    # -------------------------------------------------------------- cross-process lease
    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take or renew the named lease for ``seconds``; False while another owner holds it."""
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT owner, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row["owner"] != owner and row["expires"] > now:
                return False
            conn.execute(
                "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET owner = ?, expires = ?",
                (name, owner, now + seconds, owner, now + seconds),
            )
        return True

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease back if this owner holds it."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into complete statements (executescript would end our transaction)."""
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                yield buf
            buf = ""


def _row(r: sqlite3.Row) -> FeedbackRow:
    """A joined row of ``_ROWS`` (its columns are FeedbackRow's fields) as a FeedbackRow."""
    d = dict(r)
    blobs = {k: bytes(d[k]) for k in ("input_png", "model_input_png")}
    return FeedbackRow(**d | blobs | {"correct": bool(d["correct"])})
