"""A server of this app for the benchmarks that drive one over HTTP (load.py, sweep.py, teach.py).

``start_server`` starts it as the README does (``python app.py``: waitress, models preloaded; or
``gunicorn -c gunicorn.conf.py``) on a free port of 127.0.0.1, its feedback store in a given folder,
and waits until it answers. ``Server`` waits for it, stops it and reads its memory (with its
gunicorn workers); ``multipart`` builds the file uploads sent to it. The tests start their real
servers with ``spawn`` and ``Server.wait_ready`` too (``tests/helpers.py``).
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


class NotStarted(RuntimeError):
    """A server that exited, or did not answer in time (it is killed): ``log`` holds its output."""

    def __init__(self, message: str, log: str):
        super().__init__(message)
        self.log = log


@dataclass
class Server:
    """A started server: its process, port and log file."""

    proc: subprocess.Popen
    port: int
    log: Path
    command: list[str]
    host: str = HOST

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_ready(self, ready: str = "/healthz", seconds: float = 600) -> bytes:
        """Wait until ``ready`` answers 200 and return its body; ``NotStarted`` (with the log) when
        the server exits or has not answered within ``seconds``."""
        deadline = time.time() + seconds
        while True:
            try:
                with urllib.request.urlopen(self.url + ready, timeout=5) as answer:
                    return answer.read()
            except OSError:  # refused, reset, an error status (not ready yet), or no answer yet (gunicorn
                # listens before its workers load)
                if self.proc.poll() is not None or time.time() > deadline:
                    self.proc.kill()
                    log = self.log.read_text()
                    raise NotStarted(f"{self.command[-1]} did not start:\n{log}", log) from None
                time.sleep(0.3)

    def workers(self) -> list[int]:
        """Its worker processes (gunicorn's; none for waitress)."""
        return children(self.proc.pid)

    def rss_mb(self) -> float:
        """Resident memory of the server and its workers together, in MB."""
        return rss_mb(self.proc.pid, *self.workers())

    def stop(self, seconds: float = 120) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=seconds)


def spawn(command: list[str], tmp: Path, **env: str) -> Server:
    """``command`` (a server of this app) on a free port with its feedback store in ``tmp`` and
    ``env`` added, not waited for. Its output goes to ``tmp/server-PORT.log``."""
    port = free_port()
    env = (
        os.environ
        | {"HWR_PORT": str(port), "HWR_FEEDBACK_DB": str(tmp / "feedback.sqlite3"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        | env
    )
    log = tmp / f"server-{port}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(proc, port, log, command)


def start_server(kind: str, tmp: Path, ready: str = "/healthz", seconds: float = 600, **env: str) -> Server:
    """``kind`` (``waitress``: ``python app.py``, or ``gunicorn``) started by ``spawn``; waits until
    ``ready`` answers 200. Its log is shown when it exits or has not answered within ``seconds``."""
    server = spawn(COMMANDS[kind], tmp, **env)
    try:
        server.wait_ready(ready, seconds)
    except NotStarted as exc:
        raise SystemExit(f"{kind} did not start:\n{exc.log[-4000:]}") from None
    return server


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
