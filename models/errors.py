"""Every error a request can get, each class carrying its stable ``code`` and its HTTP ``status``.

They all derive from ``ServiceError``: the web layer has one handler for them all
(``web/errors.py``) and the CLI prints the same codes, so a new error is one class here. A module
raises these by name (``from models.errors import ...``): this module is the only place they are
defined or offered.
"""

from __future__ import annotations


class ServiceError(Exception):
    """An error a client is answered: ``code`` is stable for clients, ``message`` is for people,
    ``status`` is the HTTP status; ``headers`` and ``fields`` add to the answer."""

    code = "internal_error"
    status = 500
    logged_as: str | None = None  # the server's faults are logged as "<logged_as>: <message>"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides the JSON body (``Retry-After``...)."""
        return {}

    def fields(self) -> dict[str, object]:
        """Fields the JSON error body carries besides ``code``, ``message`` and ``request_id``."""
        return {}


class InternalError(ServiceError):
    """A failure nobody foresaw: the answer says only that (the traceback goes to the log)."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str = "Something went wrong on our side; please try again."):
        super().__init__(message)


class InputError(ServiceError, ValueError):
    """Input we cannot answer: the request's fault, not the server's."""

    code = "bad_input"
    status = 400


class WeightsError(ServiceError, RuntimeError):
    """Shipped weights are missing or do not match this code: the server's fault, not the request's
    (answered 503 ``model_unavailable``, with the command that makes them)."""

    code = "model_unavailable"
    status = 503
    logged_as = "model unavailable"


class SyncFailed(ServiceError):
    """Google Sheets refused or could not be reached during a sync the admin asked for."""

    code = "sync_failed"
    status = 502


# ---------------------------------------------------------------- the request itself
class BadRequest(InputError):
    code = "bad_request"


class BadJson(InputError):
    """JSON nested too deeply to parse (Python's parser recurses: 100,000 brackets raised RecursionError)."""

    code = "bad_json"


class NoImage(InputError):
    code = "no_image"


class NoFile(InputError):
    code = "no_file"


class TooLarge(InputError):
    code = "too_large"
    status = 413


class UnsupportedMediaType(InputError):
    code = "unsupported_media_type"
    status = 415


class Forbidden(InputError):
    """Needs the admin token (or, for a profile, its own)."""

    code = "forbidden"
    status = 403


class CrossOrigin(InputError):
    """A state change sent from another site's page (``web/security.py``)."""

    code = "cross_origin"
    status = 403


class RateLimited(ServiceError):
    """This client sent more than its limit (``limit``: Flask-Limiter's words for it, "2 per 1
    minute"); Flask-Limiter adds ``Retry-After`` and ``X-RateLimit-*`` to the answer itself."""

    code = "rate_limited"
    status = 429

    def __init__(self, limit: str):
        super().__init__(f"Too many requests from your address (the limit is {limit}); try again shortly.")


class CannotRollBack(InputError):
    code = "cannot_roll_back"
    status = 409


class SheetsNotConfigured(InputError):
    code = "sheets_not_configured"
    status = 409


class RetryLater(InputError):
    """A refusal for now: ``retry_after`` (seconds) goes into the ``Retry-After`` header."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ServerBusy(RetryLater):
    """Every heavy slot is taken."""

    code = "server_busy"
    status = 503


# ---------------------------------------------------------------- what to read, and how
class UnknownTask(InputError):
    """A task name the service does not offer."""

    code = "unknown_task"

    def __init__(self, task: str, known: list[str]):
        super().__init__(f"Unknown task {quoted(task)}; choose one of: {', '.join(known)}.")


class NoLineModel(InputError):
    code = "unknown_task"


class BadAlphabet(InputError):
    """An alphabet hint the service does not offer, or one the task's model cannot honour."""

    code = "bad_alphabet"


class BadPageRequest(InputError):
    """An alphabet or engine the service does not offer."""

    code = "bad_page_request"


class BadLineRequest(InputError):
    """A decoder or option the service does not offer."""

    code = "bad_line_request"


# ---------------------------------------------------------------- the image
class PreprocessError(InputError):
    """An input we cannot read a glyph from."""

    code = "bad_image"


class NotAnImage(PreprocessError):
    code = "not_an_image"


class TruncatedImage(PreprocessError):
    code = "truncated_image"


class TooManyPixels(PreprocessError):
    code = "too_many_pixels"
    status = 413


class BlankImage(PreprocessError):
    code = "blank_image"
    status = 422


class TooNoisy(BlankImage):
    """The picture is noise (static, speckle) all over, not writing on paper."""

    code = "too_noisy"


class TooManyPieces(TooNoisy):
    """The page is mostly noise (thousands of specks), not writing."""


class SheetError(InputError):
    """A handwriting sheet that cannot be labelled safely; the message says what to fix."""

    code = "bad_sheet"
    status = 422


# ---------------------------------------------------------------- feedback
class BadFeedback(InputError):
    code = "bad_feedback"


class InvalidLabel(InputError):
    code = "invalid_label"


class UnknownPredictionId(InputError):
    code = "unknown_prediction"
    status = 404


# ---------------------------------------------------------------- profiles
class ProfileError(InputError):
    """A profile request that cannot be served: the message says why."""

    code = "bad_profile"


class UnknownProfile(ProfileError):
    code = "unknown_profile"
    status = 404


class ProfileForbidden(ProfileError):
    code = "forbidden"
    status = 403


class TooManyProfiles(InputError):
    code = "too_many_profiles"
    status = 409


class UnknownJob(InputError):
    """A teach job id the queue does not know."""

    code = "unknown_job"
    status = 404


class TeachQueueFull(RetryLater):
    """Too many teaches wait already."""

    code = "busy"
    status = 429

    def fields(self) -> dict[str, object]:
        return {"retry_after_s": self.retry_after}


ECHO_LIMIT = 40  # characters of a client's value an error message repeats


def clipped(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis: what an error message repeats of it."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


def quoted(value: object, limit: int = ECHO_LIMIT) -> str:
    """A client's value as an error message repeats it: its ``repr``, cut to ``limit`` characters
    with an ellipsis, so a 100,000-character task name does not come back as a 100 KB error."""
    text = value if isinstance(value, str) else repr(value)
    shown = repr(text[:limit]) if isinstance(value, str) else text[:limit]
    return shown if len(text) <= limit else shown + f"… ({len(text):,} characters)"
