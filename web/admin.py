"""Routes that export data or change models, and the admin token they all need.

- ``GET /admin/feedback/export?format=csv|zip[&task=...]``: the feedback rows (zip: with images)
- ``POST /admin/feedback/sync``: copy pending feedback to Google Sheets now
- ``GET /admin/models``: every task's versions and which one is served
- ``POST /admin/models/<task>/rollback`` (body ``{"to": "2"}`` optional): serve an earlier version

The token is checked by ``web/auth.py``, which other routes use too (``/metrics``,
``/sheet/train``, a profile's changes).
"""

from __future__ import annotations

import io
from pathlib import Path

from flask import Blueprint, current_app, jsonify, request, send_file

from feedback.export import write_csv, write_zip
from feedback.google_sheets import SyncError
from feedback.wiring import store, syncer
from models import versions
from models.errors import BadRequest, CannotRollBack, SheetsNotConfigured, SyncFailed, UnknownTask
from models.registry import TASK_WEIGHTS
from web.auth import admin_required
from web.model_choice import registry
from web.requests import json_object

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/feedback/export")
@admin_required
def export_feedback():
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "zip"):
        raise BadRequest('Choose format "csv" or "zip".')
    rows = store().feedback(request.args.get("task") or None, images=fmt == "zip")
    buf = io.BytesIO()
    if fmt == "zip":
        write_zip(rows, buf)
    else:
        text = io.StringIO()
        write_csv(rows, text)
        buf.write(text.getvalue().encode("utf-8"))
    buf.seek(0)
    mime = "application/zip" if fmt == "zip" else "text/csv"
    return send_file(buf, mimetype=mime, as_attachment=True, download_name=f"feedback.{fmt}")


@bp.post("/feedback/sync")
@admin_required
def sync_feedback():
    sync = syncer()
    if sync is None:
        raise SheetsNotConfigured("Google Sheets is not configured.")
    try:
        sent = sync.sync_once()
    except SyncError as exc:
        raise SyncFailed(str(exc)) from exc
    return jsonify({"sent": sent, "pending": store().counts()["pending_sync"]})


@bp.get("/models")
@admin_required
def list_models():
    models_dir, reg = Path(current_app.config["MODELS_DIR"]), registry()
    return jsonify({t: versions.list_versions(models_dir, reg.weights_dir / TASK_WEIGHTS[t], t) for t in reg.tasks()})


@bp.post("/models/<task>/rollback")
@admin_required
def rollback_model(task: str):
    reg = registry()
    if task not in reg.tasks():
        raise UnknownTask(task, reg.tasks())
    to = json_object().get("to")
    try:
        active = versions.rollback(
            Path(current_app.config["MODELS_DIR"]),
            reg.weights_dir / TASK_WEIGHTS[task],
            task,
            None if to is None else str(to),
        )
    except (ValueError, OSError) as exc:
        raise CannotRollBack(str(exc)) from exc
    return jsonify({"task": task, "active": active})
