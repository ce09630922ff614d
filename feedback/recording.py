"""What the store records: answers kept for feedback (a glyph, page or line reading becomes
prediction rows, ``feedback.store.PredictionRow``, stored in one transaction per answer), and the
feedback given on them (``record_feedback``: checked by ``feedback.validation``, then committed
before it is acknowledged)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from feedback.store import PredictionRow
from feedback.validation import check_feedback
from feedback.wiring import store, syncer
from models.reading.results import LineRead, PageGlyph

if TYPE_CHECKING:  # the readings' modules load the image libraries; the records only name them
    from models.reading.glyph import Reading
    from models.reading.lines import LinesReading
    from models.reading.page import PageReading

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


def record_prediction(reading: Reading, task: str) -> str | None:
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


def _part_row(
    reading: PageReading | LinesReading,
    task: str,
    part: PageGlyph | LineRead,
    input_png: bytes,
    model_input_png: bytes,
) -> PredictionRow:
    """The row of one part of an answer (a page's glyph, one line), by the answer's model; a line
    is never "not sure" and has no candidates."""
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


def record_page(reading: PageReading) -> list[str | None]:
    """Store every glyph of a page answer (one transaction), so each can be corrected later."""
    r = reading.result
    parts = zip(r["glyphs"], reading.glyph_inputs, reading.glyph_pixels, strict=True)
    return _store_rows([_part_row(reading, r["alphabet"], g, crop, seen) for g, crop, seen in parts], "page")


def record_lines(reading: LinesReading) -> list[str | None]:
    """Store every line of a line answer (one transaction), so each can be corrected later."""
    parts = zip(reading.result["lines"], reading.line_inputs, reading.line_strips, strict=True)
    return _store_rows([_part_row(reading, "line", line, crop, strip) for line, crop, strip in parts], "line")


class FeedbackSaved(TypedDict):
    """The answer to a ``POST /feedback`` that was committed."""

    status: str  # "saved"
    feedback_id: int
    prediction_id: str
    revision: int  # 1, then one more per change of mind
    correct: bool
    label: str | None


def record_feedback(body: object, labels_of: Callable[[str], list[str]]) -> FeedbackSaved:
    """Check one ``POST /feedback`` body (``feedback.validation.check_feedback``), commit it, wake
    the Sheets sync, and return the acknowledgement."""
    given = check_feedback(body, store().prediction, labels_of)
    feedback_id, revision = store().record_feedback(given.prediction_id, given.correct, given.label)
    if syncer():
        syncer().notify()
    return {
        "status": "saved",
        "feedback_id": feedback_id,
        "prediction_id": given.prediction_id,
        "revision": revision,
        "correct": given.correct,
        "label": given.label,
    }
