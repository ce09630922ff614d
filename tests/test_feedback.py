"""Feedback: every answer gets a prediction id, yes/no (with the right label) is committed to the
real database before the answer, and a second answer updates the first; export in CSV and zip.
Each test of the store runs on both engines: the SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import time
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
from PIL import Image

from feedback.export import read_zip
from feedback.store import MIGRATIONS, POSTGRES_MIGRATIONS, SCHEMA_VERSION, FeedbackStore, StoreError, _statements
from models.preprocessing import glyph_from_bytes
from tests.helpers import (
    SEVEN,
    SEVEN_PNG,
    SEVEN_URL,
    app_on,
    canvas_digit,
    data_url,
    give,
    make_app,
    png_bytes,
    read_table,
    store_target_of,
)


def predict(client, data: bytes = SEVEN_PNG, task: str = "digit") -> dict:
    body = client.post("/submit", json={"image": data_url(data), "task": task}).get_json()
    assert isinstance(body["prediction_id"], str) and len(body["prediction_id"]) == 32
    return body


@pytest.fixture
def app(tmp_path, store_target):
    """A fresh app on a fresh store of each engine."""
    return app_on(tmp_path, store_target)


def rows(app) -> list[dict]:
    """The feedback table read straight from the database, as another process would."""
    return read_table(app, "SELECT * FROM feedback ORDER BY id")


def test_every_answer_is_stored_with_what_the_model_saw(app, client):
    body = predict(client)
    (row,) = read_table(
        app,
        "SELECT task, predicted, confidence, model_name, model_version, preprocessing_version, input_png, "
        "model_input_png FROM predictions WHERE id = ?",
        (body["prediction_id"],),
    )
    task, predicted, confidence, name, version, prep, input_png, seen_png = row.values()
    assert (task, predicted, name, version) == ("digit", "7", "digit", body["model"]["version"])
    assert confidence == pytest.approx(body["confidence"])
    assert prep == glyph_from_bytes.__globals__["PREPROCESSING_VERSION"]
    assert input_png == SEVEN_PNG  # a PNG is kept byte for byte
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(seen_png))), glyph_from_bytes(SEVEN_PNG).pixels)


def test_a_jpeg_upload_is_stored_as_png_that_reads_the_same(app, client):
    jpeg = png_bytes(canvas_digit(SEVEN), "JPEG", quality=90)
    resp = client.post("/upload", data={"file": (io.BytesIO(jpeg), "seven.jpg"), "task": "digit"})
    pid = resp.get_json()["prediction_id"]
    row = FeedbackStore(store_target_of(app)).prediction(pid)
    assert bytes(row["input_png"]).startswith(b"\x89PNG")
    again = glyph_from_bytes(bytes(row["input_png"])).pixels
    assert np.array_equal(again, np.asarray(Image.open(io.BytesIO(row["model_input_png"]))))


def test_yes_is_saved_with_the_predicted_label(app, client):
    pid = predict(client)["prediction_id"]
    resp = client.post("/feedback", json={"prediction_id": pid, "correct": True})
    assert resp.status_code == 200
    ack = resp.get_json()
    assert ack["status"] == "saved" and ack["label"] == "7" and ack["revision"] == 1
    (row,) = rows(app)
    assert (row["prediction_id"], row["correct"], row["label"]) == (pid, 1, "7")


def test_no_with_the_right_label(app, client):
    pid = predict(client)["prediction_id"]
    ack = client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": " 1 "}).get_json()
    assert ack["label"] == "1"
    (row,) = rows(app)
    assert (row["correct"], row["label"]) == (0, "1")


def test_no_without_a_label_is_kept_as_wrong_with_no_label(app, client):
    pid = predict(client)["prediction_id"]
    assert client.post("/feedback", json={"prediction_id": pid, "correct": False}).status_code == 200
    (row,) = rows(app)
    assert (row["correct"], row["label"]) == (0, None)


def test_feedback_twice_updates_the_same_row(app, client):
    pid = predict(client)["prediction_id"]
    client.post("/feedback", json={"prediction_id": pid, "correct": True})
    ack = client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": "1"}).get_json()
    assert ack["revision"] == 2
    same = client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": "1"}).get_json()
    assert same["revision"] == 2 and same["feedback_id"] == ack["feedback_id"]  # nothing changed
    (row,) = rows(app)
    assert (row["correct"], row["label"], row["revision"]) == (0, "1", 2)


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"correct": True}, 400, "bad_feedback", "prediction_id"),
        ({"prediction_id": "PID", "correct": "yes"}, 400, "bad_feedback", "true"),
        ({"prediction_id": "PID", "correct": False, "label": "x"}, 400, "invalid_label", "0-9"),
        ({"prediction_id": "PID", "correct": False, "label": "12"}, 400, "invalid_label", "0-9"),
        ({"prediction_id": "PID", "correct": False, "label": 7}, 400, "invalid_label", "text"),
        ({"prediction_id": "PID", "correct": False, "label": "7"}, 400, "invalid_label", "press Yes"),
        ({"prediction_id": "PID", "correct": True, "label": "1"}, 400, "invalid_label", "right"),
        ({"prediction_id": "0" * 32, "correct": True}, 404, "unknown_prediction", "expired"),
    ],
)
def test_bad_feedback_gets_a_clear_message_and_stores_nothing(app, client, body, status, code, words):
    pid = predict(client)["prediction_id"]
    if body.get("prediction_id") == "PID":
        body = body | {"prediction_id": pid}
    resp = client.post("/feedback", json=body)
    assert resp.status_code == status
    error = resp.get_json()["error"]
    assert error["code"] == code and words in error["message"]
    assert rows(app) == []


def test_character_labels_are_checked_against_62_classes(app, client):
    pid = predict(client, task="character")["prediction_id"]
    bad = client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": "é"}).get_json()
    assert "0-9, A-Z or a-z" in bad["error"]["message"]
    assert client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": "T"}).status_code == 200


def test_feedback_must_be_json(client):
    resp = client.post("/feedback", data="correct=true")
    assert resp.status_code == 415 and resp.get_json()["error"]["code"] == "unsupported_media_type"


def test_new_database_has_the_schema_version_and_a_newer_one_is_refused(tmp_path):
    path = tmp_path / "fb.sqlite3"
    assert FeedbackStore(path).schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="schema version"):
        FeedbackStore(path)


def test_a_newer_postgresql_schema_is_refused(pg_url):
    assert FeedbackStore(pg_url).schema_version() == SCHEMA_VERSION
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="schema version") as refused:
        FeedbackStore(pg_url)
    assert urlsplit(pg_url).password not in str(refused.value)  # the password never reaches a message


def test_old_predictions_without_feedback_are_pruned(store_target):
    store = FeedbackStore(store_target, prediction_ttl=3600)
    args = ("digit", "7", 0.9, False, [], "digit", "1", "4", b"in", b"seen")
    kept, dropped = store.add_prediction(*args), store.add_prediction(*args)
    store.record_feedback(kept, True, "7")
    assert store.prune_predictions(now=time.time() + 2 * 3600) == 1
    store.prediction(kept)
    with pytest.raises(LookupError):
        store.prediction(dropped)


def test_export_csv_to_stdout(app, client, runner):
    acks = [give(client, True), give(client, False, "1"), give(client, False)]
    pids = [ack["prediction_id"] for ack in acks]
    result = runner.invoke(args=["feedback", "export", "--format", "csv"])
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["prediction_id"] for r in records] == pids
    assert [(r["task"], r["predicted"], r["correct"], r["correct_label"]) for r in records] == [
        ("digit", "7", "yes", "7"),
        ("digit", "7", "no", "1"),
        ("digit", "7", "no", ""),
    ]


def test_export_zip_holds_images_and_labels(app, client, runner, tmp_path):
    pids = [ack["prediction_id"] for ack in (give(client, True), give(client, False, "1"))]
    out = tmp_path / "feedback.zip"
    result = runner.invoke(args=["feedback", "export", "--format", "zip", "--output", str(out)])
    assert result.exit_code == 0, result.output
    back = read_zip(str(out))
    assert [r.prediction_id for r in back] == pids and [r.label for r in back] == ["7", "1"]
    assert back[0].input_png == SEVEN_PNG
    assert np.asarray(Image.open(io.BytesIO(back[1].model_input_png))).shape == (28, 28)
    assert runner.invoke(args=["feedback", "export", "--format", "zip"]).exit_code != 0  # needs --output


def test_status_command(app, client, runner):
    give(client, True)
    result = runner.invoke(args=["feedback", "status"])
    assert "feedback: 1" in result.output and "not configured (1 feedback rows would be sent" in result.output
    assert "pending_sync" not in result.output  # nothing waits for a sheet that is not configured


def test_a_full_disk_costs_the_feedback_buttons_not_the_answer(tmp_path, monkeypatch):
    app = make_app(tmp_path)
    store = app.extensions["feedback"]

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "add_predictions", broken)  # every answer is stored through it
    body = app.test_client().post("/submit", json={"image": SEVEN_URL}).get_json()
    assert body["text"] == "7" and body["prediction_id"] is None


def test_a_version_1_database_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for statement in _statements(MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO predictions VALUES ('a' , '2026-01-01T00:00:00Z', 'digit', '7', 0.9, 0, '[]', 'digit', '1', '4',"
        " x'00', x'00')"
    )
    conn.execute(
        "INSERT INTO feedback (prediction_id, correct, label, created_at, updated_at) VALUES ('a', 1, '7', '', '')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = FeedbackStore(path)
    assert store.schema_version() == SCHEMA_VERSION == 2
    (row,) = store.feedback()
    assert (row.prediction_id, row.label, row.source) == ("a", "7", "glyph")


def test_a_postgresql_version_1_database_is_migrated_in_place(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in _statements(POSTGRES_MIGRATIONS[1]):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO predictions VALUES ('a', '2026-01-01T00:00:00Z', 'digit', '7', 0.9, 0, '[]', 'digit', '1',"
            " '4', '\\x00', '\\x00')"
        )
        conn.execute(
            "INSERT INTO feedback (prediction_id, correct, label, created_at, updated_at) VALUES ('a', 1, '7', '', '')"
        )
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
    store = FeedbackStore(pg_url)
    assert store.schema_version() == SCHEMA_VERSION == 2
    (row,) = store.feedback()
    assert (row.prediction_id, row.label, row.source, row.input_png) == ("a", "7", "glyph", b"\x00")


def test_a_failed_commit_leaves_the_connection_usable(store_target):
    store = FeedbackStore(store_target)
    with pytest.raises(store.errors):
        with store.transaction() as conn:
            conn.execute(  # no prediction 'x': the foreign key refuses it
                "INSERT INTO feedback (prediction_id, correct, created_at, updated_at) VALUES ('x', 1, '', '')"
            )
    pid = store.add_prediction("digit", "7", 0.9, False, [], "digit", "1", "4", b"in", b"seen")
    assert store.record_feedback(pid, True, "7")[1] == 1


def test_a_new_sqlite_file_another_process_is_writing_switches_to_wal_when_it_is_free(tmp_path):
    """Two instances starting at once on one new SQLite file: while the first holds its write lock
    (the file still in rollback mode), SQLite refuses the second's switch to WAL at once instead of
    waiting for the lock (this failed one of CI's runs: "database is locked"). The store waits for it."""
    path = tmp_path / "feedback.sqlite3"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    first.execute("CREATE TABLE early (x)")
    first.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO early VALUES (1)")
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # what SQLite does by itself
        sqlite3.connect(path, timeout=5, isolation_level=None).execute("PRAGMA journal_mode=WAL")
    release = threading.Timer(0.5, lambda: first.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    store = FeedbackStore(path)
    release.join()
    assert time.monotonic() - started >= 0.4  # it waited for the first writer, then went on
    assert store._query("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.counts()["predictions"] == 0
    store.close()
    first.close()
