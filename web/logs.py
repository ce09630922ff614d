"""Request ids and structured log lines.

Every request gets an id: the client's (or the reverse proxy's) ``X-Request-ID`` when it is short
and plain (``SANE_ID``), otherwise a new one. It comes back in the ``X-Request-ID`` response
header and in every JSON error body, and ``RequestIdFilter`` puts it on each log record made while
the request is handled, whichever module logs it. ``configure`` (``python app.py``, and each
gunicorn worker) writes one JSON object per line: time, level, logger, request_id, message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from typing import TextIO

from flask import Flask, Response, g, has_request_context, request

from models.timestamps import utc_stamp

HEADER = "X-Request-ID"
SANE_ID = re.compile(r"[A-Za-z0-9._:=+/@-]{1,64}")  # a uuid, nginx's $request_id, an AWS trace id; no spaces
NO_REQUEST = "-"  # the request_id of log lines made outside a request (start-up, background sync)


def init_app(app: Flask) -> None:
    """Return each request's id in ``X-Request-ID``; app.logger's records carry it wherever handled."""
    app.after_request(_send)
    app.logger.addFilter(RequestIdFilter())


def _send(response: Response) -> Response:
    response.headers[HEADER] = current_request_id()
    return response


def current_request_id() -> str:
    """The id of the request being handled (given the first time it is asked for, so whichever
    hook logs or fails first already has it), or ``NO_REQUEST`` outside a request."""
    if not has_request_context():
        return NO_REQUEST
    if "request_id" not in g:
        given = request.headers.get(HEADER, "")
        g.request_id = given if SANE_ID.fullmatch(given) else uuid.uuid4().hex
    return g.request_id


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id``: the id of the request the logging thread is handling."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so a log shipper needs no pattern to split fields; times in UTC
    (``utc_stamp``, with milliseconds)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": utc_stamp(record.created, milliseconds=True),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", NO_REQUEST),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def handler(stream: TextIO | None = None) -> logging.Handler:
    """A handler writing ``stream`` (default standard error) as JSON lines with request ids."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.addFilter(RequestIdFilter())
    out.setFormatter(JsonFormatter())
    return out


def configure(level: int = logging.INFO) -> None:
    """Send every logger's records to standard error as JSON lines (once per process)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.addHandler(handler())
    root.setLevel(level)
