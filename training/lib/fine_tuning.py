"""Training a served glyph model further on new examples without losing what it knew: the class
balanced mix of replay and new data, and the fine-tune with weight-space ensembling. Retraining
from feedback (``training.retrain``), a teach's head (``training.lib.one_sample``) and a
handwriting sheet (``training.lib.sheet_profile``) use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def training_mix(
    replay_x: np.ndarray, replay_y: np.ndarray, fb_x: np.ndarray, fb_y: np.ndarray, share: float, rng
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Replay plus feedback with the class balance of the replay kept.

    Feedback of a class takes up to ``share`` of that class's places (repeated to fill them), and
    the replay of that class gives those places up. Simply adding feedback would raise the prior of
    the corrected class: after a writer's 7s, ordinary 1s and 2s start reading as 7.
    """
    keep = np.ones(len(replay_y), bool)
    parts_x, parts_y = [], []
    for c in np.unique(fb_y):
        places = np.flatnonzero(replay_y == c)
        rows = np.flatnonzero(fb_y == c)
        taken = min(len(places) - 1, max(1, round(share * len(places))))
        if taken <= 0:
            continue
        keep[rng.choice(places, taken, replace=False)] = False
        parts_x.append(fb_x[np.resize(rows, taken)])
        parts_y.append(fb_y[np.resize(rows, taken)])
    x = np.concatenate([replay_x[keep], *parts_x])
    y = np.concatenate([replay_y[keep], *parts_y])
    return x, y, {"replay": int(keep.sum()), "feedback": int(sum(len(p) for p in parts_y)), "share_per_class": share}


def fine_tune(
    current_dir: Path,
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    lr: float,
    batch_size: int,
    epochs: int,
    interpolate: float,
):
    """The model of ``current_dir``, trained further on (x, y) with augmentation, and taken
    ``interpolate`` of the way from its weights to the trained ones."""
    import keras
    import tensorflow as tf

    from training.data.augment import augment  # imports TensorFlow: only a training run pays for it

    keras.utils.set_random_seed(seed)
    model = keras.models.load_model(current_dir / "model.keras", compile=False)
    for layer in model.layers:  # keep the normalisation statistics the full training set gave
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    data = (
        tf.data.Dataset.from_tensor_slices((x[..., None], y))
        .shuffle(len(x), seed=seed)
        .batch(batch_size)
        .map(lambda a, b: (augment(a), b), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    before = [w.copy() for w in model.get_weights()]
    model.fit(data, epochs=epochs, verbose=2)
    # weight-space ensembling (WiSE-FT): part of the way from the served weights to the fine-tuned ones
    # keeps most of what the feedback taught and loses less of what the model knew
    a = interpolate
    model.set_weights([a * w + (1 - a) * w0 for w, w0 in zip(model.get_weights(), before, strict=True)])
    return model
