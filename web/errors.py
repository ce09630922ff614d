"""JSON error answers: the one body every error of the web layer is given.

``{"error": {"code": ..., "message": ..., "request_id": ...}}`` and any extra fields: the ``code``
is stable for clients and counted in ``/metrics``; the ``request_id`` (also in the ``X-Request-ID``
header) finds the request's log lines.
"""

from __future__ import annotations

from flask import Response, jsonify

from web.logs import current_request_id
from web.metrics import count_error


def error_response(code: str, message: str, status: int, **extra: object) -> tuple[Response, int]:
    """The JSON error body and its HTTP status."""
    count_error(code)
    body = {"code": code, "message": message, "request_id": current_request_id()} | extra
    return jsonify({"error": body}), status
