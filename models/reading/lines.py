"""Reading handwritten lines and paragraphs with the CRNN: the image is split into text lines
(levelled first, then cut at the gaps of the row profile), each line goes through
``models.preprocessing.line_from_gray`` and one forward pass of its own (so no answer depends on
another image), CTC decoding gives ``raw_text``, and optional spelling correction gives ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.decoding.charlm import LineLM
from models.decoding.ctc import (
    DECODERS,
    confidence,
    decode_columns,
)
from models.decoding.spelling import (
    Speller,
    tidy_text,
)
from models.errors import BadLineRequest, BlankImage, quoted
from models.loading import (
    HandwritingFilter,
    LineRecognizer,
)
from models.preprocessing import (
    LINE_PREPROCESSING_VERSION,
    PAGE_MAX_PIXELS,
    STORE_LINE_HEIGHT,
    gray_png,
    line_from_gray,
    read_gray,
    to_png,
)
from models.reading.results import DroppedLine, LineRead, LinesAnswer, LineText
from models.segmentation.lines import (
    split_lines,
)
from models.segmentation.page import PAGE_SIDE

CUT_OFF_HEIGHT = 0.6  # a line at the image's top or bottom edge this much shorter than the tallest is cut off


def read_lines(
    data: bytes,
    model: LineRecognizer,
    decoder: str = "beam",
    correct: bool = True,
    speller: Speller | None = None,
    max_pixels: int = PAGE_MAX_PIXELS,
    ruled: bool = True,
    handwriting: HandwritingFilter | None = None,
    lm: LineLM | None = None,
) -> LinesReading:
    """Read a handwritten line or paragraph; ``.result`` is the response shape of ``"task": "line"``.
    ``ruled=False`` (a drawing on the page's canvas) skips looking for ruled lines.

    Only the handwriting comes back: a line that the image's top or bottom edge cuts off, or that
    the ``handwriting`` filter does not take for handwriting (printed form labels, dotted rules),
    is listed under ``dropped`` instead of read. When nothing is left, the likeliest line is read
    with a message that it may not be handwriting. The beam search uses the language model ``lm``
    when given."""
    if decoder not in DECODERS:
        raise BadLineRequest(f"Unknown decoder {quoted(decoder)}; choose beam or greedy.")
    gray = read_gray(data, max_pixels, side=PAGE_SIDE)
    found = _found_lines(gray, ruled)
    verdicts, message = _kept_lines(found, gray.shape[0], handwriting)
    speller = (speller or Speller.english()) if correct else None
    lines: list[LineRead] = []
    dropped: list[DroppedLine] = []
    crops, strips = [], []
    for ((x, y, w, h), crop, strip), (reason, p_hand) in zip(found, verdicts, strict=True):
        seen = {"x": x, "y": y, "w": w, "h": h} | ({} if p_hand is None else {"handwriting": round(p_hand, 4)})
        if reason:
            dropped.append(seen | {"reason": reason})
            continue
        crops.append(gray_png(crop, height=STORE_LINE_HEIGHT))
        strips.append(to_png(strip))
        lines.append(_read_line(strip, model, decoder, lm, speller) | seen)
    result: LinesAnswer = {
        "task": "line",
        "text": "\n".join(line["text"] for line in lines),
        "raw_text": "\n".join(line["raw_text"] for line in lines),
        "confidence": round(float(np.mean([line["confidence"] for line in lines])), 4),
        "lines": lines,
        "decoder": decoder,
        "language_model": {"name": "line-lm", "version": lm.version} if lm is not None and decoder == "beam" else None,
        "corrected": bool(correct),
        "image": {"width": gray.shape[1], "height": gray.shape[0]},
        "model": {"name": model.name, "version": model.version},
    }
    if dropped:
        result["dropped"] = dropped
    if message:
        result["message"] = message
    return LinesReading(result, crops, strips)


def _found_lines(gray: np.ndarray, ruled: bool) -> list[tuple]:
    """(box, crop, strip) of every text line with ink, top to bottom; ``BlankImage`` when none."""
    found = []
    for box, crop in split_lines(gray, ruled):
        try:
            found.append((box, crop, line_from_gray(crop)))
        except BlankImage:
            continue
    if not found:
        raise BlankImage("Nothing to read: the image has no writing.")
    return found


def _kept_lines(found: list, height: int, handwriting: HandwritingFilter | None) -> tuple[list[tuple], str | None]:
    """``_handwriting_verdicts`` of the lines, and a message when none was handwriting: then the
    likeliest one is read rather than nothing."""
    verdicts = _handwriting_verdicts(found, height, handwriting)
    if not all(reason for reason, _ in verdicts):
        return verdicts, None
    best = max(range(len(found)), key=lambda k: verdicts[k][1] if verdicts[k][1] is not None else -1)
    verdicts[best] = (None, verdicts[best][1])
    return verdicts, "Not sure this is handwriting: it looks printed, ruled or cut off at the edge."


def _read_line(
    strip: np.ndarray, model: LineRecognizer, decoder: str, lm: LineLM | None, speller: Speller | None
) -> LineText:
    """One strip's reading: the decoded text, corrected by ``speller`` when given, as written."""
    probs = model.probabilities(strip)
    raw = decode_columns(probs, model.charset, decoder, lm)
    text, changes = speller.answer(raw, probs, model.charset) if speller else (tidy_text(raw), [])
    return {
        "text": text,
        "raw_text": tidy_text(raw),
        "corrections": changes,
        "confidence": round(confidence(probs), 4),
    }


def _handwriting_verdicts(found: list, height: int, handwriting: HandwritingFilter | None) -> list[tuple]:
    """Per line found, (why it is not read or None, p(handwriting) or None without a filter)."""
    tallest = max(box[3] for box, _, _ in found)
    out = []
    for (_, y, _, h), _, strip in found:
        p_hand = handwriting.probability(strip) if handwriting is not None else None
        at_edge = y <= 1 or y + h >= height - 1
        if len(found) > 1 and at_edge and h < CUT_OFF_HEIGHT * tallest:
            out.append(("cut_off", p_hand))
        elif p_hand is not None and p_hand < handwriting.threshold:
            out.append(("not_handwriting", p_hand))
        else:
            out.append((None, p_hand))
    return out


@dataclass(frozen=True)
class LinesReading:
    """A line answer with, per line, what the feedback store keeps: its crop and the strip read."""

    result: LinesAnswer
    line_inputs: list[bytes]
    line_strips: list[bytes]
    preprocessing_version: str = LINE_PREPROCESSING_VERSION
