"""Your own handwriting sheet: a page with ten rows, row 1 all 0s, row 2 all 1s, ... row 10 all 9s
(at least ``MIN_PER_ROW`` each, nothing else on the sheet). It is segmented like any page, each
glyph is labelled by its row, and the sheet is checked before anything is trained on it: a wrong
number of rows, a row with too few glyphs, or a row that reads as another digit (rows out of order,
one left out) is refused with a message that says which row, never silently mislabelled.

Personal models live in ``<instance>/personal/<name>/{hog,cnn}/`` and can be chosen for pages.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

import numpy as np

from models.errors import ProfileError, SheetError
from models.preprocessing import PAGE_MAX_PIXELS, read_gray
from models.profiles import SheetModels, profile_dir, sheet_models
from models.reading.results import Box
from models.segmentation.page import PAGE_SIDE, segment

DIGITS = "0123456789"
MIN_PER_ROW = 5  # fewer samples of a digit than this teach a model nothing reliable
SHEET_TTL_SECONDS = 24 * 3600  # a checked sheet waits this long to be trained on


class SheetRow(TypedDict):
    """What one row of a checked sheet holds (``POST /sheet/check`` answers them)."""

    label: str  # the digit the row should hold
    count: int  # glyphs found in it
    read_as: NotRequired[str]  # the current model's majority answer, when a model checked the sheet


class SheetBox(Box):
    """One glyph of a sheet, in the working image's pixels, labelled by its row."""

    label: str


@dataclass
class Sheet:
    """A checked sheet: glyphs (N, 28, 28), their labels, and per row what was found."""

    glyphs: np.ndarray
    labels: list[str]
    rows: list[SheetRow]
    boxes: list[SheetBox]  # empty (and ``gray`` blank) for a sheet read back by ``load_sheet``
    gray: np.ndarray


def read_sheet(data: bytes, model=None, max_pixels: int = PAGE_MAX_PIXELS, min_per_row: int = MIN_PER_ROW) -> Sheet:
    """Segment and check a filled-in sheet; raises ``SheetError`` naming the row to fix.

    ``model`` (the digit recognizer) is used to catch rows that read as another digit.
    """
    gray = read_gray(data, max_pixels, side=PAGE_SIDE)
    page = segment(gray)
    rows = page.rows
    if len(rows) != len(DIGITS):
        raise SheetError(
            f"Found {len(rows)} rows of writing; the sheet needs exactly {len(DIGITS)}: row 1 all 0s, row 2 all 1s, "
            "... row 10 all 9s, with nothing else on the page."
        )
    short = [
        f"row {i + 1} (the {d}s) has {len(r)}"
        for i, (d, r) in enumerate(zip(DIGITS, rows, strict=True))
        if len(r) < min_per_row
    ]
    if short:
        raise SheetError(f"Too few samples: {'; '.join(short)}. Write at least {min_per_row} of each digit.")
    glyphs = np.stack([g.pixels for g in page.glyphs])
    labels = [d for d, r in zip(DIGITS, rows, strict=True) for _ in r]
    summary: list[SheetRow] = []
    if model is not None:
        read = [model.labels[i] for i in model.probabilities(glyphs).argmax(1)]
        k = 0
        for i, (d, r) in enumerate(zip(DIGITS, rows, strict=True)):
            votes = Counter(read[k : k + len(r)])
            k += len(r)
            top, n = votes.most_common(1)[0]
            if top != d and n > len(r) / 2:
                raise SheetError(
                    f"Row {i + 1} should hold {d}s but reads mostly as {top} ({n} of {len(r)}): are the rows in "
                    "order, from 0 at the top to 9 at the bottom, with none left out?"
                )
            summary.append({"label": d, "count": len(r), "read_as": top})
    else:
        summary = [{"label": d, "count": len(r)} for d, r in zip(DIGITS, rows, strict=True)]
    boxes: list[SheetBox] = [
        {"x": g.x, "y": g.y, "w": g.w, "h": g.h, "label": d} for d, r in zip(DIGITS, rows, strict=True) for g in r
    ]
    return Sheet(glyphs, labels, summary, boxes, gray)


def personal_dir(root: Path, name: str) -> Path:
    """The profile folder a sheet's models go into (``models.profiles.profile_dir``); a name that
    is not a profile name is a ``SheetError``, as every other fault of a sheet request."""
    try:
        return profile_dir(root, name)
    except ProfileError as exc:
        raise SheetError(exc.message) from exc


class PersonalModel(SheetModels):
    """A sheet-trained profile as ``GET /sheet/models`` lists it."""

    name: str


def list_personal(root: Path) -> list[PersonalModel]:
    """Every personal model with its engines and held-out accuracy (one whose ``meta.json`` cannot
    be read is left out, and logged)."""
    out: list[PersonalModel] = []
    for path in sorted(Path(root).glob("*/meta.json")):
        models = sheet_models(path.parent)
        if models is not None:
            out.append({"name": path.parent.name, **models})
    return out


def save_sheet(root: Path, sheet: Sheet) -> str:
    """Keep a checked sheet's glyphs and labels for training; returns its id."""
    sheet_id = uuid.uuid4().hex
    folder = Path(root) / ".sheets"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.npz"):  # checked sheets nobody trained on are kept a day
        if old.stat().st_mtime < time.time() - SHEET_TTL_SECONDS:
            old.unlink(missing_ok=True)
    np.savez_compressed(
        folder / f"{sheet_id}.npz", glyphs=sheet.glyphs, labels=np.array(sheet.labels), rows=json.dumps(sheet.rows)
    )
    return sheet_id


def load_sheet(root: Path, sheet_id: str) -> Sheet:
    """A sheet kept by ``save_sheet``; raises ``SheetError`` for an unknown id."""
    path = Path(root) / ".sheets" / f"{sheet_id}.npz"
    if not re.fullmatch(r"[0-9a-f]{32}", sheet_id or "") or not path.exists():
        raise SheetError("That sheet is not known here: upload it to be checked first.")
    d = np.load(path)
    return Sheet(d["glyphs"], [str(v) for v in d["labels"]], json.loads(str(d["rows"])), [], np.zeros((1, 1)))
