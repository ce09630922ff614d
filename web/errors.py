"""JSON error answers: the one body every error of the web layer is given, and the handlers.

``{"error": {"code": ..., "message": ..., "request_id": ...}}`` and any extra fields: the ``code``
is stable for clients and counted in ``/metrics``; the ``request_id`` (also in the ``X-Request-ID``
header) finds the request's log lines. Every ``InputError`` (``models/errors.py``) carries its own
code, status and headers, so one handler answers them all; the others here are the server's faults
(``model_unavailable``, ``internal_error``) and Werkzeug's and Flask-Limiter's own exceptions.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from models.errors import InputError, WeightsError
from web.logs import current_request_id
from web.metrics import count_error


def error_response(code: str, message: str, status: int, **extra: object) -> tuple[Response, int]:
    """The JSON error body and its HTTP status."""
    count_error(code)
    body = {"code": code, "message": message, "request_id": current_request_id()} | extra
    return jsonify({"error": body}), status


def init_app(app: Flask) -> None:
    @app.errorhandler(InputError)
    def input_error(exc: InputError):
        response, status = error_response(exc.code, exc.message, exc.status, **exc.fields())
        return response, status, exc.headers()

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        message = f"Too many requests from your address (the limit is {exc.description}); try again shortly."
        return error_response("rate_limited", message, 429)  # Flask-Limiter adds Retry-After and X-RateLimit-*

    @app.errorhandler(WeightsError)
    def weights_error(exc: WeightsError):
        app.logger.error("model unavailable: %s", exc)
        return error_response("model_unavailable", str(exc), 503)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        limit = current_app.config["MAX_UPLOAD_BYTES"]
        return error_response("too_large", f"The upload is over the size limit of {limit:,} bytes.", 413)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.name.lower().replace(" ", "_"), exc.description or exc.name, exc.code)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unexpected error")
        return error_response("internal_error", "Something went wrong on our side; please try again.", 500)
