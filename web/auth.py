"""The admin token: ``is_admin()`` for a route that also takes other credentials (a profile's own
token), ``@admin_required`` for a route that needs it (``web/admin.py``, ``/metrics``,
``/sheet/train``). No configured token means nobody is admin.
"""

from __future__ import annotations

import functools
import hmac

from flask import current_app, request

from models.errors import Forbidden


def is_admin() -> bool:
    """Whether the request carries the configured admin token (none configured: nobody is admin).
    Compared in constant time."""
    token = current_app.config.get("ADMIN_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = str(token) if token is not None else ""  # HWR_ADMIN_TOKEN=123 arrives as a number
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def admin_required(view):
    """Refuse the view with 403 ``forbidden`` unless the request carries the admin token."""

    @functools.wraps(view)
    def checked(*args, **kwargs):
        if not is_admin():
            raise Forbidden("This needs the admin token: send the header Authorization: Bearer <HWR_ADMIN_TOKEN>.")
        return view(*args, **kwargs)

    return checked
