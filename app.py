"""Flask application: the page, the JSON API and the ``flask --app app`` commands.

Routes stay thin: they read the request, call ``models.recognize`` and shape errors. Models load
lazily (once per process) unless ``PRELOAD_MODELS`` is set, so importing this module is cheap.
Run ``python app.py`` to serve on the embedded defaults.
"""

from __future__ import annotations

import dataclasses
import hmac
import io
import json
import os
import sys
from pathlib import Path

import click
from flask import Flask, Request, current_app, jsonify, render_template, request, send_file
from flask.cli import AppGroup, with_appcontext
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

import feedback
from models import versions
from models.decoding import ALPHABET_HINTS
from models.errors import InputError, quoted
from models.lines import DECODERS, Speller, read_lines
from models.pages import (
    ENGINES,
    PAGE_ALPHABETS,
    PageReading,
    annotate,
    hog_alphabets,
    in_upload_pixels,
    page_alphabet,
    png_data_url,
    read_drawing,
    read_page,
    upload_size,
)
from models.personal import existing_profile
from models.preprocessing import DEFAULT_MAX_PIXELS, PAGE_MAX_PIXELS, decode_data_url
from models.recognize import GLYPH_TASKS, UnknownTask, available_tasks, offered_tasks, recognize
from models.registry import TASK_WEIGHTS, WEIGHTS_DIR, Registry, WeightsError, shared_registry
from models.sheets import list_personal, load_sheet, personal_dir, read_sheet, save_sheet
from web import limits, logs, metrics, security
from web.errors import error_response

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
TASK_LABELS = {"digit": "Digit", "character": "Character", "line": "Line of text"}

ERROR_STATUS = {
    "no_file": 400,
    "no_image": 400,
    "not_an_image": 400,
    "truncated_image": 400,
    "bad_image": 400,
    "unknown_task": 400,
    "bad_page_request": 400,
    "bad_line_request": 400,
    "too_noisy": 422,
    "bad_sheet": 422,
    "bad_feedback": 400,
    "invalid_label": 400,
    "forbidden": 403,
    "unknown_prediction": 404,
    "bad_request": 400,
    "cannot_roll_back": 409,
    "sheets_not_configured": 409,
    "too_large": 413,
    "too_many_pixels": 413,
    "unsupported_media_type": 415,
    "blank_image": 422,
    "bad_profile": 400,
    "unknown_profile": 404,
    "too_many_profiles": 409,
    "model_unavailable": 503,
    "server_busy": 503,
    "rate_limited": 429,
}


