"""Errors about a request's input, each with the stable ``code`` the API and CLI report."""

from __future__ import annotations


class InputError(ValueError):
    """Input we cannot answer: ``code`` is stable for clients, ``message`` is for people."""

    code = "bad_input"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


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
