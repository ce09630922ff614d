"""JSON error answers: the one body every error of the web layer is given, and the handlers.

``{"error": {"code": ..., "message": ..., "request_id": ...}}`` and any extra fields: the ``code``
is stable for clients and counted in ``/metrics``; the ``request_id`` (also in the ``X-Request-ID``
header) finds the request's log lines. Every ``ServiceError`` (``models/errors.py``) carries its own
code, status, headers and fields, so one handler answers them all: Flask-Limiter's refusal is
answered as ``RateLimited``, Werkzeug's 413 as ``TooLarge`` and an unexpected exception as
``InternalError`` (its traceback logged); Werkzeug's other HTTP errors keep their own names.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify
from flask_limiter.errors import RateLimitExceeded
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from models.errors import InternalError, RateLimited, ServiceError, TooLarge
from web.logs import current_request_id
from web.metrics import count_error


def error_response(code: str, message: str, status: int, **extra: object) -> tuple[Response, int]:
    """The JSON error body and its HTTP status."""
    count_error(code)
    body = {"code": code, "message": message, "request_id": current_request_id()} | extra
    return jsonify({"error": body}), status


def service_error(exc: ServiceError) -> tuple[Response, int, dict[str, str]]:
    """The answer to ``exc``: its code, message and fields, its status and headers (the server's
    faults are logged first)."""
    if exc.logged_as:
        current_app.logger.error("%s: %s", exc.logged_as, exc.message)
    response, status = error_response(exc.code, exc.message, exc.status, **exc.fields())
    return response, status, exc.headers()


def init_app(app: Flask) -> None:
    """Answer every error of ``app`` with the JSON error body."""
    app.register_error_handler(ServiceError, service_error)

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        return service_error(RateLimited(exc.description))  # Flask-Limiter adds Retry-After and X-RateLimit-*

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = current_app.config["MAX_UPLOAD_BYTES"]  # Werkzeug refused the body: answered as our TooLarge
        return service_error(TooLarge(f"The upload is over the size limit of {limit:,} bytes."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.name.lower().replace(" ", "_"), exc.description or exc.name, exc.code)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unexpected error")
        return service_error(InternalError())
