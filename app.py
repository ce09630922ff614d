"""The application factory and ``python app.py``: settings, the ``init_app`` calls and the
blueprints (``web/``), and the embedded server (waitress) with its limits.

Models load lazily (once per process) unless ``PRELOAD_MODELS`` is set, so importing this module is
cheap. Run ``python app.py`` to serve on the embedded defaults, ``gunicorn -c gunicorn.conf.py`` in
production.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

from flask import Flask, Request

from feedback import wiring as feedback_wiring
from feedback.cli import feedback_cli
from models.decoding.spelling import Speller
from models.errors import BadJson
from models.preprocessing import DEFAULT_MAX_PIXELS, PAGE_MAX_PIXELS
from models.reading.glyph import offered_tasks
from models.reading.page import hog_alphabets
from models.registry import WEIGHTS_DIR, shared_registry
from web import admin, allocator, api, errors, limits, logs, metrics, personal, security
from web.cli import personal_cli, recognize_command, sheet_cli

__all__ = ["create_app", "main", "recognize_command"]  # recognize_command: the CLI tests call it from here


# Every setting with its default. Each can be overridden in instance/config.py, as an HWR_* environment
# variable (HWR_ADMIN_TOKEN=...) or by test_config.
SETTINGS = dict(
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
    DATABASE_URL=None,  # postgresql://...: the shared store instead of FEEDBACK_DB (also $DATABASE_URL)
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
    TEACH_OPTIONS={},  # fields of training.lib.one_sample.TeachConfig (variants, vae_epochs, ...), for tests
    **limits.DEFAULTS,  # heavy slots, rate limits, proxies: web/limits.py
)


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
    allocator.keep_freed_memory()  # numpy's temporaries from the heap, not fresh pages each time
    app = Flask(__name__, instance_relative_config=True)
    app.request_class = JsonRequest
    configure(app, test_config)
    app.extensions["registry"] = shared_registry(app.config["WEIGHTS_DIR"], app.config["MODELS_DIR"])
    if app.config["PRELOAD_MODELS"]:
        preload(app.extensions["registry"])
    for extension in (logs, metrics, security, feedback_wiring, limits, errors):
        extension.init_app(app)
    register_routes(app)
    for command in (recognize_command, sheet_cli, personal_cli, feedback_cli):
        app.cli.add_command(command)
    return app


def configure(app: Flask, test_config: dict | None) -> None:
    """Settings: ``SETTINGS``, then ``instance/config.py``, then ``HWR_*`` environment
    variables, then ``test_config``; the folders derived from the instance folder last."""
    app.config.from_mapping(copy.deepcopy(SETTINGS), DATABASE_URL=os.environ.get("DATABASE_URL"))
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("HWR")
    if test_config:
        app.config.from_mapping(test_config)
    # the whole request may carry one base64 image (4/3 of its size) plus form fields
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_BYTES"] * 4 // 3 + 64 * 1024
    app.config["MODELS_DIR"] = app.config["MODELS_DIR"] or str(Path(app.instance_path) / "models")
    app.config["PERSONAL_DIR"] = app.config["PERSONAL_DIR"] or str(Path(app.instance_path) / "personal")


def preload(reg) -> None:
    """Load every served model now, so the first request of each kind does not pay for it."""
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


def register_routes(app: Flask) -> None:
    """The blueprints, and the rate limits of the routes that do the work."""
    for blueprint in (api.bp, admin.bp, personal.bp):
        app.register_blueprint(blueprint)
    recognition = "RATELIMIT_RECOGNITION"
    limits.limit_routes(
        app,
        {
            "api.submit": recognition,
            "api.upload": recognition,
            "api.check_sheet": recognition,
            "api.give_feedback": "RATELIMIT_FEEDBACK",
        },
    )


def waitress_options(environ: dict[str, str], body_limit: int) -> dict:
    """waitress settings against slow and idle clients (README "Limits").

    Waitress reads each request whole before a thread takes it, so a client that sends its
    headers and never its body holds a connection but no thread. ``channel_timeout`` closes a
    connection idle that long (checked every ``cleanup_interval``); the connection limit is well
    above what idle clients of one address should reach, with poll() rather than select() so more
    than 1,024 sockets work. Against many slow clients the reverse proxy in front (README "Behind
    nginx", deploy/nginx.conf) holds the connections instead."""
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
