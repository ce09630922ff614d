"""Prometheus metrics of the web app: ``GET /metrics`` (admin token) in the text exposition format.

Counted per request by ``init_app``'s hooks:
- ``hwr_requests_total`` {route, method, task, status} and ``hwr_request_duration_seconds``
  {route, task} (a histogram), ``hwr_requests_in_progress`` {route};
- ``hwr_errors_total`` {route, code}: the ``code`` of each JSON error answered (``count_error``).
Read at each scrape: ``hwr_model_info`` {model, version} (the models this process has loaded),
``hwr_sheets_configured``, ``hwr_sheets_pending_rows`` (feedback rows waiting for Google Sheets: one
COUNT on an index), ``hwr_teach_jobs`` {state} (the teach queue, the only job queue there is).

``route`` is the URL rule (``/personal/jobs/<job_id>``; ``unmatched`` when none matched) and
``task`` a served task, ``other`` or empty, so no client can create new series. With
``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn.conf.py sets it), every worker process writes its counts
there and whichever worker answers ``/metrics`` reports the sum of all of them.
"""

from __future__ import annotations

import logging
import os
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector

from feedback.store import StoreError
from feedback.wiring import store, syncer
from models.reading.glyph import GLYPH_TASKS
from web.auth import admin_required

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

TASKS = frozenset((*GLYPH_TASKS, "page", "line"))  # task label values; anything else counts as "other"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# a glyph answers in tens of milliseconds, a page or line in a second or more, a sheet trains for a minute
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

disable_created_metrics()  # no *_created series: Prometheus does not need them and they double the output
COUNTED = CollectorRegistry()  # this process's counts (without PROMETHEUS_MULTIPROC_DIR)
REQUESTS = Counter("hwr_requests", "Requests answered.", ["route", "method", "task", "status"], registry=COUNTED)
LATENCY = Histogram(
    "hwr_request_duration_seconds", "Time to answer a request.", ["route", "task"], buckets=BUCKETS, registry=COUNTED
)
IN_PROGRESS = Gauge(
    "hwr_requests_in_progress", "Requests being handled now.", ["route"], multiprocess_mode="livesum", registry=COUNTED
)
ERRORS = Counter("hwr_errors", "JSON errors answered, by their code.", ["route", "code"], registry=COUNTED)
ProcessCollector(registry=COUNTED)  # memory and CPU of this process (one process only: not under multiprocess)


def init_app(app: Flask) -> None:
    """Count and time every request, and serve ``/metrics``."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)  # first: time even refused requests
    app.after_request(_finish)
    app.teardown_request(_leave)
    app.register_blueprint(bp)


def note_task(task: object) -> None:
    """Label the current request with the task it asked for."""
    g.metrics_task = task if isinstance(task, str) and task in TASKS else "other"


def count_error(code: str) -> None:
    """Count one JSON error answered with ``code``."""
    ERRORS.labels(_route(), code).inc()


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def _start() -> None:
    g.metrics_started = time.perf_counter()
    g.metrics_route = _route()
    IN_PROGRESS.labels(g.metrics_route).inc()


def _finish(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        route, task = _route(), g.get("metrics_task", "")
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(route, method, task, str(response.status_code)).inc()
        LATENCY.labels(route, task).observe(time.perf_counter() - started)
    return response


def _leave(exc: BaseException | None) -> None:
    route = g.pop("metrics_route", None)
    if route is not None:
        IN_PROGRESS.labels(route).dec()


class _Snapshot:
    """A collector of metric families read just now (for one scrape)."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return self.families


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _read_now() -> list:
    """The metrics read at scrape time: loaded models, the Sheets backlog and the teach queue."""
    models = GaugeMetricFamily("hwr_model_info", "Models this process serves (1 each).", labels=["model", "version"])
    for name, version in sorted(current_app.extensions["registry"].loaded().items()):
        if not name.startswith("personal:"):  # one per profile, named by a path: not a series to keep
            models.add_metric([name, version], 1)
    jobs = GaugeMetricFamily("hwr_teach_jobs", "Teach jobs queued or running.", labels=["state"])
    teach_queue = current_app.extensions.get("teach_queue")  # made by the first teach (web.personal.queue)
    counts = teach_queue.counts() if teach_queue is not None else {"queued": 0, "running": 0}
    for state, count in counts.items():
        jobs.add_metric([state], count)
    families = [
        models,
        jobs,
        _gauge("hwr_sheets_configured", "1 when Google Sheets is configured.", int(syncer() is not None)),
    ]
    try:
        pending = store().pending_sync_count()
    except (*store().errors, StoreError):
        log.warning("metrics: the feedback store cannot be read", exc_info=True)
    else:
        text = "Feedback rows waiting in the store for Google Sheets (sent once it is configured)."
        families.append(_gauge("hwr_sheets_pending_rows", text, pending))
    return families


def _counted() -> CollectorRegistry:
    """Every worker's counts under PROMETHEUS_MULTIPROC_DIR, else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return COUNTED
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


@bp.get("/metrics")
@admin_required
def metrics():
    """The Prometheus text exposition; needs the admin token (see README "Metrics and logs")."""
    now = CollectorRegistry()
    now.register(_Snapshot(_read_now()))
    return Response(generate_latest(_counted()) + generate_latest(now), content_type=CONTENT_TYPE_LATEST)
