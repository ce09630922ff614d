"""Shared training loop for the glyph classifiers: resumable, logged, and writing weights together
with their ``meta.json`` (labels, input shape, preprocessing version, metrics, exact command)."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models.architectures import BUILDERS
from models.files import write_json
from training.data.augment import augment
from training.lib.glyph_metrics import evaluate_task
from training.lib.keras_to_onnx import export_onnx
from training.provenance import ROOT, config_record, publish_meta

CHECKPOINTS = ROOT / "training" / ".checkpoints"


@dataclass(frozen=True)
class GlyphTraining:
    """How a glyph classifier is trained (``training.train_digits``, ``training.train_characters``
    add their own fields); its meta.json keeps this whole (``training.config``)."""

    task: str = "digit"  # the model's task and weights folder name
    data_dir: Path | None = None  # the datasets (None: download them)
    arch: str = "glyph_cnn"  # network builder (``models.architectures.BUILDERS``)
    width: int = 32  # filters in the first block (glyph_cnn only)
    dropout: float = 0.4  # dropout rate of each block (glyph_cnn only)
    max_deg: float = 12.0  # augmentation: largest rotation in degrees
    max_shear: float = 0.2  # augmentation: largest shear (slant)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3  # initial Adam learning rate
    lr_decay: float = 0.9  # learning-rate factor per epoch
    outliers: int = 0  # scribbles + run-together glyphs trained to a uniform answer
    seed: int = 1  # splits, initialisation, shuffling
    out: Path | None = None  # output folder (None: models/weights/<task>)
    run_name: str | None = None  # checkpoint folder name (None: <task>-<arch>)
    checkpoint_dir: Path = CHECKPOINTS  # where runs keep resumable state

    @property
    def out_dir(self) -> Path:
        return self.out or ROOT / "models" / "weights" / self.task


def glyph_training_parser(doc: str, defaults: GlyphTraining, data_help: str) -> argparse.ArgumentParser:
    """The flags every glyph-classifier training command shares, with ``defaults``' values;
    callers add their own and build their config from all of them."""
    d = defaults
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(task=d.task)
    p.add_argument("--data-dir", type=Path, default=d.data_dir, help=data_help)
    p.add_argument("--arch", choices=sorted(BUILDERS), default=d.arch, help="network builder")
    p.add_argument("--width", type=int, default=d.width, help="filters in the first block (glyph_cnn only)")
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout rate of each block (glyph_cnn only)")
    p.add_argument("--max-deg", type=float, default=d.max_deg, help="augmentation: largest rotation in degrees")
    p.add_argument("--max-shear", type=float, default=d.max_shear, help="augmentation: largest shear (slant)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="training epochs")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="mini-batch size")
    p.add_argument("--lr", type=float, default=d.lr, help="initial Adam learning rate")
    p.add_argument("--lr-decay", type=float, default=d.lr_decay, help="learning-rate factor per epoch")
    p.add_argument(
        "--outliers", type=int, default=d.outliers, help="scribbles + run-together glyphs trained to a uniform answer"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (splits, init, shuffling)")
    p.add_argument("--out", type=Path, default=d.out, help=f"output folder (default: models/weights/{d.task})")
    p.add_argument("--run-name", default=d.run_name, help=f"checkpoint folder name (default: {d.task}-<arch>)")
    p.add_argument("--checkpoint-dir", type=Path, default=d.checkpoint_dir, help="where runs keep resumable state")
    return p


def build_model(cfg: GlyphTraining, num_classes: int) -> keras.Model:
    """The network ``cfg.arch`` names (with its width and dropout) for ``num_classes`` classes."""
    kwargs = {"width": cfg.width, "dropout": cfg.dropout} if cfg.arch == "glyph_cnn" else {}
    return BUILDERS[cfg.arch](num_classes, **kwargs)


def train_glyphs(
    cfg: GlyphTraining, num_classes: int, data: dict[str, np.ndarray], outliers=None
) -> tuple[keras.Model, dict]:
    """Build the network ``cfg`` names and train it with its recipe (see ``train_classifier``)."""
    return train_classifier(
        build_model(cfg, num_classes),
        data,
        cfg.run_name or f"{cfg.task}-{cfg.arch}",
        cfg.epochs,
        cfg.batch_size,
        cfg.lr,
        cfg.lr_decay,
        cfg.seed,
        augment_kwargs={"max_deg": cfg.max_deg, "max_shear": cfg.max_shear},
        checkpoint_root=cfg.checkpoint_dir,
        outliers=outliers,
    )


class KeepBest(keras.callbacks.Callback):
    """Save the model whenever validation accuracy beats the best so far, across resumes."""

    def __init__(self, directory: Path):
        super().__init__()
        self.model_path = directory / "best.keras"
        self.state_path = directory / "best.json"

    def on_epoch_end(self, epoch, logs=None):
        acc = float((logs or {}).get("val_accuracy", 0.0))
        best = json.loads(self.state_path.read_text()) if self.state_path.exists() else {"val_accuracy": -1}
        if acc > best["val_accuracy"]:
            self.model.save(self.model_path)
            write_json(self.state_path, {"val_accuracy": acc, "epoch": epoch + 1})


def resumable_callbacks(ckpt: Path, schedule) -> list:
    """Resume after an interruption (``BackupAndRestore``), the learning-rate ``schedule``, a CSV
    log and the best epoch kept (``KeepBest``), all in ``ckpt``."""
    return [
        keras.callbacks.BackupAndRestore(str(ckpt / "backup")),
        keras.callbacks.LearningRateScheduler(schedule),
        keras.callbacks.CSVLogger(str(ckpt / "log.csv"), append=True),
        KeepBest(ckpt),
    ]


def train_classifier(
    model: keras.Model,
    data: dict[str, np.ndarray],
    run_name: str,
    epochs: int,
    batch_size: int,
    lr: float,
    lr_decay: float,
    seed: int,
    augment_kwargs: dict | None = None,
    checkpoint_root: Path = CHECKPOINTS,
    outliers: np.ndarray | None = None,
) -> tuple[keras.Model, dict]:
    """Fit ``model`` on data['x_train'/'y_train'] with augmentation, validate on 'x_val'/'y_val'.

    Resumes from ``<checkpoint_root>/<run_name>`` when a previous run was interrupted, and
    returns the model with the best validation accuracy plus a summary of the run.
    ``outliers`` (glyphs that are no class: scribbles, run-together characters) are trained towards
    a uniform answer (outlier exposure), so the model learns to be unsure of such input.
    """
    ckpt = Path(checkpoint_root) / run_name
    ckpt.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    aug = augment_kwargs or {}
    x_train, y_train, y_val, loss = with_outliers(data, outliers, int(model.output_shape[-1]))
    train = augmented_batches(x_train, y_train, batch_size, seed, aug)
    val = (data["x_val"][..., None], y_val)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
    callbacks = resumable_callbacks(ckpt, lambda epoch: lr * lr_decay**epoch)
    start = time.time()
    model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=2)
    best_state = json.loads((ckpt / "best.json").read_text())
    best = keras.models.load_model(ckpt / "best.keras")
    summary = {
        "epochs": epochs,
        "best_epoch": best_state["epoch"],
        "val_accuracy": round(best_state["val_accuracy"], 5),
        "batch_size": batch_size,
        "learning_rate": lr,
        "lr_decay_per_epoch": lr_decay,
        "seed": seed,
        "outliers": 0 if outliers is None else len(outliers),
        "augmentation": {"max_deg": 12.0, "max_shear": 0.2, "scale": 0.12, "shift": 2.0, "p_thickness": 0.2} | aug,
        "wall_seconds_this_run": round(time.time() - start, 1),
    }
    return best, summary


def with_outliers(data: dict[str, np.ndarray], outliers: np.ndarray | None, classes: int):
    """(x_train, y_train, y_val, loss): the training glyphs with ``outliers`` added, trained towards a
    uniform answer (one-hot targets then, so the loss is categorical); without outliers, class ids."""
    x_train, y_train, y_val = data["x_train"], data["y_train"], data["y_val"]
    if outliers is None or not len(outliers):
        return x_train, y_train, y_val, "sparse_categorical_crossentropy"
    one_hot = np.eye(classes, dtype=np.float32)
    uniform = np.full((len(outliers), classes), 1 / classes, np.float32)
    targets = np.concatenate([one_hot[y_train], uniform])
    return np.concatenate([x_train, outliers]), targets, one_hot[y_val], "categorical_crossentropy"


def augmented_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, aug: dict):
    """Shuffled batches (again each epoch) of (glyphs, targets), augmented (``training.data.augment``)."""
    return (
        tf.data.Dataset.from_tensor_slices((x[..., None], y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda a, b: (augment(a, **aug), b), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def publish(
    cfg: GlyphTraining, step: str, labels: list[str], best: keras.Model, training: dict, extra: dict | None = None
) -> Path:
    """Save the trained model with its meta.json (``cfg`` whole in ``training.config``) into its
    output folder, then evaluate it there (the figures go into the same meta.json)."""
    meta = {"name": cfg.task, "task": cfg.task, "version": "1", "architecture": cfg.arch} | (extra or {})
    meta |= {"labels": labels, "training": training | {"config": config_record(cfg)}, "metrics": {}}
    out = save_weights(best, cfg.out_dir, meta, step)
    print(f"saved {out}")
    evaluate_task(cfg.task, cfg.data_dir, weights_dir=out)
    return out


def save_weights(model: keras.Model, out_dir: Path, meta: dict, step: str | None = None) -> Path:
    """Write ``model.keras``, its ONNX export (what the server runs) and ``meta.json`` into
    ``out_dir`` (created if needed); ``step``: the ``training.<module>`` command that made it
    (None: a model the app trained, for a profile)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    serving = keras.Model.from_config(model.get_config())  # the same network, without optimizer state
    serving.set_weights(model.get_weights())
    serving.save(out_dir / "model.keras")
    exported = export_onnx(serving, out_dir)
    shape = {"input_shape": list(model.input_shape[1:]), "input_dtype": "uint8"}
    publish_meta(out_dir, shape | {"parameters": int(model.count_params())} | meta | {"onnx": exported}, step, "glyph")
    return out_dir
