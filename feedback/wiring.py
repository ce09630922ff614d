"""The feedback store and the Google Sheets sync of a running Flask app: opened once by
``init_app``, reached by views through ``store()`` and ``syncer()``."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, current_app

from feedback.google_sheets import SheetsConfig, SheetSync
from feedback.store import FeedbackStore, StoreError, is_database_url, mask_url

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Open the store and set up the Sheets sync when configured (the factory adds the
    ``flask feedback ...`` commands, ``feedback.cli``).

    ``DATABASE_URL`` (``postgresql://...``) selects PostgreSQL, shared by every instance; without
    it the store is the SQLite file ``FEEDBACK_DB`` (default: feedback.sqlite3 in the instance folder).
    """
    url = app.config.get("DATABASE_URL")
    if url and not is_database_url(str(url)):
        raise StoreError(
            f"DATABASE_URL must be a postgresql:// URL, not {mask_url(str(url))}; for SQLite set FEEDBACK_DB to a file."
        )
    target = str(url) if url else app.config.get("FEEDBACK_DB") or str(Path(app.instance_path) / "feedback.sqlite3")
    quota = app.config.get("PREDICTION_QUOTA_MB")
    store_ = FeedbackStore(
        target,
        prediction_ttl=float(app.config["PREDICTION_TTL_HOURS"]) * 3600,
        quota_bytes=None if quota is None else int(float(quota) * 1024 * 1024),
    )
    log.info("feedback store: %s (%s)", store_.location, store_.engine.name)
    app.extensions["feedback"] = store_
    sheets = SheetsConfig.from_app_config(app.config)
    sync = SheetSync(store_, sheets) if sheets else None
    app.extensions["feedback_sync"] = sync
    if sync and app.config.get("FEEDBACK_SYNC_BACKGROUND"):
        # started by the first request, so `flask feedback ...` commands never start a syncer
        app.before_request(lambda: sync.start() if not sync.running else None)


def store() -> FeedbackStore:
    """The running app's feedback store."""
    return current_app.extensions["feedback"]


def syncer() -> SheetSync | None:
    """The running app's Google Sheets sync, or None when Sheets is not configured."""
    return current_app.extensions.get("feedback_sync")
