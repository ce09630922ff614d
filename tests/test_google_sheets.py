"""Google Sheets copy over real HTTP: a server on 127.0.0.1 stands in for Google's token endpoint
and the Sheets API (the service-account file's token_uri and GOOGLE_SHEETS_API_URL point at it).
Rows arrive in order with the right columns, exactly once, through 500s, 429s, hangs and dropped
connections (also when Google did the write and only the answer was lost)."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest

from feedback.google_sheets import HEADER, SyncError
from tests.fake_google import Fault
from tests.helpers import SEVEN_URL, app_on, give, make_app


@pytest.fixture
def sheet_app(tmp_path, google, store_target):
    """An app whose store (each engine in turn) syncs to the fake Google."""
    return app_on(
        tmp_path,
        store_target,
        **google_settings(tmp_path, google, GOOGLE_SHEET_ID="sheet-123", GOOGLE_SHEETS_TIMEOUT=1.0),
    )


def google_settings(tmp_path, google, **more) -> dict:
    """The settings of an app that copies feedback to the fake Google (a service-account file written)."""
    key = tmp_path / "service-account.json"
    google.service_account(key)
    return {"GOOGLE_SERVICE_ACCOUNT_FILE": str(key), "GOOGLE_SHEETS_API_URL": google.url} | more


def sync(app) -> int:
    return app.extensions["feedback_sync"].sync_once()


def test_rows_arrive_in_order_with_the_right_columns(sheet_app, google):
    client = sheet_app.test_client()
    acks = [give(client), give(client, False, "1"), give(client, False)]
    result = sheet_app.test_cli_runner().invoke(args=["feedback", "sync"])
    assert result.exit_code == 0, result.output
    assert "sent 3 rows; 0 pending" in result.output
    assert google.rows[0] == HEADER
    assert google.ids() == [str(a["feedback_id"]) for a in acks]
    first, second, third = google.rows[1:]
    assert first[1:7] == ["digit", "7", first[3], "7", "right", "digit/1"]
    assert 0.5 < float(first[3]) <= 1.0
    assert second[4:6] == ["1", "wrong"] and third[4:6] == ["", "wrong"]
    assert base64.b64decode(first[7]).startswith(b"\x89PNG")  # the 28x28 the model saw
    assert first[0].endswith("Z")  # UTC timestamp


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", 500),
        Fault("status", 500, after_applying=True),
        Fault("status", 429),
        Fault("hang", seconds=2.5),  # longer than the 1 s client timeout
        Fault("hang", seconds=2.5, after_applying=True),  # Google wrote the rows; the answer is lost
        Fault("drop"),
        Fault("drop", after_applying=True),
    ],
    ids=["500", "500-after-write", "429", "hang", "hang-after-write", "drop", "drop-after-write"],
)
def test_every_row_arrives_exactly_once_through_a_fault(sheet_app, google, fault):
    client = sheet_app.test_client()
    acks = [give(client) for _ in range(3)]
    assert sync(sheet_app) == 3
    acks += [give(client, False, "1") for _ in range(2)]
    google.faults.extend([Fault("none"), fault])  # the id-column read passes, the append fails
    with pytest.raises(SyncError):
        sync(sheet_app)
    assert sheet_app.extensions["feedback"].counts()["pending_sync"] == 2  # still waiting locally
    assert len(google.rows) == (6 if fault.after_applying else 4)  # Google may have done the write
    assert sync(sheet_app) == 2
    assert google.ids() == [str(a["feedback_id"]) for a in acks]
    assert sorted(google.appended) == sorted(google.ids())  # no row was ever appended twice
    assert sheet_app.extensions["feedback"].counts()["pending_sync"] == 0


def test_changed_feedback_rewrites_its_row_in_place(sheet_app, google):
    client = sheet_app.test_client()
    pid = client.post("/submit", json={"image": SEVEN_URL}).get_json()["prediction_id"]
    client.post("/feedback", json={"prediction_id": pid, "correct": True})
    give(client)
    sync(sheet_app)
    client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": "1"})
    assert sync(sheet_app) == 1
    assert len(google.rows) == 3 and google.rows[1][4:6] == ["1", "wrong"]


def test_sync_command_reports_an_outage_and_keeps_the_rows(sheet_app, google):
    give(sheet_app.test_client())
    google.faults.extend([Fault("status", 503)] * 3)
    result = sheet_app.test_cli_runner().invoke(args=["feedback", "sync"])
    assert result.exit_code == 1
    assert "HTTP 503" in result.output and "1 rows wait in the local store" in result.output
    assert google.ids() == []
    health = sheet_app.test_client().get("/healthz").get_json()["sheets"]
    assert health == {"configured": True, "pending": 1, "last_error": "APIError (HTTP 503)"}


def test_background_sync_backs_off_and_recovers(tmp_path, google):
    settings = google_settings(tmp_path, google, GOOGLE_SHEET_ID="s", GOOGLE_SHEETS_TIMEOUT=1.0)
    app = make_app(tmp_path, **settings, FEEDBACK_SYNC_BACKGROUND=True)
    sync_ = app.extensions["feedback_sync"]
    sync_.base_delay = 0.05
    google.faults.extend([Fault("status", 500), Fault("status", 429), Fault("drop")])
    client = app.test_client()
    try:
        acks = [give(client) for _ in range(4)]  # answered while Google is failing
        deadline = time.time() + 60
        while google.ids() != [str(a["feedback_id"]) for a in acks]:
            assert time.time() < deadline, (google.log, sync_.last_error)
            time.sleep(0.05)
    finally:
        sync_.stop()
    assert sum(1 for _, _, status in google.log if status in (0, 429, 500)) == 3


def test_credentials_never_reach_logs_or_output(sheet_app, google, tmp_path, caplog):
    key = json.loads((tmp_path / "service-account.json").read_text())
    give(sheet_app.test_client())
    caplog.set_level(logging.DEBUG)
    google.faults.append(Fault("status", 500))
    failed = sheet_app.test_cli_runner().invoke(args=["feedback", "sync"])
    ok = sheet_app.test_cli_runner().invoke(args=["feedback", "sync"])
    text = caplog.text + failed.output + ok.output + str(sheet_app.extensions["feedback_sync"].last_error)
    secret = key["private_key"].splitlines()[5]
    assert secret not in text and "tok-" not in text and key["private_key_id"] not in text


def test_a_broken_key_file_is_reported_without_its_content(sheet_app, tmp_path):
    (tmp_path / "service-account.json").write_text('{"type": "service_account", "private_key": "SECRET"}')
    give(sheet_app.test_client())
    result = sheet_app.test_cli_runner().invoke(args=["feedback", "sync"])
    assert result.exit_code == 1 and "not a valid service-account key" in result.output
    assert "SECRET" not in result.output


def test_without_configuration_sheets_is_off(app, runner):
    assert app.extensions["feedback_sync"] is None
    result = runner.invoke(args=["feedback", "sync"])
    assert result.exit_code != 0 and "not configured" in result.output


def test_commands_never_start_a_background_syncer(tmp_path, google):
    app = make_app(tmp_path, **google_settings(tmp_path, google, GOOGLE_SHEET_ID="s"), FEEDBACK_SYNC_BACKGROUND=True)
    assert app.test_cli_runner().invoke(args=["feedback", "status"]).exit_code == 0
    assert not app.extensions["feedback_sync"].running
    app.test_client().get("/healthz")
    try:
        assert app.extensions["feedback_sync"].running  # the first request starts it
    finally:
        app.extensions["feedback_sync"].stop()


def test_a_late_duplicate_is_removed_on_the_next_pass(sheet_app, google):
    """An append Google applied after we had given up on it (and sent the row again) leaves the
    row twice; the next pass deletes the later copy and keeps the order."""
    client = sheet_app.test_client()
    acks = [give(client) for _ in range(3)]
    sync(sheet_app)
    google.rows.insert(3, list(google.rows[1]))  # row id 1 lands a second time, between 2 and 3
    acks.append(give(client))
    assert sync(sheet_app) == 1
    assert google.ids() == [str(a["feedback_id"]) for a in acks]
