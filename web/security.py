"""Browser security: response headers on every answer, and a cross-site request check (CSRF).

Headers: a Content-Security-Policy that allows scripts, styles and requests from this origin only
(the page has no inline script or style: ``static/js/`` modules and ``static/style.css``), images
also from ``data:`` and ``blob:`` URLs (what the model saw, a chosen file's preview);
``frame-ancestors 'none'`` (and ``X-Frame-Options`` for older browsers) so no other site can frame
the page; ``X-Content-Type-Options: nosniff``; ``Referrer-Policy: same-origin``.

Cross-site requests: a browser names the page a request comes from in ``Origin``. A request that
changes something (any method but GET, HEAD, OPTIONS) whose ``Origin`` names another host, or is
``null`` (a sandboxed frame, a file on disk), is refused with 403 ``cross_origin`` before any work,
unless that origin is in ``ALLOWED_ORIGINS``. Requests without ``Origin`` (curl, scripts, the CLI)
are not browser form posts made by another site and pass. The host is compared, not the scheme, so
a reverse proxy that ends TLS and forwards ``Host`` keeps working.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request

from models.errors import CrossOrigin

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))


def init_app(app: Flask) -> None:
    """Send the headers on every answer and refuse cross-site state changes."""
    app.config.setdefault("ALLOWED_ORIGINS", [])
    app.before_request(_same_origin_only)
    app.after_request(_headers)


def _headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _same_origin_only():
    origin = request.headers.get("Origin")
    if request.method in SAFE_METHODS or origin is None or is_allowed(origin):
        return None
    raise CrossOrigin("Requests from another site's page are refused; use this site's page or the API.")


def is_allowed(origin: str) -> bool:
    """Whether a request from the page at ``origin`` may change things here."""
    allowed = [o.rstrip("/").lower() for o in current_app.config["ALLOWED_ORIGINS"]]
    if origin.rstrip("/").lower() in allowed:
        return True
    try:
        host = urlsplit(origin).netloc.lower()
    except ValueError:
        return False
    return origin != "null" and bool(host) and host == request.host.lower()
