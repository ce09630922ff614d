"""Several app instances on one feedback database (gunicorn workers, or hosts sharing one
PostgreSQL): feedback ids stay unique, the Google Sheets lease has one owner at a time, two
instances syncing at once send every row exactly once, and the database URL's password is never
shown. Each test runs on both engines (the SQLite file, a real PostgreSQL server)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from feedback.store import FeedbackStore, PredictionRow, StoreError
from tests.helpers import app_on, give, make_app

ANSWER = PredictionRow("digit", "7", 0.9, False, [], "digit", "1", "4", b"in", b"seen")


def at_once(fn, args: list) -> list:
    """``fn(arg)`` for every arg, each in a thread of its own, all released at the same moment."""
    start = threading.Barrier(len(args))

    def run(arg):
        start.wait()
        return fn(arg)

    with ThreadPoolExecutor(len(args)) as pool:
        return list(pool.map(run, args))


def test_two_instances_syncing_at_once_send_each_row_exactly_once(tmp_path, store_target, google):
    key = tmp_path / "service-account.json"
    google.service_account(key)
    sheets = {"GOOGLE_SERVICE_ACCOUNT_FILE": str(key), "GOOGLE_SHEET_ID": "s", "GOOGLE_SHEETS_API_URL": google.url}
    apps = [app_on(tmp_path / name, store_target, **sheets) for name in ("a", "b")]
    assert apps[0].extensions["feedback"] is not apps[1].extensions["feedback"]  # two stores, two connections
    clients = [a.test_client() for a in apps]
    given: list[int] = []
    for round_ in range(4):
        for i in range(6):
            correct = i % 3 != 0
            given.append(give(clients[i % 2], correct, None if correct else "1")["feedback_id"])
        sent = at_once(lambda app: app.extensions["feedback_sync"].sync_once(), apps)
        assert sum(sent) >= 6, (round_, sent)  # whoever held the lease sent this round's rows
    for app in apps:  # whatever a lost race left behind
        app.extensions["feedback_sync"].sync_once()
    assert len(set(given)) == len(given) == 24  # feedback ids unique across the two instances
    assert sorted(google.appended) == sorted(str(i) for i in given)  # each row appended exactly once
    assert google.ids() == [str(i) for i in sorted(given)]
    assert apps[0].extensions["feedback"].counts()["pending_sync"] == 0


def test_a_lease_has_one_owner_however_many_ask_at_once(store_target):
    stores = [FeedbackStore(store_target) for _ in range(6)]  # each asks on a connection of its own
    for _ in range(5):
        won = at_once(lambda i: stores[i].acquire_lease("sheets-sync", f"owner-{i}", 60), list(range(len(stores))))
        assert won.count(True) == 1, won
        winner = won.index(True)
        assert stores[winner].acquire_lease("sheets-sync", f"owner-{winner}", 60)  # its own lease renews
        stores[winner].release_lease("sheets-sync", f"owner-{winner}")


def test_an_expired_lease_goes_to_the_next_instance(store_target):
    first, second = FeedbackStore(store_target), FeedbackStore(store_target)
    assert first.acquire_lease("sheets-sync", "first", -1)  # a holder that stopped renewing
    assert second.acquire_lease("sheets-sync", "second", 60)
    assert not first.acquire_lease("sheets-sync", "first", 60)


def test_concurrent_feedback_from_two_instances_gets_unique_ids(store_target):
    stores = [FeedbackStore(store_target), FeedbackStore(store_target)]
    pids = stores[0].add_predictions([ANSWER] * 40) + stores[1].add_predictions([ANSWER] * 40)

    def rate(k: int) -> list[int]:
        return [stores[k % 2].record_feedback(pid, True, "7")[0] for pid in pids[k::8]]

    with ThreadPoolExecutor(8) as pool:
        ids = [i for chunk in pool.map(rate, range(8)) for i in chunk]
    assert len(set(pids)) == 80
    assert len(set(ids)) == len(ids) == 80
    assert stores[1].counts() == {"predictions": 80, "feedback": 80, "pending_sync": 80}


def test_the_database_password_is_never_shown(tmp_path, pg_url, caplog):
    password = urlsplit(pg_url).password
    caplog.set_level(logging.INFO)
    app = app_on(tmp_path, pg_url)
    result = app.test_cli_runner().invoke(args=["feedback", "status"])
    assert result.exit_code == 0, result.output
    assert "postgresql://hwr:***@127.0.0.1" in result.output and "(postgresql)" in result.output
    assert "postgresql://hwr:***@" in caplog.text
    assert password not in result.output + caplog.text


def test_an_unreachable_database_is_reported_without_its_password(tmp_path, pg_url):
    wrong = pg_url.replace(urlsplit(pg_url).password, "not-the-password")
    with pytest.raises(StoreError, match="Cannot connect") as refused:
        app_on(tmp_path, wrong)
    assert "not-the-password" not in str(refused.value) and "hwr:***@" in str(refused.value)


def test_database_url_must_name_postgresql(tmp_path):
    with pytest.raises(StoreError, match="postgresql://") as refused:
        make_app(tmp_path, DATABASE_URL="mysql://app:secret@db/feedback")
    assert "secret" not in str(refused.value)
