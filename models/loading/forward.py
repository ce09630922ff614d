"""The served forward passes: ONNX Runtime sessions of the exports beside each ``model.keras``.

Every training command writes ``model.onnx`` next to ``model.keras`` and records it in
``meta.json`` (``onnx``: sha256, opset, the difference from Keras measured at export; see
``training.lib.keras_to_onnx``). Serving runs that file in ONNX Runtime, so a server that only serves
never imports TensorFlow: it starts in about a second and holds a fraction of the memory.

A folder without ``model.onnx`` (a version retrained before exports existed) is still served,
through a compiled Keras forward pass (this imports TensorFlow, once, and logs a warning saying how
to export it). A ``model.onnx`` that is not the file its ``meta.json`` records, or whose input or
output shape differs from it, is refused.

ONNX Runtime's ``run`` is thread-safe. Each session uses ``HWR_INFERENCE_THREADS`` intra-op
threads (default 1): the server's own threads and workers already keep the cores busy, and one
thread per call avoids oversubscribing them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import WeightsError
from models.loading.meta import check_shapes

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
KERAS_FILE = "model.keras"
EXPORT_COMMAND = "python -m training.export_onnx"

Forward = Callable[[np.ndarray], np.ndarray]  # uint8 batch -> float32 outputs


def inference_threads() -> int:
    """Intra-op threads per ONNX Runtime session (``HWR_INFERENCE_THREADS``, default 1)."""
    try:
        return max(1, int(os.environ.get("HWR_INFERENCE_THREADS", "1")))
    except ValueError:
        return 1


class OnnxForward:
    """One ONNX Runtime session: ``forward(batch)`` -> the model's (first) output as numpy.
    ``input_shape`` (without the batch axis; None where free) and ``outputs`` (the last axis of the
    output) are read from the file, for the registry to compare with ``meta.json``."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or inference_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
        self.path = Path(path)
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own unexported exception types
            raise WeightsError(f"{self.path.parent.name}/{self.path.name} cannot be loaded ({exc}).") from exc
        first = self._session.get_inputs()[0]
        self._input = first.name
        self.input_shape = [d if isinstance(d, int) else None for d in first.shape[1:]]
        last = self._session.get_outputs()[0].shape[-1]
        self.outputs = last if isinstance(last, int) else None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.uint8)})[0]


def keras_forward(folder: Path, batch_shape: list, probe_shape: tuple) -> tuple[Forward, list, int]:
    """A compiled Keras forward pass of ``folder/model.keras`` (imports TensorFlow), with the
    network's input shape and number of outputs; traced once on a blank ``probe_shape`` batch."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    try:
        model = keras.models.load_model(Path(folder) / KERAS_FILE, compile=False)
    except (OSError, ValueError) as exc:
        raise WeightsError(f"The {Path(folder).name} weights cannot be loaded ({exc}).") from exc
    compiled = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec(batch_shape, tf.uint8)])
    compiled(np.zeros(probe_shape, np.uint8))

    def forward(batch: np.ndarray) -> np.ndarray:
        return compiled(np.asarray(batch, np.uint8)).numpy()

    return forward, list(model.input_shape[1:]), int(model.output_shape[-1])


def check_export(meta: dict[str, Any], folder: Path) -> None:
    """Refuse (``WeightsError``) a ``model.onnx`` that is not the file ``meta.json`` records (its
    sha256, written by ``training.lib.keras_to_onnx``): an export left from another training run."""
    folder = Path(folder)
    command = f"{EXPORT_COMMAND} {folder}"
    recorded = (meta.get("onnx") or {}).get("sha256")
    if not recorded:
        raise WeightsError(f"{folder.name}/{ONNX_FILE} is not recorded in its meta.json: run `{command}`.")
    if hashlib.sha256((folder / ONNX_FILE).read_bytes()).hexdigest() != recorded:
        raise WeightsError(f"{folder.name}/{ONNX_FILE} is not the export its meta.json records: run `{command}`.")


def load_forward(
    folder: Path, meta: dict[str, Any], expected: list, retrain: str, probe: tuple, want: int | None = None
) -> Forward:
    """The checked forward pass of a model folder: its ONNX export in ONNX Runtime, or (a folder
    without one) its Keras model through TensorFlow. ``probe``: the shape of a first, blank batch
    (run here, so no request pays for the first allocation); ``want``: see ``check_shapes``."""
    folder = Path(folder)
    if (folder / ONNX_FILE).exists():
        check_export(meta, folder)
        forward = OnnxForward(folder / ONNX_FILE)
        got, outputs = forward.input_shape, forward.outputs
    else:
        log.warning(
            "%s has no %s: served through TensorFlow (`%s %s` exports it)", folder, ONNX_FILE, EXPORT_COMMAND, folder
        )
        forward, got, outputs = keras_forward(folder, [None, *expected], probe)
    check_shapes(meta, folder, got, outputs, expected, retrain, want)
    forward(np.zeros(probe, np.uint8))
    return forward
