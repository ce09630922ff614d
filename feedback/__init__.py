"""Feedback: the yes/no and corrected labels people give on each answer.

The store (``feedback.store``: the SQLite file, or PostgreSQL when ``DATABASE_URL`` names one) is
always written first and is the source of truth; the
Google Sheets copy (``feedback.google_sheets``) follows in the background when configured; export
(``feedback.export``) and retraining (``training.retrain``) read the store. ``init_app`` wires it
into the Flask app (flaskr's ``db.py`` pattern): views call ``store()`` and never open connections.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from feedback.export import write_csv, write_zip  # noqa: F401 (also used by the admin routes)
from feedback.google_sheets import SheetsConfig, SheetSync, SyncError
from feedback.store import FeedbackStore, PredictionRow, StoreError, UnknownPrediction, is_database_url, mask_url
from models.errors import BadFeedback, InvalidLabel, UnknownPredictionId, clipped

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Open the store, set up the Sheets sync when configured, and add ``flask feedback ...``.

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
    store_ = FeedbackStore(target, prediction_ttl=float(app.config["PREDICTION_TTL_HOURS"]) * 3600,
                           quota_bytes=None if quota is None else int(float(quota) * 1024 * 1024))  # fmt: skip
    log.info("feedback store: %s (%s)", store_.location, store_.engine.name)
    app.extensions["feedback"] = store_
    sheets = SheetsConfig.from_app_config(app.config)
    sync = SheetSync(store_, sheets) if sheets else None
    app.extensions["feedback_sync"] = sync
    if sync and app.config.get("FEEDBACK_SYNC_BACKGROUND"):
        # started by the first request, so `flask feedback ...` commands never start a syncer
        app.before_request(lambda: sync.start() if not sync.running else None)
    app.cli.add_command(feedback_cli)


def store() -> FeedbackStore:
    """The running app's feedback store."""
    return current_app.extensions["feedback"]


def syncer() -> SheetSync | None:
    """The running app's Google Sheets sync, or None when Sheets is not configured."""
    return current_app.extensions.get("feedback_sync")


def describe_labels(labels: list[str]) -> str:
    """'0-9, A-Z or a-z' for a label list made of runs of consecutive characters."""
    runs: list[str] = []
    start = prev = None
    for ch in labels + [None]:
        if prev is not None and ch is not None and len(ch) == 1 and ord(ch) == ord(prev) + 1:
            prev = ch
            continue
        if start is not None:
            runs.append(start if start == prev else f"{start}-{prev}")
        start = prev = ch
    return runs[0] if len(runs) == 1 else ", ".join(runs[:-1]) + " or " + runs[-1]