class ApiError(InputError):
    """A request error found by the web layer, answered like every other ``InputError``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class BadJson(InputError):
    code = "bad_json"


class JsonRequest(Request):
    """Flask's request, refusing JSON nested too deeply to parse (Python's parser recurses: a body
    of 100,000 brackets raised RecursionError, a 500) with a 400 ``bad_json``."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
        try:
            return super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            raise BadJson("The JSON body is nested too deeply to read.") from None


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory; ``test_config`` overrides every other setting."""
    app = Flask(__name__, instance_relative_config=True)
    app.request_class = JsonRequest
    app.config.from_mapping(
        MAX_UPLOAD_BYTES=10 * 1024 * 1024,  # one image file, decoded from upload or data: URL
        MAX_IMAGE_PIXELS=DEFAULT_MAX_PIXELS,  # decoded pixels of one glyph's image at most; more: 413
        MAX_PAGE_PIXELS=PAGE_MAX_PIXELS,  # the same for pages, lines and sheets (more work per pixel)
        WEIGHTS_DIR=str(WEIGHTS_DIR),
        MODELS_DIR=None,  # retrained versions and which is active; default: models/ in the instance folder
        PERSONAL_DIR=None,  # personal models from handwriting sheets; default: personal/ in the instance folder
        LINE_WORDS=None,  # a word list (one per line) that line corrections must come from; default: English
        PRELOAD_MODELS=False,
        UNSURE_THRESHOLDS={},  # task -> confidence below which answers are "not sure" (default: measured)
        FEEDBACK_DB=None,  # SQLite file; default: feedback.sqlite3 in the instance folder
        DATABASE_URL=os.environ.get("DATABASE_URL"),  # postgresql://...: the shared store instead of FEEDBACK_DB
        PREDICTION_TTL_HOURS=24,  # inputs nobody gave feedback on are deleted after this
        PREDICTION_QUOTA_MB=512,  # and the oldest of them once their images take more than this (None: no quota)
        FEEDBACK_SYNC_BACKGROUND=True,  # copy feedback to Google Sheets in a background thread
        GOOGLE_SERVICE_ACCOUNT_FILE=None,  # with GOOGLE_SHEET_ID: the Sheets copy is on
        GOOGLE_SHEET_ID=None,
        GOOGLE_WORKSHEET=None,  # default: the first worksheet
        GOOGLE_SHEETS_API_URL=None,  # replaces https://sheets.googleapis.com (a proxy, a local stand-in)
        GOOGLE_SHEETS_TIMEOUT=20,  # seconds per Sheets request
        ADMIN_TOKEN=None,  # bearer token for /admin routes; without one they answer 403
        TEACH_MAX_WAITING=2,  # teaches that may wait behind the running one; more get 429
        TEACH_NICE=10,  # teach workers run at this lower CPU priority: predictions come first
        MAX_PROFILES=500,  # profiles kept at most (about 2 MB each); a new one beyond this is refused
        ALLOWED_ORIGINS=[],  # other sites' pages allowed to post here (e.g. ["https://forms.example.org"])
        TEACH_OPTIONS={},  # overrides of training.teach.teach's settings (variants, vae_epochs, ...), for tests
        **limits.DEFAULTS,  # heavy slots, rate limits, proxies: web/limits.py
    )
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("HWR")
    if test_config:
        app.config.from_mapping(test_config)
    # the whole request may carry one base64 image (4/3 of its size) plus form fields
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_BYTES"] * 4 // 3 + 64 * 1024
    app.config["MODELS_DIR"] = app.config["MODELS_DIR"] or str(Path(app.instance_path) / "models")
    app.config["PERSONAL_DIR"] = app.config["PERSONAL_DIR"] or str(Path(app.instance_path) / "personal")
    app.extensions["registry"] = shared_registry(app.config["WEIGHTS_DIR"], app.config["MODELS_DIR"])
    if app.config["PRELOAD_MODELS"]:
        reg = app.extensions["registry"]
        for task in reg.tasks():
            reg.get(task)
        reg.glyph_gate()  # every glyph answer asks it
        if reg.has_line():
            reg.line()
            reg.line_filter()
            reg.line_lm()
            Speller.english()  # its dictionary took 4-8 s to load on the first line answered
        for alphabet in hog_alphabets(reg):
            reg.hog(alphabet)
    logs.init_app(app)
    metrics.init_app(app)
    security.init_app(app)
    feedback.init_app(app)
    limits.init_app(app)
    _register_routes(app)
    recognition = "RATELIMIT_RECOGNITION"
    limits.limit_routes(app, {"submit": recognition, "upload": recognition, "check_sheet": recognition,
                              "give_feedback": "RATELIMIT_FEEDBACK"})  # fmt: skip
    _register_admin_routes(app)
    _register_errors(app)
    app.cli.add_command(recognize_command)
    app.cli.add_command(sheet_cli)
    from web import personal

    app.register_blueprint(personal.bp)
    app.cli.add_command(personal.cli)
    return app


def registry() -> Registry:
    """The running app's model registry."""
    return current_app.extensions["registry"]


def _check_size(data: bytes) -> bytes:
    """Refuse an image file over the configured size."""
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    if len(data) > limit:
        raise ApiError("too_large", f"The image is {len(data):,} bytes; the limit is {limit:,}.")
    return data


def _read(data: bytes, task: str, options, canvas: bool = False):
    """Recognise ``data`` as ``task``: a ``Reading`` or, for ``"page"``, a ``PageReading``; a line
    answer's and a page's boxes are in the pixels of ``data`` (``in_upload_pixels``).
    ``options`` (form, JSON body or CLI flags) carries the ``alphabet`` hint (for a page: what it
    holds, which also picks the model), a page's ``engine`` and the ``profile``;
    ``canvas`` says the image was drawn on the page (no ruled paper to look for; several characters
    side by side are read as a short sequence, a ``PageReading`` too)."""
    reading = _read_as_read(data, task, options, canvas)
    if task in ("line", "page"):
        return dataclasses.replace(reading, result=in_upload_pixels(reading.result, upload_size(data)))
    return reading


