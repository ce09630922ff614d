"""Which model reads a request, with the app's settings (pixel budgets, "not sure" thresholds,
profiles, word list), and the reading: what the API routes and the ``flask recognize`` command share.
The recognition itself is ``models/reading/``; this module only chooses and configures it.

Every function needs an app context (a request, or the CLI's ``with_appcontext``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from flask import current_app

from models.decoding.spelling import Speller
from models.errors import NoLineModel, TooLarge, UnknownTask
from models.preprocessing import image_size
from models.profiles import existing_profile
from models.reading.glyph import Reading, available_tasks, offered_tasks, recognize
from models.reading.lines import LinesReading, read_lines
from models.reading.page import (
    PAGE_ALPHABETS,
    PageReading,
    in_upload_pixels,
    page_alphabet,
    read_canvas,
    read_page,
)
from models.registry import Registry

AnyReading = Reading | PageReading | LinesReading  # a glyph's, a page's or a drawing's, a line's
Options = Mapping[str, object]  # a form, a JSON body or the CLI's flags: alphabet, engine, profile, decoder...


def registry() -> Registry:
    """The running app's model registry."""
    return current_app.extensions["registry"]


def check_size(data: bytes) -> bytes:
    """Refuse an image file over the configured size."""
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    if len(data) > limit:
        raise TooLarge(f"The image is {len(data):,} bytes; the limit is {limit:,}.")
    return data


def read(data: bytes, task: str, options: Options, canvas: bool = False) -> AnyReading:
    """Recognise ``data`` as ``task``: a ``Reading``, for ``"page"`` a ``PageReading``, for
    ``"line"`` a ``LinesReading``; a line answer's and a page's boxes are in the pixels of ``data``
    (``in_upload_pixels``). ``options`` (form, JSON body or CLI flags) carries the ``alphabet`` hint
    (for a page: what it holds, which also picks the model), a page's ``engine``, the ``profile``
    and a line's ``decoder`` and ``correct``;
    ``canvas`` says the image was drawn on the page (no ruled paper to look for; several characters
    side by side are read as a short sequence, a ``PageReading`` too)."""
    reading = _read_as_read(data, task, options, canvas)
    if task in ("line", "page"):
        return dataclasses.replace(reading, result=in_upload_pixels(reading.result, image_size(data)))
    return reading


def _read_as_read(data: bytes, task: str, options: Options, canvas: bool) -> AnyReading:
    """``read`` with boxes in the pixels of the page as read."""
    pixels = current_app.config["MAX_PAGE_PIXELS" if task in ("line", "page") else "MAX_IMAGE_PIXELS"]
    reg = registry()
    if task == "line" and not reg.has_line():
        raise NoLineModel("No handwritten-line model is installed on this server.")
    if task not in offered_tasks(reg):
        raise UnknownTask(task, offered_tasks(reg))
    if task == "line":
        decoder = str(options.get("decoder") or "beam")
        correct = str(options.get("correct", "true")).lower() not in ("false", "0", "no", "off")
        return read_lines(
            data, reg.line(), decoder, correct, speller(), pixels, not canvas, reg.line_filter(), reg.line_lm()
        )
    name = options.get("profile") or options.get("personal")  # personal= is the older name
    profile = existing_profile(Path(current_app.config["PERSONAL_DIR"]), str(name)) if name else None
    if task == "page":
        alphabet, engine = str(options.get("alphabet") or "digit"), str(options.get("engine") or "cnn")
        return read_page(data, reg, alphabet, engine, pixels, threshold(page_alphabet(alphabet)[0]), profile)
    alphabet = options.get("alphabet")
    hint = None if not alphabet or alphabet == task else str(alphabet)  # "character" for characters: any
    if canvas and task in available_tasks(reg):
        what = task if hint in (None, "any") or task == "digit" else hint  # what the page path calls it
        return read_canvas(data, task, reg, what, hint, pixels, threshold(task), profile)
    return recognize(data, task, reg, pixels, threshold(task), profile, hint)


def threshold(task: str) -> float | None:
    """The configured "not sure" threshold for ``task``, if any."""
    value = current_app.config["UNSURE_THRESHOLDS"].get(task)
    return None if value is None else float(value)


def speller() -> Speller | None:
    """The word-list speller configured by ``LINE_WORDS`` (loaded once per app), or None for English."""
    path = current_app.config.get("LINE_WORDS")
    if not path:
        return None
    cached = current_app.extensions.get("line_speller")
    if cached is None or cached[0] != path:
        words = [w.strip() for w in Path(path).read_text(encoding="utf-8").splitlines() if w.strip()]
        cached = current_app.extensions["line_speller"] = (path, Speller(words))
    return cached[1]


def labels_of(task: str) -> list[str]:
    """The labels a correction of ``task`` is checked against (a line: its model's characters; a
    page's glyph: the labels of the model its alphabet names)."""
    if task == "line":
        return registry().line().labels
    return registry().get(page_alphabet(task)[0] if task in PAGE_ALPHABETS else task).labels
