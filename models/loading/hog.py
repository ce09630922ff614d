"""The classical engine: HOG features of the same 28x28 glyphs the CNNs read, then an SVM or KNN
(scikit-learn). Trained by ``python -m training.train_hog``; a personal sheet trains one too.

The classifier is stored with joblib (a pickle): load only files this project wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import WeightsError
from models.loading.meta import check_meta, read_meta, write_meta
from models.preprocessing import GLYPH_SIZE

HOG_PARAMS = {"orientations": 9, "pixels_per_cell": (4, 4), "cells_per_block": (2, 2), "block_norm": "L2-Hys"}


def hog_features(glyphs: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 glyphs -> (N, 1296) float32 HOG descriptors."""
    from skimage.feature import hog

    glyphs = np.asarray(glyphs, np.uint8).reshape(-1, GLYPH_SIZE, GLYPH_SIZE)
    return np.stack([hog(g, **HOG_PARAMS) for g in glyphs]).astype(np.float32)


@dataclass
class HogRecognizer:
    """A fitted HOG pipeline with the same ``probabilities`` interface as ``Recognizer``."""

    name: str
    version: str
    labels: list[str]
    meta: dict[str, Any]
    path: Path
    pipeline: Any = field(repr=False)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 28, 28) or (28, 28) uint8 glyphs -> (N, labels) probabilities."""
        probs = self.pipeline.predict_proba(hog_features(pixels))
        out = np.zeros((len(probs), len(self.labels)), np.float32)
        out[:, [self.labels.index(str(c)) for c in self.pipeline.classes_]] = probs
        return out


def save_hog(pipeline, out_dir: Path, meta: dict) -> Path:
    """Write ``model.joblib`` and ``meta.json`` (``meta`` as ``training.provenance.stamped`` made
    it: with the time, the command and the preprocessing version)."""
    import joblib

    out_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, out_dir / "model.joblib", compress=3)
    meta = {
        "engine": "hog",
        "input_shape": [GLYPH_SIZE, GLYPH_SIZE],
        "hog": {k: list(v) if isinstance(v, tuple) else v for k, v in HOG_PARAMS.items()},
    } | meta
    write_meta(out_dir, meta)
    return out_dir


def load_hog(weights_dir: Path) -> HogRecognizer:
    """Load a HOG engine folder; raises ``WeightsError`` when it is missing or made for other code."""
    import joblib

    retrain = "python -m training.train_hog --data-dir ../shared/data"
    if not (weights_dir / "model.joblib").exists():
        raise WeightsError(f"The HOG engine is not installed: run `{retrain}`.")
    meta = read_meta(weights_dir)
    check_meta(meta, weights_dir, "glyph", retrain)
    pipeline = joblib.load(weights_dir / "model.joblib")
    return HogRecognizer(meta["name"], str(meta["version"]), list(meta["labels"]), meta, weights_dir, pipeline)
