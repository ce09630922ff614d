"""The served forward passes: ONNX Runtime sessions of the exports beside each ``model.keras``.

Every training command writes ``model.onnx`` next to ``model.keras`` and records it in
``meta.json`` (``onnx``: sha256, opset, the difference from Keras measured at export; see
``training.onnx_export``). Serving runs that file in ONNX Runtime, so a server that only serves
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

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.errors import WeightsError

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
