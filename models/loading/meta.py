"""The one reader, the one check and the one writer of a model folder's ``meta.json``.

Every model folder (``models/weights/<name>/``, retrained versions in the instance folder, personal
models) describes itself with the same keys:

- ``name``, ``version``, ``task``; ``training.command``: how it was made;
- ``labels``: what the outputs stand for, in order (a line model: its characters, one per label;
  its one further output is the CTC blank);
- ``preprocessing`` (``"glyph"`` or ``"line"``) and ``preprocessing_version``: the input path the
  model was trained through, which must be the one this code runs;
- ``input_shape``: ``[28, 28, 1]`` for a glyph CNN, ``[48, null, 1]`` for a line model (any width).

A folder whose model reads no image (``line-lm``, the line decoder's language model) has no
``preprocessing`` keys; its ``decoder`` holds the weights the beam search gives it.

Older line models said ``charset`` (a string), ``line_preprocessing_version`` and ``input_height``,
older glyph models only ``preprocessing_version``: ``read_meta`` reads them as the keys above, so
versions kept in an instance folder still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.errors import WeightsError
from models.files import read_json, write_json
from models.preprocessing import LINE_PREPROCESSING_VERSION, PREPROCESSING_VERSION

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
    if "preprocessing_version" in meta:  # a version alone named the glyph path, the only one there was
        meta.setdefault("preprocessing", "glyph")
    return meta


def read_meta(folder: Path) -> dict[str, Any]:
    """The ``meta.json`` in ``folder``, in the current vocabulary; ``WeightsError`` when it is
    missing or not a JSON object."""
    path = Path(folder) / "meta.json"
    try:
        meta = read_json(path)
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


def write_meta(folder: Path, meta: dict[str, Any]) -> Path:
    """Write ``meta`` as ``folder/meta.json`` (created if needed) in one step: a reader, or a server
    watching the file's time stamp, never sees half of it."""
    return write_json(Path(folder) / "meta.json", meta)
