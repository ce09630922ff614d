"""web/gunicorn_worker.py: health checks have a lane of their own in the production server, so a
/healthz never waits behind the requests that hold gunicorn's threads."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from tests.helpers import start_gunicorn
from web.gunicorn_worker import is_health_check, peek


@pytest.mark.parametrize(
    ("sent", "health"),
    [
        (b"GET /healthz HTTP/1.1\r\n", True),
        (b"GET /readyz HTTP/1.1\r\n", True),
        (b"GET /healthz?x=1 HTTP/1.1\r\n", True),
        (b"GET /healthzz HTTP/1.1\r\n", False),
        (b"POST /healthz HTTP/1.1\r\n", False),
        (b"POST /submit HTTP/1.1\r\n", False),
    ],
)
def test_a_health_check_is_told_from_its_first_bytes_without_consuming_them(sent, health):
    a, b = socket.socketpair()
    with a, b:
        a.sendall(sent)
        assert is_health_check(peek(b)) is health
        assert b.recv(len(sent)) == sent  # still there for gunicorn's parser


def test_a_connection_that_sent_nothing_yet_is_not_sorted():
    a, b = socket.socketpair()
    with a, b:
        assert peek(b) is None


def test_healthz_answers_while_every_request_thread_is_held(tmp_path):
    """One worker with one thread, held by a client that sends its body slowly: /healthz is still
    answered, then the held request is."""
    proc, port, _ = start_gunicorn(tmp_path, WEB_CONCURRENCY="1", HWR_WORKER_THREADS="1")
    base = f"http://127.0.0.1:{port}"
    try:
        body = json.dumps({"prediction_id": "nope", "correct": True}).encode()
        slow = socket.create_connection(("127.0.0.1", port))
        with slow:
            head = "POST /feedback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(body)}\r\n\r\n"
            slow.sendall(head.encode() + body[:5])  # the only request thread now waits for the rest
            time.sleep(1.0)
            health = json.load(urllib.request.urlopen(base + "/healthz", timeout=20))
            assert health["status"] == "ok"
            slow.sendall(body[5:])
            slow.settimeout(60)
            answer = slow.recv(65536).decode("latin-1")
        assert answer.startswith("HTTP/1.1 4"), answer[:200]  # the held request was answered too (unknown id)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