def _read_as_read(data: bytes, task: str, options, canvas: bool):
    """``_read`` with boxes in the pixels of the page as read."""
    pixels = current_app.config["MAX_PAGE_PIXELS" if task in ("line", "page") else "MAX_IMAGE_PIXELS"]
    if task == "line" and not registry().has_line():
        raise ApiError("unknown_task", "No handwritten-line model is installed on this server.")
    if task not in offered_tasks(registry()):
        raise UnknownTask(task, offered_tasks(registry()))
    if task == "line":
        decoder = str(options.get("decoder") or "beam")
        correct = str(options.get("correct", "true")).lower() not in ("false", "0", "no", "off")
        return read_lines(data, registry().line(), decoder, correct, _speller(), pixels, not canvas,
                          registry().line_filter(), registry().line_lm())  # fmt: skip
    name = options.get("profile") or options.get("personal")  # personal= is the older name
    profile = existing_profile(Path(current_app.config["PERSONAL_DIR"]), str(name)) if name else None
    if task == "page":
        alphabet, engine = str(options.get("alphabet") or "digit"), str(options.get("engine") or "cnn")
        return read_page(data, registry(), alphabet, engine, pixels, _threshold(page_alphabet(alphabet)[0]), profile)
    alphabet = options.get("alphabet")
    hint = None if not alphabet or alphabet == task else str(alphabet)  # "character" for characters: any
    if canvas and task in available_tasks(registry()):
        what = task if hint in (None, "any") or task == "digit" else hint  # what the page path calls it
        sequence = read_drawing(data, registry(), what, pixels, _threshold(task), profile)
        if sequence is not None:
            return sequence
    return recognize(data, task, registry(), pixels, _threshold(task), profile, hint)


def _answer(data: bytes, task: str, options, canvas: bool = False):
    """Recognise ``data`` as ``task``, keep the answer for feedback, and answer with JSON."""
    with limits.heavy(task, _check_size(data)):
        reading = _read(data, task, options, canvas)
    if task == "line":
        for line, pid in zip(reading.result["lines"], feedback.record_lines(reading), strict=True):
            line["prediction_id"] = pid
        return jsonify(reading.result)
    if isinstance(reading, PageReading):  # a page, or several characters drawn side by side
        for glyph, pid in zip(reading.result["glyphs"], feedback.record_page(reading), strict=True):
            glyph["prediction_id"] = pid
        return jsonify(reading.result)
    return jsonify(reading.result | {"prediction_id": feedback.record_prediction(reading, task)})


def _threshold(task: str) -> float | None:
    """The configured "not sure" threshold for ``task``, if any."""
    value = current_app.config["UNSURE_THRESHOLDS"].get(task)
    return None if value is None else float(value)


def _uploaded_file() -> bytes:
    """The image in the request's ``file`` field, with the upload errors every route shares."""
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise ApiError("unsupported_media_type", 'Send multipart/form-data with the image in the "file" field.')
    file = request.files.get("file")
    data = file.read(current_app.config["MAX_UPLOAD_BYTES"] + 1) if file is not None else b""
    if not data:  # a file without a name still counts when it has bytes
        if file is None or not file.filename:
            raise ApiError("no_file", 'No file: attach an image in the "file" field.')
        raise ApiError("no_file", "The uploaded file is empty.")
    return _check_size(data)


