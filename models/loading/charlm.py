"""The character language model of the line decoder on disk: ``charlm.npz`` (its contexts, their
characters and weights) beside a ``meta.json`` holding the decoder weights chosen on validation
lines. ``save_charlm`` writes a folder, ``load_charlm`` reads one back and ``load_line_lm`` loads
the installed one (``models/weights/line-lm``) as the decoder uses it; the estimates themselves
live in ``models.decoding.charlm``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.decoding.charlm import CharLM, LineLM
from models.errors import WeightsError
from models.loading.meta import read_meta, write_meta

LM_FORMAT = "1"  # bump when the stored arrays change meaning


TRAIN_COMMAND = "python -m training.train_charlm --data-dir ../shared/data"


DECODER_SETTINGS = {"alpha", "beta", "width", "capitals_alpha"}  # what ``meta.json`` must hold under "decoder"


def save_charlm(lm: CharLM, folder: Path) -> None:
    """``charlm.npz`` (contexts, their characters and weights) and ``meta.json`` of ``lm`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / "charlm.npz",
        contexts=lm.names,
        sizes=np.diff(lm.offsets),
        chars=lm.chars,
        weights=lm.weights,
        vocab=np.array(lm.vocab),
        order=np.array(lm.order),
        discount=np.array(lm.discount),
        format=np.array(LM_FORMAT),
    )
    write_meta(folder, lm.meta)


def load_charlm(folder: Path) -> CharLM:
    """A model saved by ``save_charlm``; ``WeightsError`` naming the command to run when its files
    are of another format or cannot be read."""
    try:
        return _read_charlm(folder)
    except (ValueError, KeyError, WeightsError) as exc:
        raise _refused(exc) from exc


def _read_charlm(folder: Path) -> CharLM:
    """``load_charlm`` without the ``WeightsError``: ValueError or KeyError from a file that does not match."""
    with np.load(folder / "charlm.npz", allow_pickle=False) as d:
        if str(d["format"]) != LM_FORMAT:
            raise ValueError(f"{folder / 'charlm.npz'} is format {d['format']}, this code reads {LM_FORMAT}")
        names, sizes, chars, weights = d["contexts"], d["sizes"], d["chars"], d["weights"]
        vocab, order, discount = str(d["vocab"]), int(d["order"]), float(d["discount"])
    if len(names) > 1 and not bool(np.all(names[:-1] < names[1:])):
        raise ValueError(f"{folder / 'charlm.npz'}: contexts are not sorted")
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    meta = read_meta(folder) if (folder / "meta.json").exists() else {}  # none: the decoder settings are missing
    return CharLM(order, vocab, names, offsets, chars.astype(np.uint8), weights.astype(np.float32), meta, discount)


def load_line_lm(folder: Path) -> LineLM | None:
    """The installed language model of the line decoder (``models/weights/line-lm``), or None when
    there is none; ``WeightsError`` naming the command to run when its files do not match this code."""
    if not (folder / "charlm.npz").exists():
        return None
    lm = load_charlm(folder)
    d = lm.meta.get("decoder", {})
    missing = DECODER_SETTINGS - set(d)
    if missing:
        raise _refused(f"{folder / 'meta.json'} lacks decoder settings {sorted(missing)}")
    return LineLM(lm, float(d["alpha"]), float(d["beta"]), int(d["width"]), float(d["capitals_alpha"]))


def _refused(reason: Exception | str) -> WeightsError:
    """The error of a language model that does not load, saying why and which command makes a new one."""
    return WeightsError(f"The line language model does not load ({reason}): run `{TRAIN_COMMAND}`.")
