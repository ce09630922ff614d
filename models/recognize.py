"""Recognition service: image bytes -> the response every route and the CLI return.

request -> preprocessing -> model -> decoding -> response; nothing here knows about HTTP.
"""

from __future__ import annotations

import numpy as np

from models.decoding import top_candidates
from models.preprocessing import DEFAULT_MAX_PIXELS, glyph_from_bytes, to_data_url
from models.registry import Recognizer, Registry

GLYPH_TASKS = ("digit",)


class UnknownTask(ValueError):
    """A task name the service does not offer."""

    code = "unknown_task"

    def __init__(self, task: str, known: list[str]):
        self.message = f"Unknown task {task!r}; choose one of: {', '.join(known)}."
        super().__init__(self.message)


def glyph_result(task: str, model: Recognizer, pixels: np.ndarray, probs: np.ndarray) -> dict:
    """The shared response shape for one glyph."""
    candidates = top_candidates(probs, model.labels, 5)
    return {
        "task": task,
        "text": candidates[0]["label"],
        "confidence": candidates[0]["probability"],
        "candidates": candidates,
        "input_28x28": to_data_url(pixels),
        "model": {"name": model.name, "version": model.version},
    }


def recognize(data: bytes, task: str, registry: Registry, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Read one image file's bytes as ``task``; raises ``PreprocessError`` or ``UnknownTask``."""
    if task not in GLYPH_TASKS or task not in registry.tasks():
        raise UnknownTask(task, [t for t in GLYPH_TASKS if t in registry.tasks()])
    model = registry.get(task)
    glyph = glyph_from_bytes(data, max_pixels)
    probs = model.probabilities(glyph.pixels)[0]
    return glyph_result(task, model, glyph.pixels, probs)
