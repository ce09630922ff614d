"""The writer classifier of a profile: does a glyph look like yours, like the standard data of the
same character, or like another character? Trained by a teach (``training.lib.one_sample``) and by a
handwriting sheet (``training.lib.sheet_profile``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

WRITER_EPOCHS = 12


def train_writer(
    yours: np.ndarray,
    standard: np.ndarray,
    other: np.ndarray,
    epochs: int = WRITER_EPOCHS,
    seed: int = 1,
    tick: Callable[[float], None] | None = None,
):
    """``build_writer_cnn`` trained on the three groups, balanced by class weights, augmented."""
    import keras
    import tensorflow as tf

    from models.architectures import build_writer_cnn  # imports TensorFlow: only a training run pays for it
    from training.data.augment import augment  # imports TensorFlow: only a training run pays for it

    keras.utils.set_random_seed(seed)
    x = np.concatenate([yours, standard, other])
    y = np.concatenate([np.full(len(g), i) for i, g in enumerate((yours, standard, other))]).astype(np.int64)
    weights = {i: len(y) / (3 * max(1, int((y == i).sum()))) for i in range(3)}
    data = (
        tf.data.Dataset.from_tensor_slices((x[..., None], y))
        .shuffle(len(x), seed=seed)
        .batch(64)
        .map(lambda a, b: (augment(a, max_deg=8, max_shear=0.1, scale=0.08, shift=1.5), b))
    )
    model = build_writer_cnn()
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    report = [keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: tick((e + 1) / epochs))] if tick else []
    model.fit(data, epochs=epochs, class_weight=weights, shuffle=False, verbose=0, callbacks=report)  # shuffled above
    return model


YOURS_FALSE_SHARE = 0.05  # the "yours" threshold lets this share of unseen standard glyphs through
# never below this: without it one evaluated profile's standard glyphs all scored ~0, its threshold
# with them, and it called everything "yours". Measured (README): on 30 digit profiles the floor
# takes "standard" from 88.0% to 94.6% and "other" from 70.3% to 76.4%, "yours" from 66.7% to 44.1%
MIN_YOURS_THRESHOLD = 0.01


def writer_threshold(writer, unseen: np.ndarray) -> float:
    """The p("yours") above which a glyph is called "yours": the ``1 - YOURS_FALSE_SHARE`` quantile
    of p("yours") over ``unseen``: base glyphs of the taught characters (the look-alikes that are
    hardest to tell from yours) that the writer classifier did not train on.

    Trained on near-copies of one sample, the classifier ranks a writer's other samples well above
    standard ones (ROC AUC 0.90-0.99 on five of six chars62 writer blocks) but rarely above 0.5:
    by the largest probability it called 4% of them "yours"."""
    p_yours = np.concatenate(
        [writer(unseen[i : i + 512, ..., None], training=False).numpy()[:, 0] for i in range(0, len(unseen), 512)]
    )
    return round(max(float(np.quantile(p_yours, 1 - YOURS_FALSE_SHARE)), MIN_YOURS_THRESHOLD), 6)


def halves(glyphs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random half of ``glyphs`` to train on and the other half to calibrate with."""
    order = np.random.default_rng(seed).permutation(len(glyphs))
    return glyphs[order[len(order) // 2 :]], glyphs[order[: len(order) // 2]]
