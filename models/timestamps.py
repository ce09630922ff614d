"""The one way this project writes a time: UTC, ISO 8601, ending in ``Z``."""

from __future__ import annotations

import datetime as dt


def utc_stamp(at: float | None = None, milliseconds: bool = False) -> str:
    """``2026-12-03T13:20:05Z`` (with ``milliseconds``: ``2026-12-03T13:20:05.123Z``) for now, or
    for the Unix time ``at``."""
    moment = dt.datetime.now(dt.timezone.utc) if at is None else dt.datetime.fromtimestamp(at, dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds" if milliseconds else "seconds").replace("+00:00", "Z")
