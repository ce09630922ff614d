"""A real PostgreSQL server for the store tests, started by the suite itself: Debian's
``postgresql`` package (``initdb`` and ``pg_ctl`` from /usr/lib/postgresql/<version>/bin) in a
temporary folder, on a free port on 127.0.0.1, with a random password (scram-sha-256), as an
unprivileged user when the suite runs as root (PostgreSQL refuses to run as root).

Where the binaries are missing, the PostgreSQL tests are skipped with the reason, except under CI
(``CI`` set, as ``.ci/run`` runs), where they fail: CI must install PostgreSQL, not skip it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.server import free_port

SERVER_USER = "postgres"  # Debian's package makes it; "nobody" where it does not exist
ROLE = "hwr"


def bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: the newest /usr/lib/postgresql/<version>/bin, else PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]), reverse=True)
    if versions:
        return versions[0].parent
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found and shutil.which("initdb") else None


@dataclass
class PostgresServer:
    """A running server: its folder, port and the password of its one role."""

    root: Path
    bin: Path
    port: int
    password: str
    user: str | None  # the unprivileged user the server runs as when we are root

    def url(self, database: str = "postgres") -> str:
        """A connection URL for ``database`` (it carries the password: never print it)."""
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement on the maintenance database (CREATE/DROP DATABASE need autocommit)."""
        import psycopg  # only once a PostgreSQL server runs

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = "test_" + secrets.token_hex(6)
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by ``create_database``, closing whatever still uses it."""
        self.admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and remove its folder."""
        _run(self.user, [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", mode, "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


def _run(user: str | None, cmd: list[str]) -> subprocess.CompletedProcess:
    """Run ``cmd`` (as ``user`` via runuser when given), raising with its output on failure."""
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    done = subprocess.run(full, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:1])} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done


def start_postgres() -> PostgresServer:
    """initdb a fresh cluster in a temporary folder and start it; raises RuntimeError when it cannot."""
    found = bindir()
    if found is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb/pg_ctl): apt-get install postgresql")
    user = (SERVER_USER if _exists(SERVER_USER) else "nobody") if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="hwr-pg-"))
    password = secrets.token_urlsafe(18)
    pwfile = root / "pw"
    pwfile.write_text(password)
    (root / "sock").mkdir()
    for path in (root, pwfile, root / "sock"):
        _give(path, user)
    # --no-sync only skips flushing the freshly made template files; the running server fsyncs every commit
    _run(
        user,
        [
            str(found / "initdb"),
            "-D",
            str(root / "data"),
            "-U",
            ROLE,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ],
    )
    pwfile.unlink()
    port = free_port()
    options = f"-p {port} -k {root / 'sock'} -c listen_addresses=127.0.0.1 -c max_connections=200"
    _run(
        user,
        [
            str(found / "pg_ctl"),
            "-D",
            str(root / "data"),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
    )
    return PostgresServer(root=root, bin=found, port=port, password=password, user=user)


def _give(path: Path, user: str | None) -> None:
    """Make ``path`` belong to ``user`` (the server's data must not be root's)."""
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False
