"""A server of this app for the benchmarks that drive one over HTTP (load.py, sweep.py, teach.py).

``start_server`` starts it as the README does (``python app.py``: waitress, models preloaded; or
``gunicorn -c gunicorn.conf.py``) on a free port of 127.0.0.1, its feedback store in a given folder,
and waits until it answers. ``Server`` stops it and reads its memory (with its gunicorn workers);
``multipart`` builds the file uploads sent to it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
COMMANDS = {
    "waitress": [sys.executable, "app.py"],
    "gunicorn": [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py"],
}
# one address sends every request: the per-client limits are raised (still checked on each request,
# so their cost is in the figures) instead of refusing
RAISED_LIMITS = {"HWR_RATELIMIT_RECOGNITION": "1000000 per minute", "HWR_RATELIMIT_FEEDBACK": "1000000 per minute"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (a gunicorn master's workers)."""
    found = []
    for listing in sorted(Path(f"/proc/{pid}/task").glob("*/children")):
        try:
            found += [int(p) for p in listing.read_text().split()]
        except OSError:  # the thread has ended
            continue
    return found


def rss_mb(*pids: int) -> float:
    """Resident memory (``VmRSS``) of these processes together, in MB; one that has gone counts 0."""
    kb = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kb += sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kb / 1024


@dataclass
class Server:
    """A started server: its process and port."""

    proc: subprocess.Popen
    port: int
    host: str = HOST

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def workers(self) -> list[int]:
        """Its worker processes (gunicorn's; none for waitress)."""
        return children(self.proc.pid)

    def rss_mb(self) -> float:
        """Resident memory of the server and its workers together, in MB."""
        return rss_mb(self.proc.pid, *self.workers())

    def stop(self, seconds: float = 120) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=seconds)


def start_server(kind: str, tmp: Path, ready: str = "/healthz", seconds: float = 600, **env: str) -> Server:
    """``kind`` (``waitress``: ``python app.py``, or ``gunicorn``) on a free port with its feedback
    store in ``tmp`` and ``env`` added; waits until ``ready`` answers 200. Its output goes to
    ``tmp/server-PORT.log``, shown when it exits or has not answered within ``seconds``."""
    port = free_port()
    env = (
        os.environ
        | {"HWR_PORT": str(port), "HWR_FEEDBACK_DB": str(tmp / "feedback.sqlite3"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        | env
    )
    log = tmp / f"server-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(COMMANDS[kind], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, port)
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(server.url + ready, timeout=5):
                return server
        except OSError:  # refused, an error status (not ready yet), or no answer yet
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise SystemExit(f"{kind} did not start:\n{log.read_text()[-4000:]}") from None
            time.sleep(0.3)


def multipart(
    data: bytes,
    fields: dict[str, str],
    filename: str,
    kind: str = "application/octet-stream",
    boundary: str = "hwr-bench-boundary",
) -> tuple[bytes, str]:
    """A multipart/form-data body: ``fields``, then ``data`` as the file ``filename`` of type
    ``kind``; (body, its Content-Type)."""
    field = 'Content-Disposition: form-data; name="{}"\r\n\r\n{}\r\n'
    head = "".join(f"--{boundary}\r\n" + field.format(k, v) for k, v in fields.items())
    head += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
    head += f"Content-Type: {kind}\r\n\r\n"
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
