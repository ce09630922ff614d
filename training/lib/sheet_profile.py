"""Personal models from one handwriting sheet (``models.handwriting_sheets``): a classical HOG + SVM engine
fitted on the sheet's glyphs, and the digit CNN fine-tuned on them. A fifth of each row is held out
and both are measured on it against the shipped digit model.

``flask --app app sheet train SHEET.jpg --name alice`` and ``POST /sheet/train`` call ``train_personal``.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models.handwriting_sheets import Sheet
from models.loading import load_hog, load_recognizer, save_hog, write_meta
from models.profiles import WRITER_CLASSES, base_data, create_profile
from models.registry import WEIGHTS_DIR
from training.data.augment import augment
from training.lib.fine_tuning import fine_tune
from training.lib.folders import swap_folder
from training.lib.hog_pipeline import fit
from training.lib.loop import save_weights
from training.lib.writer_classifier import halves, train_writer, writer_threshold
from training.provenance import stamped

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
AUGMENTED_COPIES = 8  # jittered copies of each sheet glyph: a sheet holds few samples


def jittered(glyphs: np.ndarray, labels: np.ndarray, copies: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The glyphs plus ``copies`` augmented versions of each (the training augmentation)."""

    tf.random.set_seed(seed)
    batch = np.repeat(glyphs, copies, axis=0)[..., None]
    more = augment(tf.constant(batch)).numpy()[..., 0].astype(np.uint8)
    return np.concatenate([glyphs, more]), np.concatenate([labels, np.repeat(labels, copies)])


def holdout_split(labels: list[str], share: float = 0.2) -> np.ndarray:
    """A boolean mask: the last ``share`` of each row (at least one glyph) is held out."""
    labels = np.array(labels)
    held = np.zeros(len(labels), bool)
    for d in np.unique(labels):
        idx = np.flatnonzero(labels == d)
        held[idx[-max(1, int(round(share * len(idx)))) :]] = True
    return held


def sheet_writer(glyphs: np.ndarray, weights_dir: Path, seed: int):
    """The writer classifier of a sheet and its "yours" threshold (``training.teach``): "yours" is
    the sheet's digits, "standard" the digit model's training digits, "other" the character data's
    letters; half of the standard digits is kept aside to set the threshold."""
    root = weights_dir if (Path(weights_dir) / "personal-base").exists() else WEIGHTS_DIR
    standard, standard_cal = halves(base_data("digit", root)[0], seed)
    chars_x, chars_y = base_data("character", root)[:2]
    other = chars_x[chars_y >= 10]
    model = train_writer(glyphs, standard, np.random.default_rng(seed).permutation(other)[:2000], seed=seed)
    return model, writer_threshold(model, standard_cal)


def train_personal(sheet: Sheet, name: str, out: Path, base_dir: Path, epochs: int = 6, seed: int = 1) -> dict:
    """Fit both personal engines into ``out`` and return the meta.json written there."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(out.name, threading.Lock())
    with lock:  # two trainings of one name in this process take turns
        return _train(sheet, name, out, base_dir, epochs, seed)


def _train(sheet: Sheet, name: str, out: Path, base_dir: Path, epochs: int, seed: int) -> dict:
    held = holdout_split(sheet.labels)
    y = np.array(sheet.labels)
    x_train, y_train = jittered(sheet.glyphs[~held], y[~held], AUGMENTED_COPIES, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex}.tmp"  # private to this training
    base = load_recognizer(base_dir, "digit")
    fit_engines(tmp, name, base, base_dir, x_train, y_train, epochs, seed)
    info = {
        "name": name,
        "engines": ["cnn", "hog"],
        "writer": True,
        "rows": sheet.rows,
        "samples": {"train": int((~held).sum()), "held_out": int(held.sum()), "augmented_copies": AUGMENTED_COPIES},
        "metrics": {"held_out_accuracy": held_out_accuracy(tmp, base, sheet.glyphs[held], y[held])},
    }
    info = stamped(info, None)  # "trained_on" (sheets trained before said "created"; nothing reads either)
    write_meta(tmp, info)
    token = swap_in(tmp, out)
    return info | ({"profile_token": token} if token else {})


def fit_engines(tmp: Path, name: str, base, base_dir: Path, x: np.ndarray, y: np.ndarray, epochs: int, seed: int):
    """The sheet's HOG engine, its fine-tuned CNN and its writer classifier, into ``tmp``."""

    pipeline = fit(x, y, "svm", components=40, seed=seed)
    hog_meta = {"name": f"{name}-hog", "version": "1", "labels": list("0123456789")}
    save_hog(pipeline, tmp / "hog", stamped(hog_meta, None, "glyph"))
    ids = np.array([base.labels.index(v) for v in y])
    keras.utils.set_random_seed(seed)
    model = fine_tune(base_dir, x, ids, seed, lr=1e-4, batch_size=32, epochs=epochs, interpolate=0.7)
    meta = {k: v for k, v in base.meta.items() if k not in ("metrics", "training")}
    save_weights(model, tmp / "cnn", meta | {"name": f"{name}-cnn", "version": "1", "parent": base.version})
    writer, threshold = sheet_writer(x, base_dir.parent, seed)
    writer_meta = {
        "name": f"{name}-writer",
        "version": "1",
        "labels": list(WRITER_CLASSES),
        "profile": name,
        "yours_threshold": threshold,
    }
    save_weights(writer, tmp / "writer", writer_meta)


def held_out_accuracy(tmp: Path, base, x_held: np.ndarray, y_held: np.ndarray) -> dict[str, float]:
    """How the shipped digit model and both personal engines read the sheet's held-out glyphs."""
    measure = {
        "shipped digit model": base,
        "personal cnn": load_recognizer(tmp / "cnn", "digit"),
        "personal hog": load_hog(tmp / "hog"),
    }
    return {
        k: round(float(np.mean(np.array(m.labels)[m.probabilities(x_held).argmax(1)] == y_held)), 4)
        for k, m in measure.items()
    }


def swap_in(tmp: Path, out: Path) -> str | None:
    """Each engine of ``tmp`` into the profile ``out`` by renames: a half-trained model is never
    visible under its name, the old one stays whole until the new one is in place, and what else
    the profile holds is left alone. Returns the owner token when the profile was made now."""
    _, token = create_profile(out.parent, out.name)
    for part in ("cnn", "hog", "writer"):
        swap_folder(tmp / part, out / part)
    (tmp / "meta.json").replace(out / "meta.json")
    shutil.rmtree(tmp, ignore_errors=True)
    return token
