"""The page and the JSON API:

- ``GET /``: the page; ``GET /healthz``: liveness, tasks, loaded models, the Sheets backlog
- ``GET /readyz``: readiness, 200 or 503 (every offered model loaded, the store answers:
  ``web/limits.py``)
- ``POST /submit``: a canvas drawing (JSON ``{"image": "data:...", "task": ...}``)
- ``POST /upload``: an image file (multipart ``file`` and ``task``)
- ``POST /feedback``: yes/no on an answer, with the right label
- ``POST /sheet/check``, ``POST /sheet/train`` (admin), ``GET /sheet/models``: handwriting sheets

(``/metrics`` is in ``web/metrics.py``, profiles in ``web/personal.py``, ``/admin/...`` in
``web/admin.py``.)
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from feedback.recording import record_feedback, record_lines, record_page, record_prediction
from feedback.wiring import store, syncer
from models.errors import NoImage, UnsupportedMediaType
from models.handwriting_sheets import list_personal, load_sheet, personal_dir, read_sheet, save_sheet
from models.preprocessing import decode_data_url, png_data_url
from models.reading.glyph import available_tasks, offered_tasks
from models.reading.page import PageReading, annotate, hog_alphabets
from web import limits, metrics, personal
from web.auth import admin_required
from web.model_choice import Options, check_size, labels_of, read, registry
from web.requests import json_object, uploaded_file

bp = Blueprint("api", __name__)
TASK_LABELS = {"digit": "Digit", "character": "Character", "line": "Line of text"}


def answer(data: bytes, task: str, options: Options, canvas: bool = False) -> Response:
    """Recognise ``data`` as ``task``, keep the answer for feedback, and answer with JSON."""
    with limits.heavy(task, check_size(data), canvas):
        reading = read(data, task, options, canvas)
    if task == "line":
        for line, pid in zip(reading.result["lines"], record_lines(reading), strict=True):
            line["prediction_id"] = pid
        return jsonify(reading.result)
    if isinstance(reading, PageReading):  # a page, or several characters drawn side by side
        for glyph, pid in zip(reading.result["glyphs"], record_page(reading), strict=True):
            glyph["prediction_id"] = pid
        return jsonify(reading.result)
    return jsonify(reading.result | {"prediction_id": record_prediction(reading, task)})


@bp.get("/")
def index():
    reg = registry()
    tasks = available_tasks(reg) + (["line"] if reg.has_line() else [])
    return render_template(
        "index.html",
        tasks=[{"name": t, "label": TASK_LABELS.get(t, t.title())} for t in tasks],
        max_upload_mb=current_app.config["MAX_UPLOAD_BYTES"] / 1024 / 1024,
        hog_alphabets=hog_alphabets(reg),
    )


@bp.get("/healthz")
def healthz():
    sync = syncer()
    sheets = {"configured": sync is not None}
    if sync is not None:
        sheets |= {"pending": store().counts()["pending_sync"], "last_error": sync.last_error}
    tasks = offered_tasks(registry())
    return jsonify({"status": "ok", "tasks": tasks, "loaded": registry().loaded(), "sheets": sheets})


@bp.get("/readyz")
def readyz():
    readiness = limits.readiness()
    return jsonify(readiness), 200 if readiness["status"] == "ready" else 503


@bp.post("/submit")
def submit():
    if not request.is_json:
        raise UnsupportedMediaType('Send JSON: {"image": "data:image/png;base64,...", "task": "digit"}.')
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise NoImage("The request body is not a JSON object.")
    metrics.note_task(body.get("task", "digit"))
    image = body.get("image")
    if not isinstance(image, str) or not image:
        raise NoImage('No image: send the canvas as a data: URL in "image".')
    return answer(decode_data_url(image), str(body.get("task", "digit")), body, canvas=True)


@bp.post("/upload")
def upload():
    metrics.note_task(request.form.get("task", "digit"))
    return answer(uploaded_file(), request.form.get("task", "digit"), request.form)


@bp.post("/feedback")
def give_feedback():
    if not request.is_json:
        raise UnsupportedMediaType('Send JSON: {"prediction_id": "...", "correct": false, "label": "7"}.')
    return jsonify(record_feedback(request.get_json(silent=True), labels_of))


@bp.post("/sheet/check")
def check_sheet():
    """Segment and check a handwriting sheet; keep it (by id) for training."""
    data = uploaded_file()
    with limits.heavy_slot():
        sheet = read_sheet(data, registry().get("digit"), current_app.config["MAX_PAGE_PIXELS"])
    sheet_id = save_sheet(Path(current_app.config["PERSONAL_DIR"]), sheet)
    annotated = annotate(sheet.gray, [b | {"text": b["label"], "unsure": False} for b in sheet.boxes])
    return jsonify(
        {
            "sheet_id": sheet_id,
            "rows": sheet.rows,
            "glyphs": len(sheet.labels),
            "annotated_png": png_data_url(annotated),
        }
    )


@bp.post("/sheet/train")
@admin_required
def train_sheet():
    """Queue the training of personal models from a checked sheet (changes models: admin token
    required): 202 with the job's id and status URL, followed as a teach's, in a worker process."""
    body = json_object()
    root = Path(current_app.config["PERSONAL_DIR"])
    sheet_id, name = str(body.get("sheet_id", "")), str(body.get("name", ""))
    load_sheet(root, sheet_id)  # an unknown sheet is refused now (422), not in the worker
    folder, token = personal.open_profile(personal_dir(root, name).name)
    req = {"kind": "sheet", "task": "digit", "profile": name, "sheet_id": sheet_id, "sheets_root": str(root)}
    req |= {"profile_dir": str(folder), "base_dir": str(registry().source("digit"))}
    return personal.job_answer(personal.submit_job(req), name, token)


@bp.get("/sheet/models")
def personal_models():
    return jsonify(list_personal(Path(current_app.config["PERSONAL_DIR"])))
