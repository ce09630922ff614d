"""Loading a model folder, in five rooms:

- ``meta``: the one reader, check and writer of ``meta.json`` (one key vocabulary; old keys read);
- ``forward``: the served forward pass, ``model.onnx`` in ONNX Runtime or (a folder without one)
  ``model.keras`` through TensorFlow, checked against what ``meta.json`` records;
- ``recognizers``: the glyph CNN, the line CRNN and the handwriting filter, and their loaders;
- ``hog``: the classical HOG + SVM engine, saved and loaded with its ``meta.json``;
- ``charlm``: the line decoder's character language model, saved and loaded with its ``meta.json``.

``models.registry`` caches what they load. What callers use is importable from here too.
"""

from models.loading.charlm import LM_FORMAT, load_charlm, load_line_lm, save_charlm
from models.loading.forward import (
    EXPORT_COMMAND,
    KERAS_FILE,
    ONNX_FILE,
    Forward,
    OnnxForward,
    check_export,
    inference_threads,
    keras_forward,
    load_forward,
)
from models.loading.hog import HogRecognizer, hog_features, load_hog, save_hog
from models.loading.meta import CURRENT, check_meta, check_shapes, read_meta, upgrade, write_meta
from models.loading.recognizers import (
    TRAIN_COMMANDS,
    HandwritingFilter,
    LineRecognizer,
    Recognizer,
    filter_windows,
    load_line_filter,
    load_line_model,
    load_recognizer,
)

__all__ = [
    "CURRENT",
    "EXPORT_COMMAND",
    "KERAS_FILE",
    "LM_FORMAT",
    "ONNX_FILE",
    "TRAIN_COMMANDS",
    "Forward",
    "HandwritingFilter",
    "HogRecognizer",
    "LineRecognizer",
    "OnnxForward",
    "Recognizer",
    "check_export",
    "check_meta",
    "check_shapes",
    "filter_windows",
    "hog_features",
    "inference_threads",
    "keras_forward",
    "load_charlm",
    "load_forward",
    "load_hog",
    "load_line_lm",
    "load_line_filter",
    "load_line_model",
    "load_recognizer",
    "read_meta",
    "save_charlm",
    "save_hog",
    "upgrade",
    "write_meta",
]
