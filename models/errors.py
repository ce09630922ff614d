"""Errors about a request's input, each with the stable ``code`` the API and CLI report."""

from __future__ import annotations


class InputError(ValueError):
    """Input we cannot answer: ``code`` is stable for clients, ``message`` is for people."""

    code = "bad_input"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
