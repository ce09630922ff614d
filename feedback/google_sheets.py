"""Google Sheets copy of the feedback store, with gspread + google-auth.

The store is the source of truth; the sheet is a copy that may lag. ``SheetSync.sync_once`` sends
every pending row (oldest first) and marks it sent only after Google confirmed. It never sends a
row twice: before appending it reads the sheet's row-id column, so a row whose append succeeded but
whose answer was lost (a timeout, a dropped connection) is recognised and not appended again, and
a row whose feedback changed later is rewritten in place. Should an abandoned append still land
after that read, the next pass finds the row id twice and deletes the later copy. ``SheetSync.start`` runs it in a
background thread with exponential backoff while Google is down or rate-limiting; requests never
wait on it. Only one process syncs at a time (a lease in the store).

Credentials are read from the service-account file named in the configuration and are never
logged or returned; errors are reported by type and HTTP status only.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from feedback.store import FeedbackRow, FeedbackStore

log = logging.getLogger(__name__)

SHEETS_HOST = "https://sheets.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/spreadsheets"]
HEADER = [
    "timestamp",
    "task",
    "predicted",
    "confidence",
    "correct_label",
    "right_or_wrong",
    "model_version",
    "image_28x28_png_base64",
    "row_id",
]
ID_COLUMN = HEADER.index("row_id") + 1  # one-based, as the Sheets API counts
LEASE = "sheets-sync"
LEASE_SECONDS = 300  # a crashed syncer's lease runs out after this
BATCH = 500  # rows per append: well under the API's request size limit


@dataclass(frozen=True)
class SheetsConfig:
    """Where the copy goes. ``api_url`` replaces https://sheets.googleapis.com (a proxy or a local
    stand-in); the token endpoint comes from the service-account file itself."""

    service_account_file: str
    spreadsheet_id: str
    worksheet: str | None = None  # None: the first worksheet
    api_url: str | None = None
    timeout: float = 20.0  # seconds per HTTP request

    @classmethod
    def from_app_config(cls, config: dict) -> SheetsConfig | None:
        """The configured sink, or None when the service-account file or spreadsheet id is missing."""
        path, sheet = config.get("GOOGLE_SERVICE_ACCOUNT_FILE"), config.get("GOOGLE_SHEET_ID")
        if not path or not sheet:
            return None
        return cls(
            service_account_file=str(path),
            spreadsheet_id=str(sheet),
            worksheet=config.get("GOOGLE_WORKSHEET") or None,
            api_url=config.get("GOOGLE_SHEETS_API_URL") or None,
            timeout=float(config.get("GOOGLE_SHEETS_TIMEOUT", 20.0)),
        )


class SyncError(RuntimeError):
    """A sync attempt failed; the message is safe to log (no credentials, no row data)."""


def sheet_row(row: FeedbackRow) -> list:
    """The columns one feedback row gets in the sheet."""
    return [
        row.updated_at,
        row.task,
        row.predicted,
        round(row.confidence, 6),
        row.label if row.label is not None else "",
        "right" if row.correct else "wrong",
        f"{row.model_name}/{row.model_version}",
        base64.b64encode(row.model_input_png).decode("ascii"),
        str(row.id),
    ]


def _redirecting_adapter(api_url: str):
    """A requests adapter that sends Sheets API calls to ``api_url`` instead of Google's host."""
    from requests.adapters import HTTPAdapter

    class Redirect(HTTPAdapter):
        def send(self, request, *args, **kwargs):
            request.url = api_url.rstrip("/") + request.url[len(SHEETS_HOST) :]
            return super().send(request, *args, **kwargs)

    return Redirect()


def open_worksheet(cfg: SheetsConfig):
    """Authorise with the service account and open the configured worksheet (gspread objects)."""
    import gspread
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2.service_account import Credentials

    if not os.path.isfile(cfg.service_account_file):
        raise SyncError("The Google service-account file does not exist (GOOGLE_SERVICE_ACCOUNT_FILE).")
    try:
        creds = Credentials.from_service_account_file(cfg.service_account_file, scopes=SCOPES)
    except (ValueError, KeyError) as exc:
        raise SyncError("The Google service-account file is not a valid service-account key.") from exc
    session = AuthorizedSession(creds)
    if cfg.api_url:
        session.mount(SHEETS_HOST + "/", _redirecting_adapter(cfg.api_url))
    client = gspread.Client(auth=None, session=session)
    client.set_timeout(cfg.timeout)
    spreadsheet = client.open_by_key(cfg.spreadsheet_id)
    return spreadsheet.worksheet(cfg.worksheet) if cfg.worksheet else spreadsheet.sheet1


def describe(exc: BaseException) -> str:
    """A log-safe description of a failed call: the error type and HTTP status, nothing else."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")


def describe_sync(exc: BaseException) -> str:
    """A log line for a failed pass: a ``SyncError``'s own message, else the error type only."""
    return str(exc) if isinstance(exc, SyncError) else f"Google Sheets sync failed: {describe(exc)}."


