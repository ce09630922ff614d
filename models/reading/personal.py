"""Reading with a person's profile: the profile's own models for a task (a taught model, or the
CNN of a handwriting sheet) and the writer classifier's verdict on a glyph."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import ProfileError
from models.profiles import (
    profile_task_dir,
    taught_tasks,
)
from models.protocols import GlyphModel
from models.reading.results import WriterVerdict
from models.registry import Registry


def personal_models(registry: Registry, profile: Path, task: str) -> tuple[GlyphModel, GlyphModel | None]:
    """(recogniser, writer classifier or None) of ``profile`` for ``task``: the taught model, or for
    digits a sheet-trained CNN; raises ``ProfileError`` when the profile has neither."""
    folder = profile_task_dir(profile, task)
    if (folder / "model" / "model.keras").exists():
        return registry.personal(folder, "model"), registry.personal(folder, "writer")
    if task == "digit" and (Path(profile) / "cnn" / "model.keras").exists():  # trained from a sheet
        writer = next(
            (
                registry.personal(f, "writer")
                for f in (folder, Path(profile))
                if (f / "writer" / "model.keras").exists()
            ),
            None,
        )
        return registry.personal(Path(profile), "cnn"), writer
    taught = ", ".join(taught_tasks(profile)) or "nothing yet"
    raise ProfileError(f"Profile {Path(profile).name!r} has no {task} model (it was taught: {taught}).")


def writer_verdict(writer: GlyphModel | None, pixels: np.ndarray) -> WriterVerdict:
    """``{"label": "yours"|"standard"|"other", "probability": p}`` for one 28x28 glyph.

    "yours" when p("yours") reaches the threshold measured at teach time (``yours_threshold`` in
    the writer's meta.json: what only 5% of unseen standard glyphs of the taught characters reach),
    otherwise the likelier of "standard" and "other"; ``probability`` is the classifier's
    probability of the label given."""
    if writer is None:
        return {"label": None, "probability": None, "message": "This profile has no writer classifier yet."}
    probs = writer.probabilities(pixels)[0]
    threshold = writer.meta.get("yours_threshold")
    if threshold is None:
        best = int(np.argmax(probs))
    else:
        best = 0 if probs[0] >= threshold else 1 + int(np.argmax(probs[1:]))
    verdict = {"label": writer.labels[best], "probability": round(float(probs[best]), 4)}
    return verdict | ({"yours_threshold": threshold} if threshold is not None else {})
