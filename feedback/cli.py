"""``flask feedback status | sync | export``: the store's counts, a Google Sheets sync now, and
an export of the feedback (CSV, or a zip with the images as ``training.retrain`` reads it)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from feedback.export import write_csv, write_zip
from feedback.google_sheets import SyncError
from feedback.wiring import store, syncer

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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "zip"]),
    default="csv",
    show_default=True,
    help="csv: one row per feedback; zip: images and labels.csv, as training.retrain reads",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="file to write (default: standard output for csv; required for zip)",
)
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