def _register_routes(app: Flask) -> None:
    @app.get("/")
    def index():
        tasks = available_tasks(registry()) + (["line"] if registry().has_line() else [])
        return render_template(
            "index.html",
            tasks=[{"name": t, "label": TASK_LABELS.get(t, t.title())} for t in tasks],
            max_upload_mb=current_app.config["MAX_UPLOAD_BYTES"] / 1024 / 1024,
            hog_alphabets=hog_alphabets(registry()),
        )

    @app.get("/healthz")
    def healthz():
        sync = feedback.syncer()
        sheets = {"configured": sync is not None}
        if sync is not None:
            sheets |= {"pending": feedback.store().counts()["pending_sync"], "last_error": sync.last_error}
        tasks = offered_tasks(registry())
        return jsonify({"status": "ok", "tasks": tasks, "loaded": registry().loaded(), "sheets": sheets})

    @app.post("/submit")
    def submit():
        if not request.is_json:
            raise ApiError(
                "unsupported_media_type", 'Send JSON: {"image": "data:image/png;base64,...", "task": "digit"}.'
            )
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError("no_image", "The request body is not a JSON object.")
        metrics.note_task(body.get("task", "digit"))
        image = body.get("image")
        if not isinstance(image, str) or not image:
            raise ApiError("no_image", 'No image: send the canvas as a data: URL in "image".')
        return _answer(decode_data_url(image), str(body.get("task", "digit")), body, canvas=True)

    @app.post("/upload")
    def upload():
        metrics.note_task(request.form.get("task", "digit"))
        return _answer(_uploaded_file(), request.form.get("task", "digit"), request.form)

    @app.post("/sheet/check")
    def check_sheet():
        """Segment and check a handwriting sheet; keep it (by id) for training."""
        data = _uploaded_file()
        with limits.heavy_slot():
            sheet = read_sheet(data, registry().get("digit"), current_app.config["MAX_PAGE_PIXELS"])
        sheet_id = save_sheet(Path(current_app.config["PERSONAL_DIR"]), sheet)
        annotated = annotate(sheet.gray, [b | {"text": b["label"], "unsure": False} for b in sheet.boxes])
        return jsonify({"sheet_id": sheet_id, "rows": sheet.rows, "glyphs": len(sheet.labels),
                        "annotated_png": png_data_url(annotated)})  # fmt: skip

    @app.post("/sheet/train")
    def train_sheet():
        """Train personal models from a checked sheet (changes models: admin token required)."""
        _require_admin()
        body = _json_object()
        root = Path(current_app.config["PERSONAL_DIR"])
        sheet = load_sheet(root, str(body.get("sheet_id", "")))
        name = str(body.get("name", ""))
        from training.personal import train_personal

        info = train_personal(sheet, name, personal_dir(root, name), registry().source("digit"))
        return jsonify(info)

    @app.get("/sheet/models")
    def personal_models():
        return jsonify(list_personal(Path(current_app.config["PERSONAL_DIR"])))

    @app.post("/feedback")
    def give_feedback():
        if not request.is_json:
            raise ApiError(
                "unsupported_media_type", 'Send JSON: {"prediction_id": "...", "correct": false, "label": "7"}.'
            )
        return jsonify(feedback.accept(request.get_json(silent=True), _labels_of))


