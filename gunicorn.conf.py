"""gunicorn settings for serving many people: ``gunicorn -c gunicorn.conf.py``.

The entry point is the app factory (``app.create_app``), with every model loaded before a worker
takes its first request. ``python app.py`` (waitress, one process) stays the embedded default.

Why these numbers (measured on this repository's 2-core machine, README "Production server"):
- one worker process per core: preprocessing and decoding are Python and numpy, so a process per
  core is what gets past the GIL; two threads per worker keep the core busy while a request
  waits on a database commit or the network. More threads only add contenders for the GIL: at 16
  clients 4 threads gave no more requests/s on SQLite or PostgreSQL, and a health check waited
  for the GIL behind them (``/healthz`` p99 19-30 ms with 4 threads, 22-24 ms with 3, 12-16 ms
  with 2);
- the models load in each worker after the fork (``preload_app = False``), so ``kill -HUP``
  reloads code and models too (a preloaded app is not reloaded). The models run in ONNX Runtime,
  not TensorFlow, so a worker starts in a few seconds and holds about 370 MB. (While the server
  ran TensorFlow this was forced as well: forked after loading, its thread pools hung every
  ``/submit``.)
- ``kill -HUP <master>`` reloads gracefully: new workers start with the new code and config while
  the old ones finish the requests they hold (up to ``graceful_timeout``).
"""

import os

CORES = os.cpu_count() or 1

wsgi_app = "app:create_app({'PRELOAD_MODELS': True})"  # load every model before the first request
bind = [f"{os.environ.get('HWR_HOST', '127.0.0.1')}:{os.environ.get('HWR_PORT', '5000')}"]
workers = int(os.environ.get("WEB_CONCURRENCY", CORES))  # gunicorn's usual variable for the count
worker_class = "web.gunicorn_worker.HealthLaneWorker"  # gthread, with health checks in a lane of their own
threads = int(os.environ.get("HWR_WORKER_THREADS", "2"))  # per worker: overlap commits and network
preload_app = False  # HUP reloads code and models (see above)
timeout = 120  # a worker silent this long is restarted; generous, since start-up loads the models
graceful_timeout = 30  # on HUP or TERM, what a worker may take to finish its requests
keepalive = 5  # seconds an idle keep-alive connection stays open (behind a proxy: above its own)
max_requests = 0  # no recycling: each new worker pays a model load
control_socket_disable = True  # no control socket in $HOME: several servers may run side by side
accesslog = os.environ.get("HWR_ACCESS_LOG")  # "-" for standard output; off by default

# /metrics sums the counts of every worker (web/metrics.py): each process writes its own files in
# this folder, emptied when the server starts so counts of an earlier run are not added in
METRICS_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR",
    os.path.join(os.environ.get("TMPDIR", "/tmp"), f"hwr-metrics-{os.environ.get('HWR_PORT', '5000')}"),
)


def on_starting(server):
    """Before any worker starts: an empty metrics folder."""
    import shutil

    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    os.makedirs(METRICS_DIR, mode=0o700)


def post_worker_init(worker):
    """Log lines of each worker as JSON, with the request id (web/logs.py)."""
    from web import logs

    logs.configure()


def child_exit(server, worker):
    """A worker that exits leaves its counters (they stay in the sums) but not its live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