def _is_text(value: str) -> bool:
    """Whether ``value`` can be stored as text (JSON allows lone surrogates such as "\\ud800",
    which no database encoding takes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def accept(body: object, labels_of: Callable[[str], list[str]]) -> dict:
    """Validate one ``POST /feedback`` body, commit it, and return the acknowledgement.

    ``labels_of(task)`` gives the label set a correction is checked against.
    """
    if not isinstance(body, dict):
        raise BadFeedback("The request body is not a JSON object.")
    pid, correct, label = body.get("prediction_id"), body.get("correct"), body.get("label")
    if not isinstance(pid, str) or not pid or not _is_text(pid):
        raise BadFeedback('Send "prediction_id" from the answer you are rating.')
    if not isinstance(correct, bool):
        raise BadFeedback('Send "correct": true (the answer was right) or false.')
    if label is not None and not isinstance(label, str):
        raise InvalidLabel('The "label" must be text.')
    label = (label or "").strip() or None  # a line's inner spaces stay
    try:
        prediction = store().prediction(pid)
    except UnknownPrediction:
        raise UnknownPredictionId(
            "That answer is not known here (it may have expired); read the image again."
        ) from None
    if correct:
        if label is not None and label != prediction["predicted"]:
            raise InvalidLabel(
                f"You said the answer “{prediction['predicted']}” is right but gave “{clipped(label)}”.",
            )
        label = prediction["predicted"]
    elif label is not None and prediction["task"] == "line":
        unknown = sorted({ch for ch in label if ch not in labels_of("line")})
        if unknown or len(label) > 300:
            raise InvalidLabel(
                f"The line model cannot write {clipped(''.join(unknown)) if unknown else 'more than 300 characters'}.",
            )
        if label == prediction["predicted"]:
            raise InvalidLabel("That is what we read: press Yes if it is right.")
    elif label is not None:
        labels = labels_of(prediction["task"])
        if label not in labels:
            raise InvalidLabel(
                f"“{clipped(label)}” is not a {prediction['task']}: type one of {describe_labels(labels)}.",
            )
        if label == prediction["predicted"]:
            raise InvalidLabel(f"“{clipped(label)}” is what we read: press Yes if it is right.")
    feedback_id, revision = store().record_feedback(pid, correct, label)
    if syncer():
        syncer().notify()
    return {"status": "saved", "feedback_id": feedback_id, "prediction_id": pid, "revision": revision,
            "correct": correct, "label": label}  # fmt: skip


def _store_rows(rows: list[PredictionRow], source: str) -> list[str | None]:
    """Store answers (``FeedbackStore.add_predictions`` rows) in one transaction; their ids, or
    None each (and a log line) if the store cannot be written, so a full disk costs the feedback
    buttons, not the answer."""
    try:
        return store().add_predictions(rows, source=source) if rows else []
    except store().errors:
        log.exception("could not record %d %s answers in the feedback store", len(rows), source)
        return [None] * len(rows)


def record_prediction(reading, task: str) -> str | None:
    """Store one answer for later feedback; its prediction id (None if the store failed)."""
    r = reading.result
    row = PredictionRow(
        task=task,
        predicted=reading.predicted,
        confidence=r["confidence"],
        unsure=r["unsure"],
        candidates=r["candidates"],
        model_name=r["model"]["name"],
        model_version=r["model"]["version"],
        preprocessing_version=reading.preprocessing_version,
        input_png=reading.input_png,
        model_input_png=reading.model_input_png,
    )
    return _store_rows([row], "glyph")[0]


def record_page(reading) -> list[str | None]:
    """Store every glyph of a page answer (one transaction), so each can be corrected later."""
    r = reading.result
    rows = [
        PredictionRow(
            task=r["alphabet"],
            predicted=g["text"],
            confidence=g["confidence"],
            unsure=g["unsure"],
            candidates=g["candidates"],
            model_name=r["model"]["name"],
            model_version=r["model"]["version"],
            preprocessing_version=reading.preprocessing_version,
            input_png=crop,
            model_input_png=seen,
        )
        for g, crop, seen in zip(r["glyphs"], reading.glyph_inputs, reading.glyph_pixels, strict=True)
    ]
    return _store_rows(rows, "page")


def record_lines(reading) -> list[str | None]:
    """Store every line of a line answer (one transaction), so each can be corrected later."""
    r = reading.result
    rows = [
        PredictionRow(
            task="line",
            predicted=line["text"],
            confidence=line["confidence"],
            unsure=False,
            candidates=[],
            model_name=r["model"]["name"],
            model_version=r["model"]["version"],
            preprocessing_version=reading.preprocessing_version,
            input_png=crop,
            model_input_png=strip,
        )
        for line, crop, strip in zip(r["lines"], reading.line_inputs, reading.line_strips, strict=True)
    ]
    return _store_rows(rows, "line")


# ------------------------------------------------------------------ flask feedback ...
feedback_cli = AppGroup("feedback", help="Feedback store: status, Google Sheets sync and export.")


@feedback_cli.command("status")
def status_command() -> None:
    """Print how many predictions and feedback rows the store holds and how many wait for Sheets."""
    counts = store().counts()
    click.echo(f"store: {store().location} ({store().engine.name})")
    waiting = counts.pop("pending_sync", 0)
    for name, value in counts.items():
        click.echo(f"{name}: {value}")
    if syncer():
        click.echo(f"google sheets: configured; pending_sync: {waiting}")
    else:  # nothing is pending without a sheet: these rows are sent once one is configured
        click.echo(f"google sheets: not configured ({waiting} feedback rows would be sent once it is)")


@feedback_cli.command("sync")
def sync_command() -> None:
    """Copy every pending feedback row to the configured Google Sheet now (exit 1 on failure)."""
    sync = syncer()
    if sync is None:
        raise click.ClickException(
            "Google Sheets is not configured: set HWR_GOOGLE_SERVICE_ACCOUNT_FILE and HWR_GOOGLE_SHEET_ID."
        )
    try:
        sent = sync.sync_once()
    except SyncError as exc:
        click.echo(f"{exc} {store().counts()['pending_sync']} rows wait in the local store.", err=True)
        sys.exit(1)
    click.echo(f"sent {sent} rows; {store().counts()['pending_sync']} pending")


@feedback_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "zip"]), default="csv", show_default=True,
              help="csv: one row per feedback; zip: images and labels.csv, as training.retrain reads")  # fmt: skip
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="file to write (default: standard output for csv; required for zip)")  # fmt: skip
@click.option("--task", default=None, help="only this task's feedback")
def export_command(fmt: str, output: str | None, task: str | None) -> None:
    """Export the feedback with its prediction ids, labels and (zip) images."""
    rows = store().feedback(task, images=fmt == "zip")
    if fmt == "zip":
        if not output:
            raise click.UsageError("--format zip needs --output FILE.zip")
        with open(output, "wb") as f:
            n = write_zip(rows, f)
    elif output:
        with open(output, "w", newline="", encoding="utf-8") as f:
            n = write_csv(rows, f)
    else:
        n = write_csv(rows, sys.stdout)
    if output:
        click.echo(f"exported {n} feedback rows to {output}", err=True)