def _require_admin() -> None:
    """Refuse unless the request carries the configured admin token (none configured: refuse all)."""
    token = current_app.config.get("ADMIN_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = str(token) if token is not None else ""  # HWR_ADMIN_TOKEN=123 arrives as a number
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise ApiError(
            "forbidden", "This needs the admin token: send the header Authorization: Bearer <HWR_ADMIN_TOKEN>."
        )


def _speller() -> Speller | None:
    """The word-list speller configured by ``LINE_WORDS`` (loaded once per app), or None for English."""
    path = current_app.config.get("LINE_WORDS")
    if not path:
        return None
    cached = current_app.extensions.get("line_speller")
    if cached is None or cached[0] != path:
        words = [w.strip() for w in Path(path).read_text(encoding="utf-8").splitlines() if w.strip()]
        cached = current_app.extensions["line_speller"] = (path, Speller(words))
    return cached[1]


def _labels_of(task: str) -> list[str]:
    """The labels a correction of ``task`` is checked against (a line: its model's characters; a
    page's glyph: the labels of the model its alphabet names)."""
    if task == "line":
        return registry().line().labels
    return registry().get(page_alphabet(task)[0] if task in PAGE_ALPHABETS else task).labels


def _json_object() -> dict:
    """The request's JSON body when it is an object; an empty one when there is none."""
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError("bad_request", "The request body must be a JSON object.")
    return body


def _register_admin_routes(app: Flask) -> None:
    """Routes that export data or change models: all need the admin token."""

    @app.before_request
    def admin_only():
        if request.path.startswith("/admin/"):
            _require_admin()

    @app.get("/admin/feedback/export")
    def export_feedback():
        fmt = request.args.get("format", "csv")
        rows = feedback.store().feedback(request.args.get("task") or None, images=fmt == "zip")
        buf = io.BytesIO()
        if fmt == "zip":
            feedback.write_zip(rows, buf)
            mime = "application/zip"
        elif fmt == "csv":
            text = io.StringIO()
            feedback.write_csv(rows, text)
            buf.write(text.getvalue().encode("utf-8"))
            mime = "text/csv"
        else:
            raise ApiError("bad_request", 'Choose format "csv" or "zip".')
        buf.seek(0)
        return send_file(buf, mimetype=mime, as_attachment=True, download_name=f"feedback.{fmt}")

    @app.post("/admin/feedback/sync")
    def sync_feedback():
        sync = feedback.syncer()
        if sync is None:
            raise ApiError("sheets_not_configured", "Google Sheets is not configured.")
        try:
            sent = sync.sync_once()
        except feedback.SyncError as exc:
            return _error("sync_failed", str(exc), 502)
        return jsonify({"sent": sent, "pending": feedback.store().counts()["pending_sync"]})

    @app.get("/admin/models")
    def list_models():
        models_dir, reg = Path(current_app.config["MODELS_DIR"]), registry()
        return jsonify(
            {t: versions.list_versions(models_dir, reg.weights_dir / TASK_WEIGHTS[t], t) for t in reg.tasks()}
        )

    @app.post("/admin/models/<task>/rollback")
    def rollback_model(task: str):
        if task not in registry().tasks():
            raise ApiError("unknown_task", f"Unknown task {quoted(task)}.")
        to = _json_object().get("to")
        shipped = registry().weights_dir / TASK_WEIGHTS[task]
        try:
            active = versions.rollback(
                Path(current_app.config["MODELS_DIR"]), shipped, task, None if to is None else str(to)
            )
        except (ValueError, OSError) as exc:
            raise ApiError("cannot_roll_back", str(exc)) from exc
        return jsonify({"task": task, "active": active})


def _error(code: str, message: str, status: int | None = None):
    """JSON error body (with the request's id) and its HTTP status."""
    return error_response(code, message, status or ERROR_STATUS.get(code, 400))


def _register_errors(app: Flask) -> None:
    @app.errorhandler(InputError)
    def input_error(exc: InputError):
        return _error(exc.code, exc.message)

    @app.errorhandler(limits.Busy)
    def busy(exc: limits.Busy):
        response, status = _error(exc.code, exc.message)
        return response, status, {"Retry-After": str(exc.retry_after)}

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        message = f"Too many requests from your address (the limit is {exc.description}); try again shortly."
        response, status = _error("rate_limited", message)
        return response, status  # Flask-Limiter adds Retry-After and X-RateLimit-* to it

    @app.errorhandler(WeightsError)
    def weights_error(exc: WeightsError):
        app.logger.error("model unavailable: %s", exc)
        return _error("model_unavailable", str(exc))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        limit = current_app.config["MAX_UPLOAD_BYTES"]
        return _error("too_large", f"The upload is over the size limit of {limit:,} bytes.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _error(exc.name.lower().replace(" ", "_"), exc.description or exc.name, exc.code)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unexpected error")
        return _error("internal_error", "Something went wrong on our side; please try again.", 500)


def _image_files(paths: tuple[str, ...]) -> list[Path]:
    """Files named, and image files inside named folders (sorted), in argument order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        else:
            out.append(p)
    return out


@click.command("recognize")
@click.option(
    "--task", default="digit", show_default=True, help="What to read: " + ", ".join(GLYPH_TASKS) + ", page, line."
)
@click.option("--alphabet", type=click.Choice(sorted(set(PAGE_ALPHABETS) | set(ALPHABET_HINTS))), default=None,
              help="character: read among these classes only (default any); page: what the page holds "
                   "(default digit)")  # fmt: skip
@click.option("--engine", type=click.Choice(ENGINES), default="cnn", show_default=True,
              help="page: the CNN models or the classical HOG engine")  # fmt: skip
@click.option(
    "--profile",
    "--personal",
    "profile",
    default=None,
    help="a profile's name: its adapted model reads (see `flask personal teach`, `flask sheet train`)",
)
@click.option("--decoder", type=click.Choice(DECODERS), default="beam", show_default=True, help="line: CTC decoding")
@click.option("--correct/--no-correct", default=True, show_default=True, help="line: spelling correction")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@with_appcontext
def recognize_command(
    task: str,
    alphabet: str | None,
    engine: str,
    profile: str | None,
    decoder: str,
    correct: bool,
    paths: tuple[str, ...],
) -> None:
    """Print one JSON object per image (the API's response shape plus "file"), one per line.
    Exits with status 1 when any file could not be read."""
    config = current_app.config
    failures = 0
    for path in _image_files(paths):
        try:
            if path.stat().st_size > config["MAX_UPLOAD_BYTES"]:
                limit = config["MAX_UPLOAD_BYTES"]
                raise ApiError("too_large", f"The image is {path.stat().st_size:,} bytes; the limit is {limit:,}.")
            options = {"alphabet": alphabet, "engine": engine, "profile": profile, "decoder": decoder,
                       "correct": correct}  # fmt: skip
            result = _read(path.read_bytes(), task, options).result
        except InputError as exc:
            failures += 1
            result = {"error": {"code": exc.code, "message": exc.message}}
        except OSError as exc:
            failures += 1
            result = {"error": {"code": "unreadable_file", "message": f"Cannot read the file: {exc.strerror}."}}
        except WeightsError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps({"file": str(path)} | result))
    if failures:
        sys.exit(1)


sheet_cli = AppGroup("sheet", help="Personal handwriting sheets: train and list personal models.")


@sheet_cli.command("train")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True, help="name of the personal model (letters, digits, - or _)")
def sheet_train_command(path: str, name: str) -> None:
    """Check a filled-in sheet and train the personal HOG and CNN models from it."""
    from training.personal import train_personal

    config = current_app.config
    root = Path(config["PERSONAL_DIR"])
    try:
        sheet = read_sheet(Path(path).read_bytes(), registry().get("digit"), config["MAX_PAGE_PIXELS"])
        out = personal_dir(root, name)
    except InputError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"sheet: {len(sheet.labels)} glyphs in 10 rows ({', '.join(str(r['count']) for r in sheet.rows)})")
    info = train_personal(sheet, name, out, registry().source("digit"))
    for engine, acc in info["metrics"]["held_out_accuracy"].items():
        click.echo(f"{engine}: {acc:.1%} on {info['samples']['held_out']} held-out glyphs of the sheet")
    click.echo(f"saved {out}; read pages with it: --task page --personal {name}")


@sheet_cli.command("list")
def sheet_list_command() -> None:
    """List the personal models."""
    for item in list_personal(Path(current_app.config["PERSONAL_DIR"])):
        click.echo(json.dumps(item))


def waitress_options(environ: dict[str, str], body_limit: int) -> dict:
    """waitress settings against slow and idle clients (README "Limits").

    Waitress reads each request whole before a thread takes it, so a client that sends its
    headers and never its body holds a connection but no thread. ``channel_timeout`` closes a
    connection idle that long (checked every ``cleanup_interval``); the connection limit is well
    above what idle clients of one address should reach, with poll() rather than select() so more
    than 1,024 sockets work. Against many slow clients the reverse proxy in front (README "Scaling
    out") holds the connections instead."""
    timeout = int(environ.get("HWR_CHANNEL_TIMEOUT", "30"))
    return {
        "threads": int(environ.get("HWR_THREADS", "8")),
        "channel_timeout": timeout,
        "cleanup_interval": max(1, min(10, timeout // 2)),
        "connection_limit": int(environ.get("HWR_CONNECTION_LIMIT", "500")),
        "asyncore_use_poll": True,
        "max_request_header_size": 64 * 1024,
        "max_request_body_size": 2 * body_limit,  # the app answers up to twice its limit (JSON 413), waitress beyond
    }


def _raise_open_files_limit() -> None:
    """The soft limit on open files up to the hard one: each connection is a file."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    except (ImportError, ValueError, OSError):
        pass  # not on this platform, or not allowed: the default limit stays


def main() -> None:
    """Serve with waitress (a production WSGI server) on HWR_HOST:HWR_PORT, models preloaded."""
    from waitress import create_server

    logs.configure()  # JSON lines on standard error, each with the request id it was logged under
    host = os.environ.get("HWR_HOST", "127.0.0.1")
    port = int(os.environ.get("HWR_PORT", "5000"))
    _raise_open_files_limit()

    def bind(wsgi, **options):
        try:
            return create_server(wsgi, host=host, port=port, **options)
        except OSError as exc:
            sys.exit(f"Cannot serve on {host}:{port}: {exc.strerror or exc}. Is another server using it? Set HWR_PORT.")

    bind(lambda environ, start_response: []).close()  # is the port free? Said before loading the models
    app = create_app({"PRELOAD_MODELS": True})
    server = bind(app, **waitress_options(dict(os.environ), app.config["MAX_CONTENT_LENGTH"]))  # taken: same
    tasks = ", ".join(offered_tasks(app.extensions["registry"]))
    app.logger.info("serving on http://%s:%d (tasks: %s)", host, port, tasks)
    server.run()


if __name__ == "__main__":
    main()
