"""Export a trained Keras model to ONNX beside its ``model.keras``, checked against Keras.

The server runs the ONNX file in ONNX Runtime (``models.loading.forward``) and never imports TensorFlow.
Every command that writes ``model.keras`` calls ``export_onnx`` on the same network before it
writes ``meta.json``, and stores the returned record there as ``onnx``: the file's sha256 (the
registry refuses a file that is not the one recorded), the opset, the library versions and the
largest difference from Keras measured at export time. An export that differs from Keras by more
than ``TOLERANCE`` on any probe is refused: it would answer differently from the model measured.

Keras 3 exports through ``tf2onnx`` on the TensorFlow backend (``keras.Model.export(format="onnx")``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from models.loading import ONNX_FILE, OnnxForward

TOLERANCE = 1e-5  # largest |ONNX - Keras| allowed on any output of any probe
PROBE_WIDTHS = (64, 257, 800)  # a line model is probed at several widths (its width is free)


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def probes(input_shape: list, seed: int = 0) -> list[np.ndarray]:
    """uint8 batches covering what the model sees: blank, full ink, random, and for a free width
    (a line model, batch 1) several widths; for a fixed shape, batches of 1 and 7."""
    rng = np.random.default_rng(seed)
    height, width, channels = input_shape
    if width is None:
        shapes = [(1, height, w, channels) for w in PROBE_WIDTHS]
    else:
        shapes = [(1, height, width, channels), (7, height, width, channels)]
    batches = [np.zeros(shapes[0], np.uint8), np.full(shapes[0], 255, np.uint8)]
    batches += [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]
    # Sparse strokes on blank paper, closer to real input than uniform noise.
    batches += [np.where(rng.random(s) < 0.15, rng.integers(128, 256, s), 0).astype(np.uint8) for s in shapes]
    return batches


def export_onnx(model: Any, out_dir: Path, input_shape: list | None = None) -> dict[str, Any]:
    """Write ``out_dir/model.onnx`` from the Keras ``model`` and return its ``meta.json`` record;
    ``ValueError`` (and no file) when ONNX Runtime's outputs differ from Keras beyond ``TOLERANCE``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import onnx
    import tensorflow as tf
    import tf2onnx

    shape = list(input_shape or model.input_shape[1:])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path, tmp = out_dir / ONNX_FILE, out_dir / f"{ONNX_FILE}.tmp"
    spec = [tf.TensorSpec([None, *shape], tf.uint8, name="pixels")]
    model.export(str(tmp), format="onnx", verbose=False, input_signature=spec)
    session = OnnxForward(tmp)
    diff = 0.0
    for batch in probes(shape):
        want = np.asarray(model(batch, training=False))
        diff = max(diff, float(np.abs(session(batch) - want).max()))
    if not diff <= TOLERANCE:
        tmp.unlink()
        raise ValueError(f"the ONNX export of {out_dir.name} differs from Keras by {diff:.2e} (> {TOLERANCE})")
    os.replace(tmp, path)
    imports = onnx.load(str(path), load_external_data=False).opset_import
    opset = next(o.version for o in imports if o.domain in ("", "ai.onnx"))
    return {
        "file": ONNX_FILE,
        "sha256": sha256(path),
        "opset": int(opset),
        "max_abs_diff": float(f"{diff:.3g}"),
        "exported_with": {"keras": keras.__version__, "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__},
    }
