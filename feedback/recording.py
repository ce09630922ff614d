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


def record_page(reading) -> list[str | None]:
    """Store every glyph of a page answer (one transaction), so each can be corrected later."""
    r = reading.result
    rows = [
        PredictionRow(
            task=r["alphabet"],
            predicted=g["text"],
            confidence=g["confidence"],
            unsure=g["unsure"],
            candidates=g["candidates"],
            model_name=r["model"]["name"],
            model_version=r["model"]["version"],
            preprocessing_version=reading.preprocessing_version,
            input_png=crop,
            model_input_png=seen,
        )
        for g, crop, seen in zip(r["glyphs"], reading.glyph_inputs, reading.glyph_pixels, strict=True)
    ]
    return _store_rows(rows, "page")


def record_lines(reading) -> list[str | None]:
    """Store every line of a line answer (one transaction), so each can be corrected later."""
    r = reading.result
    rows = [
        PredictionRow(
            task="line",
            predicted=line["text"],
            confidence=line["confidence"],
            unsure=False,
            candidates=[],
            model_name=r["model"]["name"],
            model_version=r["model"]["version"],
            preprocessing_version=reading.preprocessing_version,
            input_png=crop,
            model_input_png=strip,
        )
        for line, crop, strip in zip(r["lines"], reading.line_inputs, reading.line_strips, strict=True)
    ]
    return _store_rows(rows, "line")
