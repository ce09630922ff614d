"""Feedback out of the store: CSV (one row per feedback) and a zip the training commands read.

Zip layout (read back by ``read_zip`` and ``python -m training.retrain --feedback FILE.zip``)::

    labels.csv          the CSV below, plus the two image paths of each row
    inputs/<id>.png     the input as the preprocessing received it
    seen/<id>.png       the 28x28 the model saw
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from typing import IO

from feedback.store import FeedbackRow

COLUMNS = [
    "feedback_id",
    "prediction_id",
    "created_at",
    "updated_at",
    "task",
    "predicted",
    "confidence",
    "correct",
    "correct_label",
    "model_name",
    "model_version",
    "preprocessing_version",
    "source",
]


def csv_record(row: FeedbackRow) -> dict:
    """The CSV columns of one feedback row."""
    return {
        "feedback_id": row.id,
        "prediction_id": row.prediction_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "task": row.task,
        "predicted": row.predicted,
        "confidence": f"{row.confidence:.6f}",
        "correct": "yes" if row.correct else "no",
        "correct_label": row.label or "",
        "model_name": row.model_name,
        "model_version": row.model_version,
        "preprocessing_version": row.preprocessing_version,
        "source": row.source,
    }


def write_csv(rows: Iterable[FeedbackRow], out: IO[str], extra: dict[int, dict] | None = None) -> int:
    """Write the rows as CSV with a header; returns how many were written."""
    extra = extra or {}
    fields = COLUMNS + (list(next(iter(extra.values())).keys()) if extra else [])
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow(csv_record(row) | extra.get(row.id, {}))
        n += 1
    return n


def write_zip(rows: list[FeedbackRow], out: IO[bytes]) -> int:
    """Write the images and ``labels.csv`` into a zip; returns how many rows."""
    paths = {r.id: {"input_file": f"inputs/{r.id}.png", "seen_file": f"seen/{r.id}.png"} for r in rows}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in rows:
            zf.writestr(paths[r.id]["input_file"], r.input_png)
            zf.writestr(paths[r.id]["seen_file"], r.model_input_png)
        text = io.StringIO()
        write_csv(rows, text, paths)
        zf.writestr("labels.csv", text.getvalue())
    return len(rows)


def read_zip(source: str | IO[bytes]) -> list[FeedbackRow]:
    """The rows of an exported zip, images included, as the store would return them."""
    with zipfile.ZipFile(source) as zf:
        records = list(csv.DictReader(io.StringIO(zf.read("labels.csv").decode("utf-8"))))
        return [
            FeedbackRow(
                id=int(r["feedback_id"]),
                prediction_id=r["prediction_id"],
                task=r["task"],
                predicted=r["predicted"],
                confidence=float(r["confidence"]),
                correct=r["correct"] == "yes",
                label=r["correct_label"] or None,
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                revision=0,
                model_name=r["model_name"],
                model_version=r["model_version"],
                preprocessing_version=r["preprocessing_version"],
                input_png=zf.read(r["input_file"]),
                model_input_png=zf.read(r["seen_file"]),
                source=r.get("source") or "glyph",
            )
            for r in records
        ]
