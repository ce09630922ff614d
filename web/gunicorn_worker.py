"""The gunicorn worker class of ``gunicorn.conf.py``: gunicorn's threaded worker (``gthread``) with
a lane of its own for health checks.

A ``gthread`` worker hands every request to one pool of threads, first come first served. Under
load that queue holds several recognitions (a few milliseconds of CPU each), and a load balancer's
``GET /healthz`` waited behind all of them: 60-150 ms p99 at 16 clients on 2 cores, enough for a
balancer with a short timeout to take a busy but healthy instance out of service. Here a request
whose first bytes are ``GET /healthz`` or ``GET /readyz`` goes to a one-thread pool of its own, so
it waits only for its share of the CPU, never for the queue.

The request line is read with ``MSG_PEEK`` (the bytes stay for gunicorn's parser) and without
blocking. A new connection whose request has not arrived yet waits on the worker's poller, not in
a thread (gunicorn's own place for connections that are slow to send), and is sorted when its
bytes come; health checkers usually open a new connection each time. A TLS connection (its bytes
are encrypted) takes the usual pool, as every request did before.
"""

from __future__ import annotations

import socket
from concurrent import futures

from gunicorn.workers.gthread import _DEFER, ThreadWorker  # gunicorn is pinned (requirements.txt)

HEALTH_PREFIXES = (b"GET /healthz", b"GET /readyz")  # cheap, and what balancers and orchestrators poll
PEEK_BYTES = max(len(p) for p in HEALTH_PREFIXES) + 1  # and the byte after the path


def peek(sock: socket.socket) -> bytes | None:
    """The first bytes waiting on ``sock``, left there; None when none have arrived yet."""
    try:
        return sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except (OSError, ValueError):  # closed or reset (the pool's handler says so), or a TLS socket
        return b""


def is_health_check(head: bytes | None) -> bool:
    """Whether a request that starts with ``head`` is a health check."""
    return bool(head) and any(
        head.startswith(p) and (len(head) == len(p) or head[len(p) : len(p) + 1] in (b" ", b"?"))
        for p in HEALTH_PREFIXES
    )


class HealthLaneWorker(ThreadWorker):
    """``gthread`` with health checks in a one-thread pool beside the request pool."""

    def init_process(self):
        self.health_pool = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="health")
        super().init_process()

    def enqueue_req(self, conn):
        """A health check to its own lane; anything else to gunicorn's pool, as before; a new
        connection with nothing sent yet to the poller until it sends."""
        if self.cfg.is_ssl:
            return super().enqueue_req(conn)
        head = peek(conn.sock)
        if head is None and not conn.initialized and not conn.data_ready:
            return self.wait_for_request(conn)
        if not is_health_check(head):
            return super().enqueue_req(conn)
        done = self.health_pool.submit(self.handle, conn)
        done.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))
        return None

    def wait_for_request(self, conn):
        """Hand a quiet new connection to gunicorn's own deferral (``finish_request`` of a request
        that saw no data: the poller watches it, and closes it after ``keepalive`` seconds)."""
        quiet = futures.Future()
        quiet.set_result(_DEFER)
        self.finish_request(conn, quiet)

    def run(self):
        try:
            super().run()
        finally:
            self.health_pool.shutdown(wait=False)
