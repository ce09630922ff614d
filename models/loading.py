"""Loading a model folder: its ``meta.json`` (the one reader, the one check and the one writer) and
the loaders built on them, ``load_recognizer`` (a glyph CNN), ``load_line_model`` (the line
CRNN) and ``load_line_filter`` (the handwriting filter). ``models.registry`` caches what they load.

Every model folder (``models/weights/<name>/``, retrained versions in the instance folder, personal
models) describes itself with the same keys:

- ``name``, ``version``, ``task``; ``training.command``: how it was made;
- ``labels``: what the outputs stand for, in order (a line model: its characters, one per label;
  its one further output is the CTC blank);
- ``preprocessing`` (``"glyph"`` or ``"line"``) and ``preprocessing_version``: the input path the
  model was trained through, which must be the one this code runs;
- ``input_shape``: ``[28, 28, 1]`` for a glyph CNN, ``[48, null, 1]`` for a line model (any width).

Older line models said ``charset`` (a string), ``line_preprocessing_version`` and ``input_height``:
``read_meta`` reads them as the keys above, so versions kept in an instance folder still load.

``load_forward`` gives the checked forward pass of a folder: ``model.onnx`` in ONNX Runtime when
the folder has one (and ``meta.json`` records its sha256 under ``onnx``), else ``model.keras``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import WeightsError
from models.inference import EXPORT_COMMAND, KERAS_FILE, ONNX_FILE, Forward, OnnxForward, keras_forward
from models.preprocessing import (
    FILTER_WIDTH,
    GLYPH_SIZE,
    LINE_HEIGHT,
    LINE_PREPROCESSING_VERSION,
    PREPROCESSING_VERSION,
)

log = logging.getLogger(__name__)

CURRENT = {"glyph": PREPROCESSING_VERSION, "line": LINE_PREPROCESSING_VERSION}  # what this code runs


def upgrade(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` in the current vocabulary (a new dict; old keys replaced, everything else kept)."""
    meta = dict(meta)
    if "line_preprocessing_version" in meta:
        meta["preprocessing"] = "line"
        meta["preprocessing_version"] = meta.pop("line_preprocessing_version")
    if "charset" in meta:
        meta["labels"] = list(meta.pop("charset"))
    if "input_height" in meta:
        meta["input_shape"] = [meta.pop("input_height"), None, 1]
    meta.setdefault("preprocessing", "glyph")
    return meta


def read_meta(folder: Path) -> dict[str, Any]:
    """The ``meta.json`` in ``folder``, in the current vocabulary; ``WeightsError`` when it is
    missing or not a JSON object."""
    path = Path(folder) / "meta.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise WeightsError(f"The {path.parent.name} model has no meta.json beside its weights.") from exc
    except (OSError, ValueError) as exc:
        raise WeightsError(f"The {path.parent.name} model's meta.json cannot be read ({exc}).") from exc
    if not isinstance(meta, dict):
        raise WeightsError(f"The {path.parent.name} model's meta.json is not a JSON object.")
    return upgrade(meta)


def check_meta(meta: dict[str, Any], folder: Path, preprocessing: str, retrain: str) -> None:
    """Refuse (``WeightsError`` naming ``retrain``, or the command recorded in ``meta``) a model made
    for another input path or another version of it than this code runs."""
    version = meta.get("preprocessing_version")
    if meta.get("preprocessing") != preprocessing or version != CURRENT[preprocessing]:
        command = meta.get("training", {}).get("command", retrain)
        raise WeightsError(
            f"{Path(folder).name} was trained with {meta.get('preprocessing')} preprocessing version {version}, "
            f"this code uses {preprocessing} preprocessing version {CURRENT[preprocessing]}: retrain with `{command}`."
        )


def check_shapes(
    meta: dict[str, Any],
    folder: Path,
    got: list,
    outputs: int | None,
    expected: list,
    retrain: str,
    want: int | None = None,
) -> None:
    """Refuse a model whose network (input shape ``got``, ``outputs`` on its last axis) or
    ``meta.json`` expects another input than ``expected``, or whose outputs are not ``want``
    (default: one per label, and one more for a line model's CTC blank)."""
    name = Path(folder).name
    if list(got) != expected or meta.get("input_shape") != expected:
        raise WeightsError(f"{name} expects input {list(got)}, not {expected}: run `{retrain}`.")
    labels = len(meta.get("labels", []))
    if want is None:
        want = labels + (1 if meta["preprocessing"] == "line" else 0)
    if outputs != want:
        raise WeightsError(f"{name} has {outputs} outputs for {labels} labels: run `{retrain}`.")


def check_export(meta: dict[str, Any], folder: Path) -> None:
    """Refuse (``WeightsError``) a ``model.onnx`` that is not the file ``meta.json`` records (its
    sha256, written by ``training.onnx_export``): an export left from another training run."""
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


def write_meta(folder: Path, meta: dict[str, Any]) -> Path:
    """Write ``meta`` as ``folder/meta.json`` (created if needed) in one step: a reader, or a server
    watching the file's time stamp, never sees half of it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path, tmp = folder / "meta.json", folder / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


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