class SheetSync:
    """Copies pending feedback rows from the store to the sheet; see the module docstring."""

    def __init__(
        self,
        store: FeedbackStore,
        config: SheetsConfig,
        opener: Callable[[SheetsConfig], object] = open_worksheet,
        base_delay: float = 2.0,
        max_delay: float = 300.0,
        interval: float = 60.0,
    ):
        self.store = store
        self.config = config
        self._open = opener
        self._worksheet = None
        self.base_delay, self.max_delay, self.interval = base_delay, max_delay, interval
        self.owner = uuid.uuid4().hex
        self.last_error: str | None = None
        self.last_success: float | None = None
        self.timed_out = False  # the last failure may have been applied by Google without an answer
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one sync at a time within this process

    # -------------------------------------------------------------- one pass
    def sync_once(self) -> int:
        """Send every pending row; returns how many rows were written. Raises ``SyncError``."""
        with self._lock:
            try:
                if not self.store.acquire_lease(LEASE, self.owner, LEASE_SECONDS):
                    return 0  # another process is syncing; its rows are ours too
                try:
                    sent = 0
                    while True:
                        rows = self.store.pending_sync(BATCH)
                        if not rows:
                            break
                        sent += self._send(rows)
                        if not self.store.acquire_lease(LEASE, self.owner, LEASE_SECONDS):  # renew between batches
                            raise SyncError("Another process took over the Google Sheets sync.")
                    self.last_error, self.last_success = None, time.time()
                    self.timed_out = False
                    return sent
                finally:
                    self.store.release_lease(LEASE, self.owner)
            except SyncError as exc:
                self.last_error = str(exc)
                raise
            except Exception as exc:  # gspread / requests / google-auth / SQLite errors of every kind
                self._worksheet = None  # reopen next time: the token or the sheet may have changed
                self.last_error = describe(exc)
                self.timed_out = "Timeout" in type(exc).__name__ or "Connection" in type(exc).__name__
                raise SyncError(f"Google Sheets sync failed: {self.last_error}.") from exc

    def _send(self, rows: list[FeedbackRow]) -> int:
        ws = self._worksheet or self._open(self.config)
        self._worksheet = ws
        ids = ws.col_values(ID_COLUMN)
        if not ids:  # a new sheet: write the header first
            ws.update([HEADER], "A1", value_input_option="RAW")
            ids = [HEADER[ID_COLUMN - 1]]
        ids = self._drop_duplicates(ws, ids)
        where = {str(v): i + 1 for i, v in enumerate(ids) if v}  # row id -> sheet row number
        new = [r for r in rows if str(r.id) not in where]
        known = [r for r in rows if str(r.id) in where]
        if new:
            ws.append_rows(
                [sheet_row(r) for r in new],
                value_input_option="RAW",
                insert_data_option="INSERT_ROWS",
                table_range="A1",
            )
            self.store.mark_synced([(r.id, r.revision) for r in new])
        if known:  # already there: a lost acknowledgement, or feedback changed since it was sent
            last = chr(ord("A") + len(HEADER) - 1)
            ws.batch_update(
                [{"range": f"A{where[str(r.id)]}:{last}{where[str(r.id)]}", "values": [sheet_row(r)]} for r in known],
                value_input_option="RAW",
            )
            self.store.mark_synced([(r.id, r.revision) for r in known])
        return len(rows)

    def _drop_duplicates(self, ws, ids: list) -> list:
        """Delete later copies of a row id (an append that Google applied after we had given up on
        it and sent the row again); returns the id column as it is afterwards."""
        seen, extra = set(), []
        for i, v in enumerate(ids):
            if v and v != HEADER[ID_COLUMN - 1]:
                if v in seen:
                    extra.append(i + 1)
                seen.add(v)
        for row in reversed(extra):  # bottom first, so the row numbers above stay valid
            ws.delete_rows(row)
            del ids[row - 1]
        if extra:
            log.warning("removed %d duplicated rows from the Google Sheet", len(extra))
        return ids

    # -------------------------------------------------------------- background
    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def notify(self) -> None:
        """New feedback is in the store: sync soon."""
        self._wake.set()

    def start(self) -> None:
        """Run in a daemon thread until ``stop``."""
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sheets-sync", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        delay = 0.0  # first pass right away: rows may be waiting from before a restart
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                sent = self.sync_once()
                if sent:
                    log.info("copied %d feedback rows to Google Sheets", sent)
                failures, delay = 0, self.interval
            except Exception as exc:  # SyncError, or anything unexpected: the thread must live on
                failures += 1
                delay = min(self.max_delay, self.base_delay * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
                if self.timed_out:  # give a request that may still be applied time to land before re-reading
                    delay = max(delay, 2 * self.config.timeout)
                log.warning("%s Retrying in %.0f s; the rows wait in the local store.", describe_sync(exc), delay)
                self._sleep_through_wakes(delay)
                delay = 0.0

    def _sleep_through_wakes(self, seconds: float) -> None:
        """Back off for ``seconds`` even if new feedback arrives meanwhile (it will go in the next pass)."""
        self._stop.wait(seconds)
