"""A real HTTP server on 127.0.0.1 playing Google's token endpoint and the parts of the Sheets API
that gspread calls for the feedback sync, with faults that can be queued: an HTTP status (500,
429), a hang longer than the client's timeout, or a dropped connection, each either before or
after the request takes effect (the nasty case: Google did the work, the answer never arrived)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class Fault:
    kind: str  # "status", "hang", "drop", or "none" (let one request through)
    status: int = 500
    after_applying: bool = False  # do the write first, then fail
    seconds: float = 3.0  # how long a hang lasts


@dataclass
class FakeGoogle:
    """State of the stand-in: the worksheet's rows, queued faults and a request log."""

    rows: list[list[str]] = field(default_factory=list)
    faults: deque = field(default_factory=deque)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    appended: list[str] = field(default_factory=list)  # the row id of every row ever appended, in order
    tokens_issued: int = 0
    title: str = "Sheet1"
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def service_account(self, path) -> None:
        """Write a service-account key file (a real RSA key) whose token_uri points here."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "hwr-test",
            "private_key_id": "test-key-1",
            "private_key": pem,
            "client_email": "feedback@hwr-test.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }
        path.write_text(json.dumps(info))

    def ids(self) -> list[str]:
        """The row-id column below the header."""
        return [r[8] if len(r) > 8 else "" for r in self.rows[1:]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _cell(a1: str) -> tuple[int, int]:
    """'C5' -> (row 4, col 2), zero-based; a bare column 'I' -> row 0."""
    m = re.match(r"([A-Z]+)(\d*)", a1)
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    return (int(m.group(2)) - 1 if m.group(2) else 0), col - 1


def _range(rng: str) -> str:
    """ "'Sheet1'!A1:I1" -> "A1:I1"."""
    return unquote(rng).split("!")[-1]


class FakeSheetsHandler(BaseHTTPRequestHandler):
    """The Sheets API and the token endpoint, answering from ``self.server.state`` (a ``FakeGoogle``)."""

    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> FakeGoogle:
        return self.server.state

    def log_message(self, *args):  # keep test output clean
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.state.log.append((self.command, urlparse(self.path).path, status))

    def _body(self) -> dict:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "") else {}

    def _handle(self) -> None:
        url = urlparse(self.path)
        body = self._body()
        if url.path == "/token":
            self.state.tokens_issued += 1
            return self._reply(200, {"access_token": f"tok-{self.state.tokens_issued}", "expires_in": 3600})
        if not (self.headers.get("Authorization") or "").startswith("Bearer tok-"):
            return self._reply(401, {"error": {"code": 401, "message": "no token", "status": "UNAUTHENTICATED"}})
        fault = self.state.faults.popleft() if self.state.faults else None
        if fault is not None and fault.kind == "none":  # a placeholder: let this request through
            fault = None
        if fault and not fault.after_applying:
            return self._fail(fault)
        with self.state.lock:
            status, answer = self._apply(url.path, parse_qs(url.query), body)
        if fault:
            return self._fail(fault)
        self._reply(status, answer)

    def _fail(self, fault: Fault) -> None:
        if fault.kind == "status":
            msg = {"error": {"code": fault.status, "message": "injected", "status": "UNAVAILABLE"}}
            return self._reply(fault.status, msg)
        if fault.kind == "hang":
            time.sleep(fault.seconds)
        self.state.log.append((self.command, urlparse(self.path).path, 0))
        self.close_connection = True
        self.connection.close()  # no answer at all

    def _apply(self, path: str, query: dict, body: dict) -> tuple[int, dict]:
        m = re.match(r"^/v4/spreadsheets/([^/:]+)(.*)$", path)  # rest: "", ":batchUpdate" or "/values..."
        if not m:
            return 404, {"error": {"code": 404, "message": "not found"}}
        sid, rest = m.groups()
        if rest == "":
            props = {
                "sheetId": 0,
                "title": self.state.title,
                "index": 0,
                "gridProperties": {"rowCount": 1000, "columnCount": 26},
            }
            sheets = [{"properties": props}]
            return 200, {"spreadsheetId": sid, "properties": {"title": "Feedback"}, "sheets": sheets}
        if rest == ":batchUpdate":  # structural changes: only deleting rows is used
            for req in body.get("requests", []):
                rng = req["deleteDimension"]["range"]
                del self.state.rows[rng["startIndex"] : rng["endIndex"]]
            return 200, {"spreadsheetId": sid, "replies": [{}]}
        if rest == "/values:batchUpdate":
            for item in body["data"]:
                self._write(_range(item["range"]), item["values"])
            return 200, {"spreadsheetId": sid}
        return self._values(sid, rest, body)

    def _values(self, sid: str, rest: str, body: dict) -> tuple[int, dict]:
        """``/values/<range>``: append (POST ``:append``), write (PUT) or read one column (GET)."""
        m = re.match(r"^/values/(.+?)(:append)?$", rest)
        if not m:
            return 404, {"error": {"code": 404, "message": "not found"}}
        rng, append = _range(m.group(1)), m.group(2)
        if append and self.command == "POST":
            self.state.rows.extend([[str(v) for v in r] for r in body["values"]])
            self.state.appended.extend(str(r[8]) if len(r) > 8 else "" for r in body["values"])
            return 200, {"spreadsheetId": sid, "updates": {"updatedRows": len(body["values"])}}
        if self.command == "PUT":
            self._write(rng, body["values"])
            return 200, {"spreadsheetId": sid}
        _, col = _cell(rng.split(":")[0])
        column = [r[col] if len(r) > col else "" for r in self.state.rows]
        while column and column[-1] == "":
            column.pop()
        return 200, {"range": rng, "majorDimension": "COLUMNS"} | ({"values": [column]} if column else {})

    def _write(self, rng: str, values: list[list]) -> None:
        row, col = _cell(rng.split(":")[0])
        for i, vals in enumerate(values):
            while len(self.state.rows) <= row + i:
                self.state.rows.append([])
            target = self.state.rows[row + i]
            target.extend([""] * (col + len(vals) - len(target)))
            target[col : col + len(vals)] = [str(v) for v in vals]

    do_GET = do_POST = do_PUT = _handle


def start_fake_google() -> FakeGoogle:
    """A fake Google (Sheets API and token endpoint) serving on 127.0.0.1 in a thread."""
    state = FakeGoogle()
    state.server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSheetsHandler)
    state.server.state = state
    state.server.daemon_threads = True
    threading.Thread(target=state.server.serve_forever, daemon=True).start()
    return state
