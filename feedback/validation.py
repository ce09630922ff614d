"""One ``POST /feedback`` body checked: its fields, the answer it rates, and the label against the
model's labels. Nothing here writes: ``feedback.recording.record_feedback`` commits what passes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from feedback.store import UnknownPrediction
from models.errors import BadFeedback, InvalidLabel, UnknownPredictionId, clipped


@dataclass(frozen=True)
class CheckedFeedback:
    """A feedback body that passed every check: what the store records."""

    prediction_id: str
    correct: bool  # whether the answer was right
    label: str | None  # the right label: the answer itself when it was right; None when not said


def describe_labels(labels: list[str]) -> str:
    """'0-9, A-Z or a-z' for a label list made of runs of consecutive characters."""
    runs: list[str] = []
    start = prev = None
    for ch in labels + [None]:
        if prev is not None and ch is not None and len(ch) == 1 and ord(ch) == ord(prev) + 1:
            prev = ch
            continue
        if start is not None:
            runs.append(start if start == prev else f"{start}-{prev}")
        start = prev = ch
    return runs[0] if len(runs) == 1 else ", ".join(runs[:-1]) + " or " + runs[-1]


def _is_text(value: str) -> bool:
    """Whether ``value`` can be stored as text (JSON allows lone surrogates such as "\\ud800",
    which no database encoding takes)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_feedback(
    body: object, prediction_of: Callable[[str], Mapping[str, Any]], labels_of: Callable[[str], list[str]]
) -> CheckedFeedback:
    """Check one ``POST /feedback`` body against the answer it rates: ``prediction_of(id)`` gives
    the stored answer (raising ``UnknownPrediction``), ``labels_of(task)`` the label set a
    correction is checked against."""
    pid, correct, label = read_body(body)
    try:
        prediction = prediction_of(pid)
    except UnknownPrediction:
        raise UnknownPredictionId(
            "That answer is not known here (it may have expired); read the image again."
        ) from None
    return CheckedFeedback(pid, correct, checked_label(prediction, correct, label, labels_of))


def read_body(body: object) -> tuple[str, bool, str | None]:
    """(prediction id, whether the answer was right, the label typed or None) from the JSON body."""
    if not isinstance(body, dict):
        raise BadFeedback("The request body is not a JSON object.")
    pid, correct, label = body.get("prediction_id"), body.get("correct"), body.get("label")
    if not isinstance(pid, str) or not pid or not _is_text(pid):
        raise BadFeedback('Send "prediction_id" from the answer you are rating.')
    if not isinstance(correct, bool):
        raise BadFeedback('Send "correct": true (the answer was right) or false.')
    if label is not None and not isinstance(label, str):
        raise InvalidLabel('The "label" must be text.')
    return pid, correct, (label or "").strip() or None  # a line's inner spaces stay


def checked_label(
    prediction: Mapping[str, Any], correct: bool, label: str | None, labels_of: Callable[[str], list[str]]
) -> str | None:
    """The label to store: the answer itself when it was right, else the correction (or None),
    refused when the model could not have written it or it repeats the answer."""
    predicted, task = prediction["predicted"], prediction["task"]
    if correct:
        if label is not None and label != predicted:
            raise InvalidLabel(f"You said the answer “{predicted}” is right but gave “{clipped(label)}”.")
        return predicted
    if label is None:
        return None
    if task == "line":
        unknown = sorted({ch for ch in label if ch not in labels_of("line")})
        if unknown or len(label) > 300:
            cannot = clipped("".join(unknown)) if unknown else "more than 300 characters"
            raise InvalidLabel(f"The line model cannot write {cannot}.")
        if label == predicted:
            raise InvalidLabel("That is what we read: press Yes if it is right.")
        return label
    labels = labels_of(task)
    if label not in labels:
        raise InvalidLabel(f"“{clipped(label)}” is not a {task}: type one of {describe_labels(labels)}.")
    if label == predicted:
        raise InvalidLabel(f"“{clipped(label)}” is what we read: press Yes if it is right.")
    return label
