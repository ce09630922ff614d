"""The glyph and line models as the reading code uses them, and their loaders:
``load_recognizer`` (a glyph CNN), ``load_line_model`` (the line CRNN) and ``load_line_filter``
(the handwriting filter), each checking its folder's ``meta.json`` and export before it serves.
``models.registry`` caches what they load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import WeightsError
from models.loading.forward import KERAS_FILE, ONNX_FILE, load_forward
from models.loading.meta import check_meta, read_meta
from models.preprocessing import FILTER_WIDTH, GLYPH_SIZE, LINE_HEIGHT


@dataclass
class LineRecognizer:
    """The loaded CRNN: charset, metadata and a compiled forward pass for one strip at a time."""

    name: str
    version: str
    charset: str
    meta: dict[str, Any]
    path: Path
    _forward: Any = field(repr=False)

    @property
    def labels(self) -> list[str]:
        return list(self.charset)

    def probabilities(self, strip: np.ndarray) -> np.ndarray:
        """(LINE_HEIGHT, W) uint8 strip -> (W // 4, len(charset) + 1) column probabilities."""
        return self._forward(np.asarray(strip, np.uint8)[None, :, :, None])[0]


def load_line_model(weights_dir: Path) -> LineRecognizer:
    """Load ``model.onnx`` (or ``model.keras``) + ``meta.json`` of the line model; refuses other
    preprocessing."""
    command = "python -m training.train_lines --data-dir ../shared/data"
    if not (weights_dir / "model.keras").exists():
        raise WeightsError(f"No trained line model is installed: run `{command}`.")
    meta = read_meta(weights_dir)
    check_meta(meta, weights_dir, "line", command)
    forward = load_forward(weights_dir, meta, [LINE_HEIGHT, None, 1], command, (1, LINE_HEIGHT, 64, 1))
    return LineRecognizer(meta["name"], str(meta["version"]), "".join(meta["labels"]), meta, weights_dir, forward)


class HandwritingFilter:
    """p(handwriting) of a line strip (``models.architectures.build_line_filter``): printed form
    labels, dotted rules and cut-off lines score low. Windows of a long strip are averaged."""

    def __init__(self, meta: dict, forward):
        self.meta, self.threshold, self._forward = meta, float(meta["threshold"]), forward
        self.name, self.version = meta["name"], str(meta["version"])

    def probability(self, strip: np.ndarray) -> float:
        """How likely the (LINE_HEIGHT, W) uint8 strip is handwriting."""
        return float(self._forward(filter_windows(strip)[..., None]).mean())


def filter_windows(strip: np.ndarray, most: int = 4) -> np.ndarray:
    """(k, LINE_HEIGHT, FILTER_WIDTH) windows of a strip: the strip padded on the right when
    shorter, else up to ``most`` evenly spaced windows."""
    strip = np.asarray(strip, np.uint8)
    h, w = strip.shape
    if w <= FILTER_WIDTH:
        return np.pad(strip, ((0, 0), (0, FILTER_WIDTH - w)))[None]
    starts = np.linspace(0, w - FILTER_WIDTH, min(most, -(-w // FILTER_WIDTH))).astype(int)
    return np.stack([strip[:, a : a + FILTER_WIDTH] for a in starts])


def load_line_filter(weights_dir: Path) -> HandwritingFilter | None:
    """The handwriting filter in ``weights_dir`` (``models/weights/line-filter``), or None when
    none is installed (then every line found is read); refuses other line preprocessing."""
    if not (weights_dir / "model.keras").exists():
        return None
    command = "python -m training.train_line_filter --data-dir ../shared/data"
    meta = read_meta(weights_dir)
    check_meta(meta, weights_dir, "line", command)
    shape = [LINE_HEIGHT, FILTER_WIDTH, 1]
    return HandwritingFilter(meta, load_forward(weights_dir, meta, shape, command, (1, *shape), want=1))


TRAIN_COMMANDS = {
    "digit": "python -m training.train_digits --data-dir ../shared/data",
    "character": "python -m training.train_characters --data-dir ../shared/data",
}


@dataclass
class Recognizer:
    """A loaded classifier: labels, metadata and a compiled forward pass."""

    name: str
    version: str
    labels: list[str]
    meta: dict[str, Any]
    path: Path
    _forward: Any = field(repr=False)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (28, 28) uint8 glyphs -> (N, classes) float32 probabilities."""
        batch = np.asarray(pixels, dtype=np.uint8).reshape(-1, GLYPH_SIZE, GLYPH_SIZE, 1)
        return self._forward(batch)


def load_recognizer(weights_dir: Path, task: str | None = None) -> Recognizer:
    """Load and check one model folder (``model.onnx`` or ``model.keras``, with ``meta.json``)."""
    retrain = TRAIN_COMMANDS.get(task or "", "the training command recorded in its meta.json")
    if not (weights_dir / KERAS_FILE).exists() and not (weights_dir / ONNX_FILE).exists():
        raise WeightsError(f"No trained {weights_dir.name} model is installed: run `{retrain}`.")
    meta = read_meta(weights_dir)
    check_meta(meta, weights_dir, "glyph", retrain)
    shape = [GLYPH_SIZE, GLYPH_SIZE, 1]
    forward = load_forward(weights_dir, meta, shape, retrain, (1, *shape))
    return Recognizer(meta["name"], str(meta["version"]), list(meta["labels"]), meta, weights_dir, forward)
