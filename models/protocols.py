"""What every loaded model offers the code that reads with it, whatever made it.

``Recognizer`` (a glyph CNN, run from its ONNX export), ``HogRecognizer`` (the classical HOG + SVM engine) and
``LineRecognizer`` (the CRNN of lines) share these fields, so the reading code, the registry and
the API's ``model`` field take any of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Model(Protocol):
    """A loaded model: its name and version (as answers report them), its ``meta.json`` and folder."""

    name: str
    version: str
    meta: dict[str, Any]
    path: Path

    @property
    def labels(self) -> list[str]: ...  # the classes, or a line model's characters

    def probabilities(self, pixels: np.ndarray) -> np.ndarray: ...  # a batch in, one row per input out


GlyphModel = Model  # a glyph model's ``probabilities``: (N, 28, 28) uint8 -> (N, len(labels))
