"""Answers kept for feedback: a glyph, page or line reading becomes prediction rows
(``feedback.store.PredictionRow``), stored in one transaction per answer."""

from __future__ import annotations

import logging

from feedback.store import PredictionRow
from feedback.wiring import store

log = logging.getLogger(__name__)


def _store_rows(rows: list[PredictionRow], source: str) -> list[str | None]:
    """Store answers (``FeedbackStore.add_predictions`` rows) in one transaction; their ids, or
    None each (and a log line) if the store cannot be written, so a full disk costs the feedback
    buttons, not the answer."""
    try:
        return store().add_predictions(rows, source=source) if rows else []
    except store().errors:
        log.exception("could not record %d %s answers in the feedback store", len(rows), source)
        return [None] * len(rows)


def record_prediction(reading, task: str) -> str | None:
    """Store one answer for later feedback; its prediction id (None if the store failed)."""
    r = reading.result
    row = PredictionRow(
        task=task,
        predicted=reading.predicted,
        confidence=r["confidence"],
        unsure=r["unsure"],
        candidates=r["candidates"],
        model_name=r["model"]["name"],
        model_version=r["model"]["version"],
        preprocessing_version=reading.preprocessing_version,
        input_png=reading.input_png,
        model_input_png=reading.model_input_png,
    )
    return _store_rows([row], "glyph")[0]


def _part_row(reading, task: str, part: dict, input_png: bytes, model_input_png: bytes) -> PredictionRow:
    """The row of one part of an answer (a page's glyph, one line), by the answer's model."""
    model = reading.result["model"]
    return PredictionRow(
        task=task,
        predicted=part["text"],
        confidence=part["confidence"],
        unsure=part.get("unsure", False),
        candidates=part.get("candidates", []),
        model_name=model["name"],
        model_version=model["version"],
        preprocessing_version=reading.preprocessing_version,
        input_png=input_png,
        model_input_png=model_input_png,
    )


def record_page(reading) -> list[str | None]:
    """Store every glyph of a page answer (one transaction), so each can be corrected later."""
    r = reading.result
    parts = zip(r["glyphs"], reading.glyph_inputs, reading.glyph_pixels, strict=True)
    return _store_rows([_part_row(reading, r["alphabet"], g, crop, seen) for g, crop, seen in parts], "page")


def record_lines(reading) -> list[str | None]:
    """Store every line of a line answer (one transaction), so each can be corrected later; a line
    is never "not sure" and has no candidates."""
    parts = zip(reading.result["lines"], reading.line_inputs, reading.line_strips, strict=True)
    return _store_rows([_part_row(reading, "line", line, crop, strip) for line, crop, strip in parts], "line")
