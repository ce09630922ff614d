"""Bounded work per request: heavy requests take turns, every client has a rate limit, and the
server says when it is ready.

- **Heavy slots.** Uploaded pages and lines, sheets, and any image over ``HEAVY_PIXELS`` pixels run at
  most ``HEAVY_MAX_CONCURRENT`` at a time per process (default: one per core). A heavy request
  that finds every slot taken waits up to ``HEAVY_WAIT_SECONDS`` if no more than that many others
  already wait, and otherwise gets ``503 busy`` with ``Retry-After`` at once: so heavy requests
  never hold every server thread, and ``/healthz``, ``/readyz`` and glyph answers keep theirs.
  Blocks over 1 MB are allocated on their own (``tune_malloc``) and, after each heavy request, the
  C allocator is asked to return freed memory to the system, so the process's size comes back
  after a large image.
- **Rate limits** (Flask-Limiter): per client address, on by default for the recognition routes
  (``RATELIMIT_RECOGNITION``) and for feedback (``RATELIMIT_FEEDBACK``); ``429 rate_limited`` with
  ``Retry-After``. The counts live in this process (``swept-memory://``, ``SweptMemoryStorage``)
  unless ``RATELIMIT_STORAGE_URI`` names a shared store (``redis://...``, ``memcached://...``),
  which several workers or hosts then share. Behind a reverse proxy set ``PROXY_HOPS`` (how many
  proxies append to ``X-Forwarded-For``) so that the client, not the proxy, is counted.
- **Readiness** (``readiness``, answered at ``/readyz`` by ``web/api.py``): ready when every model
  this server offers is loaded and the feedback store answers a query, ``not_ready`` (with what is
  missing, a 503) otherwise; it never loads anything, so it answers in milliseconds. ``/healthz``
  stays the liveness check.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import MemoryStorage
from werkzeug.middleware.proxy_fix import ProxyFix

from feedback.wiring import store
from models.errors import ServerBusy
from models.preprocessing import image_size
from models.reading.glyph import offered_tasks

HEAVY_TASKS = ("page", "line")  # read at 2000 px, with many glyphs or a line model: always heavy
DEFAULTS = {  # app.config settings (HWR_... in the environment), set in app.create_app
    "HEAVY_MAX_CONCURRENT": os.cpu_count() or 1,  # heavy requests running at once, per process
    "HEAVY_WAIT_SECONDS": 1.0,  # how long a heavy request may wait for a slot before 503
    "HEAVY_PIXELS": 4_000_000,  # an image with more pixels than this (2000x2000) is heavy whatever the task
    "RATELIMIT_RECOGNITION": "120 per minute",  # per client: a person drawing is far below; bulk API use raises it
    "RATELIMIT_FEEDBACK": "240 per minute",  # a page of glyphs is corrected one click at a time
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "swept-memory://",  # per process (SweptMemoryStorage); redis://... to share
    "RATELIMIT_HEADERS_ENABLED": True,  # X-RateLimit-* and Retry-After on limited routes
    "PROXY_HOPS": 0,  # reverse proxies in front that append X-Forwarded-For (0: none, the peer is the client)
    "TUNE_MALLOC": True,  # large blocks by mmap, returned when freed (glibc): see tune_malloc
}


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_LIBC = _libc()  # glibc, or None elsewhere (then nothing below changes anything)
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 1 << 20


def tune_malloc() -> bool:
    """Allocate every block over 1 MB (a decoded image, its float copies) with its own mmap, which
    goes back to the system the moment it is freed. By default glibc raises this threshold after
    each large free, up to 32 MB, so large images end up in the heaps of the server threads and
    stay there: RSS grew from 716 MB to 2.2 GB over the sweep and did not come back. True when set."""
    return bool(_LIBC is not None and _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim_memory() -> None:
    """Return the memory a large image left free to the system (glibc only; a no-op elsewhere)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class HeavySlots:
    """At most ``slots`` heavy requests at a time, and at most ``slots`` more waiting for one."""

    def __init__(self, slots: int, wait_seconds: float):
        self.slots = max(1, int(slots))
        self.wait_seconds = float(wait_seconds)
        self._free = threading.BoundedSemaphore(self.slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self._durations: deque[float] = deque(maxlen=32)

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the median heavy request lately, at least 1."""
        with self._lock:
            recent = list(self._durations)
        return max(1, math.ceil(statistics.median(recent))) if recent else 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; raises ``ServerBusy`` when none comes free in time."""
        got = self._free.acquire(blocking=False)
        if not got:
            with self._lock:
                may_wait = self._waiting < self.slots and self.wait_seconds > 0
                self._waiting += may_wait
            if may_wait:
                try:
                    got = self._free.acquire(timeout=self.wait_seconds)
                finally:
                    with self._lock:
                        self._waiting -= 1
        if not got:
            wait = self.retry_after()
            raise ServerBusy(f"The server is reading {self.slots} large images already; try again in {wait} s.", wait)
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._durations.append(time.perf_counter() - start)
            self._free.release()
            trim_memory()


def decoded_pixels(data: bytes) -> int:
    """Width times height from the image's header (nothing decoded); 0 when it is not an image."""
    try:
        width, height = image_size(data, turned=False)  # the EXIF turn changes no product
    except Exception:  # noqa: BLE001 - not an image: the recognition path says what is wrong with it
        return 0
    return width * height


def is_heavy(task: str, data: bytes, canvas: bool = False) -> bool:
    """Whether reading ``data`` as ``task`` needs a heavy slot: an uploaded page or line, or any
    image over ``HEAVY_PIXELS``. A drawing on the page's canvas is small (a line's re-reads while
    somebody writes must not queue behind each other), so it is heavy only when it is that large."""
    return (task in HEAVY_TASKS and not canvas) or decoded_pixels(data) > int(current_app.config["HEAVY_PIXELS"])


def heavy_slot():
    """This process's heavy slot, as a context manager (``ServerBusy`` when none is free in time)."""
    return current_app.extensions["heavy_slots"].slot()


@contextmanager
def heavy(task: str, data: bytes, canvas: bool = False) -> Iterator[None]:
    """A heavy slot around the block when ``task`` on ``data`` is heavy work; nothing otherwise."""
    if is_heavy(task, data, canvas):
        with heavy_slot():
            yield
    else:
        yield


def _client_key() -> str:
    return get_remote_address() or "unknown"


def _configured(setting: str):
    """A limit read from the running app's config on each request (so a test or a reload can set it)."""
    return lambda: str(current_app.config[setting])


def limit_routes(app: Flask, routes: dict[str, str]) -> None:
    """Put the limit that the config ``setting`` names on each ``endpoint`` (``routes``: endpoint
    -> setting), for every client separately; endpoints under one setting share one count."""
    limiter = app.extensions["hwr_limiter"]
    for endpoint, setting in routes.items():
        shared = limiter.shared_limit(_configured(setting), scope=setting.lower())
        app.view_functions[endpoint] = shared(app.view_functions[endpoint])


class SweptMemoryStorage(MemoryStorage):
    """limits' ``memory://`` storage without a thread per request. ``MemoryStorage`` drops expired
    counts in a ``threading.Timer`` of 10 ms that it starts on a hit whenever none is running: under
    steady traffic that is a new thread for nearly every request, which cost 0.7 ms of CPU per
    ``/submit`` on the production server (an eighth of the request; README "Production server").
    Here the hit's own thread drops them, at most once every ``SWEEP_SECONDS``. Counting is
    unchanged: a count is checked for expiry whenever it is read (``MemoryStorage.get``), and the
    sweep only bounds how many counts of clients gone quiet are held. ``limits`` is pinned
    (requirements.txt): this replaces its private ``__schedule_expiry``, and a test fails if that
    stops taking effect."""

    STORAGE_SCHEME = ["swept-memory"]  # limits registers the scheme with the class
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        self._next_sweep = 0.0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - replaces the base class's private method
        now = time.monotonic()
        if now >= self._next_sweep:  # two threads sweeping at once is harmless: each drop is a pop
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()


def init_app(app: Flask) -> None:
    """Heavy slots and the rate limiter (one per app: its route limits are its own)."""
    if app.config["TUNE_MALLOC"]:
        tune_malloc()
    hops = int(app.config["PROXY_HOPS"])
    if hops:  # X-Forwarded-For / -Proto / -Host of that many proxies are believed, no more
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.extensions["heavy_slots"] = HeavySlots(app.config["HEAVY_MAX_CONCURRENT"], app.config["HEAVY_WAIT_SECONDS"])

    @app.after_request  # registered first, so it runs after Flask-Limiter has added its headers
    def retry_after_only_when_refused(response):
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)  # Flask-Limiter puts its window's reset on every answer
        return response

    app.extensions["hwr_limiter"] = Limiter(key_func=_client_key, app=app, default_limits=[])


def readiness() -> dict[str, object]:
    """Whether this server is ready, without loading anything: ``{"status": "ready" | "not_ready",
    "models_missing": [...], "store": bool}`` (every offered model loaded, the feedback store answers)."""
    reg = current_app.extensions["registry"]
    loaded = reg.loaded()
    missing = [t for t in offered_tasks(reg) if t != "page" and t not in loaded]  # a page uses a glyph model
    store_ok = True
    try:
        store().ping()
    except Exception:  # noqa: BLE001 - any failure of the store means not ready, with the reason logged
        current_app.logger.exception("readiness: the feedback store does not answer")
        store_ok = False
    ready = not missing and store_ok
    return {"status": "ready" if ready else "not_ready", "models_missing": missing, "store": store_ok}
