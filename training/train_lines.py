"""Train the handwritten-line recogniser (CNN + 2 BiLSTM + CTC) on IAM-OnDB:
``python -m training.train_lines --data-dir ../shared/data``.

- Training lines (IAM-OnDB ``trainset``, 5,355 lines, writer-independent from the test sets) are
  rendered from their pen strokes with varied pen, scale, slant, skew, ink, paper, blur and noise
  (``training.data.lines``), a different rendering each epoch (``--variants`` cached renderings),
  then prepared by ``models.preprocessing.line_from_gray`` like any upload.
- Real scanned handwritten names (``names_words/``, block capitals cut from forms; files 1-800,
  ``--names-repeat`` times per epoch) teach it scans, capitals and printed form text to ignore;
  files 801-1000 stay held out for ``training.evaluate_lines``.
- 400 lines of ``testset_v`` (``val1``) select the best epoch by character error rate; its other
  1,038 lines join training (``--no-train-on-val-rest`` keeps them out). ``testset_f``, whose
  writers are in neither, is left for ``python -m training.evaluate_lines``.
- CTC loss is computed here only; the saved model is the serving graph with its ``charset.txt``.
- Resumable: the model, optimiser and epoch are checkpointed under
  ``training/.checkpoints/<run>/`` after every epoch; run the same command again to continue.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from models.architectures import build_crnn
from models.decoding.ctc import error_rates, greedy
from models.errors import PreprocessError
from models.files import read_json, write_json
from models.preprocessing import LINE_HEIGHT, line_from_gray
from training.data.lines import (
    NAMES,
    Lines,
    load_iam_offline,
    load_iam_ondb,
    load_names_words,
    strips,
    validation_lines,
)
from training.lib.keras_to_onnx import export_onnx
from training.lib.loop import CHECKPOINTS
from training.provenance import ROOT, config_record, publish_meta


@dataclass(frozen=True)
class LinesConfig:
    """What one line-model run is made of; ``meta.json`` keeps it whole (``training.config``)."""

    data_dir: Path  # folder holding iam_ondb_lines/ (and names_words/ for the scanned names)
    epochs: int = 40  # training epochs
    batch_size: int = 16  # lines per batch
    lr: float = 1e-3  # initial Adam learning rate
    lr_decay: float = 0.92  # learning-rate factor per epoch
    average: int = 5  # at the end, also try the mean weights of the last N epochs
    width: int = 32  # filters of the first convolution
    lstm: int = 128  # units per LSTM direction
    variants: int = 6  # distinct augmented renderings of each line
    names_repeat: int = 3  # times per epoch the scanned names are seen (0: none)
    val_lines: int = 400  # validation lines decoded after each epoch
    train_on_val_rest: bool = True  # the testset_v lines not used for validation train too
    iam_offline: Path | None = None  # the IAM offline database, if you have it
    seed: int = 1  # random seed
    run_name: str = "line-crnn"  # checkpoint folder name: a run of the same name resumes
    out: Path = ROOT / "models" / "weights" / "line"  # the folder written


def parse_args(argv=None) -> LinesConfig:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder holding iam_ondb_lines/")
    p.add_argument("--epochs", type=int, default=40, help="training epochs")
    p.add_argument("--batch-size", type=int, default=16, help="lines per batch")
    p.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate")
    p.add_argument("--lr-decay", type=float, default=0.92, help="learning-rate factor per epoch")
    p.add_argument(
        "--average",
        type=int,
        default=5,
        help="at the end, also try the mean weights of the last N epochs and keep them if they validate better",
    )
    p.add_argument("--width", type=int, default=32, help="filters of the first convolution")
    p.add_argument("--lstm", type=int, default=128, help="units per LSTM direction")
    p.add_argument("--variants", type=int, default=6, help="distinct augmented renderings of each line")
    p.add_argument("--names-repeat", type=int, default=3, help="times per epoch the scanned names are seen (0: none)")
    p.add_argument("--val-lines", type=int, default=400, help="validation lines decoded after each epoch")
    p.add_argument(
        "--no-train-on-val-rest",
        dest="train_on_val_rest",
        action="store_false",
        help="keep the testset_v lines not used for validation out of training",
    )
    p.add_argument(
        "--iam-offline",
        type=Path,
        default=None,
        help="also train on the IAM offline database (folder with lines.txt and lines/), if you have it",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--run-name", default="line-crnn", help="checkpoint folder name")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "weights" / "line", help="output folder")
    return LinesConfig(**vars(p.parse_args(argv)))


def charset_of(texts: list[str]) -> str:
    """Every character of the training transcriptions, sorted (the blank is added after them)."""
    return "".join(sorted(set("".join(texts))))


def offline_strips(root: Path) -> tuple[list[np.ndarray], list[str]]:
    """The IAM offline lines (``training.data.lines.load_iam_offline``), prepared like uploads."""

    def read(path: Path) -> np.ndarray:
        return np.asarray(Image.open(path).convert("L"), np.float32) / 255.0

    xs, ys = prepared((lambda p=path: read(p), text) for path, text in load_iam_offline(root))
    print(f"IAM offline: {len(xs)} lines from {root}", flush=True)
    return xs, ys


def names_strips(data_dir: Path) -> tuple[list[np.ndarray], list[str]]:
    """The training part of the scanned names, prepared like uploads."""
    if not (Path(data_dir) / NAMES).exists():
        return [], []
    grays, texts = load_names_words(data_dir, "train")
    xs, ys = prepared((lambda g=gray: g, text) for gray, text in zip(grays, texts, strict=True))
    print(f"scanned names: {len(xs)} for training", flush=True)
    return xs, ys


def prepared(items) -> tuple[list[np.ndarray], list[str]]:
    """(strip, text) of every (image loader, text) whose image opens, has ink, and is wide enough
    for CTC to spell its text."""
    xs, ys = [], []
    for load, text in items:
        try:
            strip = line_from_gray(load())
        except (OSError, PreprocessError):
            continue
        if strip.shape[1] // 4 >= ctc_length(text):
            xs.append(strip)
            ys.append(text)
    return xs, ys


def grow_charset(model, old_model, old: str, new: str) -> None:
    """Copy ``old_model``'s weights into ``model``, whose charset ``new`` adds characters to
    ``old``: the output layer keeps each old character's weights (and the blank's); new
    characters start from the layer's fresh initialisation."""
    for layer, old_layer in zip(model.layers, old_model.layers, strict=True):
        if layer.name != "chars":
            layer.set_weights(old_layer.get_weights())
            continue
        kernel, bias = layer.get_weights()
        old_kernel, old_bias = old_layer.get_weights()
        columns = [new.index(c) for c in old] + [len(new)]  # the blank is last in both
        kernel[:, columns], bias[columns] = old_kernel, old_bias
        layer.set_weights([kernel, bias])


def ctc_length(text: str) -> int:
    """The fewest output columns CTC needs for ``text``: one per character, plus a blank between
    doubled letters."""
    return len(text) + sum(a == b for a, b in zip(text, text[1:], strict=False))


def batches(images: list[np.ndarray], labels: list[list[int]], size: int, rng: np.random.Generator):
    """Batches of similar width (little padding), in random order: (x, widths, y, y_lengths)."""
    order = np.argsort([im.shape[1] for im in images], kind="stable")
    groups = [order[i : i + size] for i in range(0, len(order), size)]
    rng.shuffle(groups)
    for g in groups:
        w = max(images[i].shape[1] for i in g)
        x = np.zeros((len(g), LINE_HEIGHT, w, 1), np.uint8)
        for k, i in enumerate(g):
            x[k, :, : images[i].shape[1], 0] = images[i]
        lab = max(len(labels[i]) for i in g)
        y = np.zeros((len(g), lab), np.int32)
        for k, i in enumerate(g):
            y[k, : len(labels[i])] = labels[i]
        yield x, np.array([images[i].shape[1] for i in g], np.int32), y, np.array([len(labels[i]) for i in g], np.int32)


@dataclass
class LineData:
    """The lines of one run: training parts, the validation strips, extra strips, the charset."""

    train: Lines  # IAM-OnDB trainset
    val_rest: Lines  # the testset_v lines not used for validation (empty unless they train)
    val: tuple[list[np.ndarray], list[str]]  # validation strips and texts
    extra_x: list[np.ndarray]  # ready strips that train every epoch (IAM offline, scanned names)
    extra_y: list[str]
    names: int  # how many of the extra strips are scanned names (before repeating)
    charset: str

    def counts(self, cfg: LinesConfig) -> dict:
        """What ``meta.json`` records of the data."""
        return {
            "iam_ondb_trainset": len(self.train.texts),
            "iam_ondb_testset_v_rest": len(self.val_rest.texts),
            "iam_ondb_testset_v_validation": len(self.val[1]),
            "scanned_names": self.names,
            "iam_offline": len(self.extra_y) - self.names * cfg.names_repeat,
        }


def assemble(cfg: LinesConfig, rng: np.random.Generator) -> LineData:
    """Phase 1: the training and validation lines, and the charset they need."""
    train, val = load_iam_ondb(cfg.data_dir, "train"), load_iam_ondb(cfg.data_dir, "val1")
    extra_x, extra_y = offline_strips(cfg.iam_offline) if cfg.iam_offline else ([], [])
    names_x, names_y = names_strips(cfg.data_dir) if cfg.names_repeat else ([], [])
    extra_x, extra_y = extra_x + names_x * cfg.names_repeat, extra_y + names_y * cfg.names_repeat
    pick = validation_lines(val.ids, cfg.val_lines, rng)
    val_strips = strips(val, None)
    val_x = [val_strips[i] for i in pick if val_strips[i] is not None]
    val_y = [val.texts[i] for i in pick if val_strips[i] is not None]
    # The rest of testset_v trains too (its writers are in neither test set, and its forms are not
    # among the validation lines'); lines with characters outside the charset (a rare * or ]) are
    # left out of it.
    rest = sorted(set(range(len(val.texts))) - set(pick)) if cfg.train_on_val_rest else []
    val_rest = Lines([val.strokes[i] for i in rest], [val.texts[i] for i in rest], [val.ids[i] for i in rest])
    if rest:
        print(f"testset_v: {len(pick)} lines validate, {len(rest)} more join training", flush=True)
    charset = charset_of(train.texts + extra_y)
    return LineData(train, val_rest, (val_x, val_y), extra_x, extra_y, len(names_y), charset)


@dataclass
class Run:
    """The model being trained, its optimizer and the checkpoint it resumes from."""

    model: Any
    optimizer: Any
    epoch: Any  # a tf.Variable: epochs done
    manager: Any  # tf.train.CheckpointManager
    folder: Path  # the checkpoint folder


def restore(cfg: LinesConfig, data: LineData) -> Run:
    """Phase 2: a fresh model, or the run of the same name resumed (its charset grown to the data's)."""
    ckpt_dir = CHECKPOINTS / cfg.run_name
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    model = build_crnn(len(data.charset), cfg.width, cfg.lstm)
    optimizer = keras.optimizers.Adam(cfg.lr, clipnorm=5.0)
    epoch_var = tf.Variable(0, dtype=tf.int64, name="epoch")
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_var)
    manager = tf.train.CheckpointManager(ckpt, str(ckpt_dir / "state"), max_to_keep=2)
    charset_path = ckpt_dir / "charset.txt"
    # Runs from before charset.txt was kept here trained on the IAM-OnDB characters alone.
    saved = charset_path.read_text(encoding="utf-8") if charset_path.exists() else charset_of(data.train.texts)
    if manager.latest_checkpoint and saved != data.charset:
        if set(saved) - set(data.charset):
            sys.exit(f"{ckpt_dir} was trained on characters this data lacks; use another --run-name.")
        old_model = build_crnn(len(saved), cfg.width, cfg.lstm)
        tf.train.Checkpoint(model=old_model, epoch=epoch_var).restore(manager.latest_checkpoint).expect_partial()
        grow_charset(model, old_model, saved, data.charset)
        added = "".join(sorted(set(data.charset) - set(saved)))
        print(
            f"resumed from {manager.latest_checkpoint} (epoch {int(epoch_var.numpy())} done), adding {added!r}"
            " to the charset",
            flush=True,
        )
    elif manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        print(f"resumed from {manager.latest_checkpoint} (epoch {int(epoch_var.numpy())} done)", flush=True)
    charset_path.write_text(data.charset, encoding="utf-8")
    return Run(model, optimizer, epoch_var, manager, ckpt_dir)


def compiled(run: Run):
    """The training step (CTC loss, one graph for every batch shape) and the forward pass."""
    model, optimizer = run.model, run.optimizer
    spec = [
        tf.TensorSpec([None, LINE_HEIGHT, None, 1], tf.uint8),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None], tf.int32),
    ]

    @tf.function(input_signature=spec)
    def step(x, widths, y, y_len):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            logits = tf.math.log(tf.maximum(probs, 1e-9))
            loss = tf.reduce_mean(
                tf.nn.ctc_loss(y, logits, y_len, widths // 4, logits_time_major=False, blank_index=-1)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    return step, tf.function(lambda x: model(x, training=False), input_signature=spec[:1])


def epoch_examples(cfg: LinesConfig, data: LineData, epoch: int) -> tuple[list[np.ndarray], list[list[int]]]:
    """This epoch's strips (one of ``variants`` augmented renderings of each line) and targets."""
    index = {c: i for i, c in enumerate(data.charset)}
    images, targets = [], []
    for part in (data.train, data.val_rest) if data.val_rest.texts else (data.train,):
        variant = strips(part, seed=cfg.seed * 1000 + epoch % cfg.variants)
        for s, text in zip(variant, part.texts, strict=True):
            if s is not None and s.shape[1] // 4 >= ctc_length(text) and all(c in index for c in text):
                images.append(s)
                targets.append([index[c] for c in text])
    return images + data.extra_x, targets + [[index[c] for c in t] for t in data.extra_y]


def train_epoch(cfg: LinesConfig, data: LineData, run: Run, step, rng: np.random.Generator) -> list[float]:
    """Phase 3, once per epoch: every batch through the step; the losses."""
    epoch = int(run.epoch.numpy())
    run.optimizer.learning_rate.assign(cfg.lr * cfg.lr_decay**epoch)
    images, targets = epoch_examples(cfg, data, epoch)
    start, losses = time.time(), []
    total = (len(images) + cfg.batch_size - 1) // cfg.batch_size
    for n, (x, widths, y, y_len) in enumerate(batches(images, targets, cfg.batch_size, rng), 1):
        losses.append(float(step(x, widths, y, y_len)))
        if n % 50 == 0 or n == total:
            rate = n / (time.time() - start)
            print(
                f"  epoch {epoch + 1} batch {n}/{total} loss {np.mean(losses[-50:]):.3f} "
                f"({(total - n) / rate:.0f} s left)",
                flush=True,
            )
    return losses


def end_epoch(
    cfg: LinesConfig, data: LineData, run: Run, forward, losses: list[float], seconds: float, best: dict
) -> dict:
    """Validate, checkpoint, log the epoch; keep it as the best model when it validates best."""
    epoch = int(run.epoch.numpy())
    rates = validate(forward, data.val, data.charset)
    run.epoch.assign_add(1)
    run.manager.save()
    keep_epoch_weights(run.model, run.folder / "epochs", epoch + 1, cfg.average)
    with open(run.folder / "log.csv", "a", newline="") as f:
        row = [epoch + 1, round(float(np.mean(losses)), 4), round(rates["cer"], 4), round(rates["wer"], 4)]
        csv.writer(f).writerow([*row, cfg.lr * cfg.lr_decay**epoch, round(seconds)])
    print(
        f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, val CER {rates['cer']:.2%}, WER {rates['wer']:.2%} "
        f"({seconds:.0f} s)",
        flush=True,
    )
    if rates["cer"] >= best["cer"]:
        return best
    run.model.save(run.folder / "best.keras")
    best = {"cer": rates["cer"], "wer": rates["wer"], "epoch": epoch + 1}
    write_json(run.folder / "best.json", best)
    return best


def main(argv=None) -> None:
    cfg = parse_args(argv)
    rng = np.random.default_rng(cfg.seed)
    data = assemble(cfg, rng)
    run = restore(cfg, data)
    step, forward = compiled(run)
    best = train_epochs(cfg, data, run, step, forward, rng)
    if cfg.average > 1:
        best = try_average(run.model, forward, run.folder, cfg.average, best, data.val, data.charset)
    publish(cfg, data.charset, run.folder, best, data.counts(cfg))


def train_epochs(cfg: LinesConfig, data: LineData, run: Run, step, forward, rng: np.random.Generator) -> dict:
    """The epochs left to this run (a resumed run goes on from its checkpoint), each validated;
    the best epoch's figures (``best.json``, kept with the checkpoint)."""
    best_path = run.folder / "best.json"
    best = read_json(best_path) if best_path.exists() else {"cer": 9.9}
    while int(run.epoch.numpy()) < cfg.epochs:
        start = time.time()
        losses = train_epoch(cfg, data, run, step, rng)
        best = end_epoch(cfg, data, run, forward, losses, time.time() - start, best)
    return best


def validate(forward, val: tuple[list[np.ndarray], list[str]], charset: str) -> dict[str, float]:
    """Greedy CER and WER of the model behind ``forward`` on the validation (strips, texts)."""
    images, texts = val
    return error_rates(texts, [greedy(forward(s[None, ..., None]).numpy()[0], charset) for s in images])


def keep_epoch_weights(model, folder: Path, epoch: int, keep: int) -> None:
    """Save this epoch's weights and drop all but the last ``keep``."""
    if keep < 2:
        return
    folder.mkdir(exist_ok=True)
    model.save_weights(folder / f"epoch-{epoch:03d}.weights.h5")
    for old in sorted(folder.glob("epoch-*.weights.h5"))[:-keep]:
        old.unlink()


def try_average(model, forward, ckpt_dir: Path, count: int, best: dict, val: tuple, charset: str) -> dict:
    """Average the weights of the last ``count`` epochs (late in a decaying schedule they lie in one
    valley, and their mean usually generalises better than any of them); keep it as the best model
    when it validates better."""

    files = sorted((ckpt_dir / "epochs").glob("epoch-*.weights.h5"))[-count:]
    if len(files) < 2:
        return best
    sums = None
    for path in files:
        model.load_weights(path)
        weights = model.get_weights()
        sums = weights if sums is None else [a + b for a, b in zip(sums, weights, strict=True)]
    model.set_weights([w / len(files) for w in sums])
    rates = validate(forward, val, charset)
    epochs = [int(p.name[6:9]) for p in files]
    print(
        f"mean of epochs {epochs[0]}-{epochs[-1]}: val CER {rates['cer']:.2%} (best single epoch {best['cer']:.2%})",
        flush=True,
    )
    if rates["cer"] >= best["cer"]:
        return best
    best = {"cer": rates["cer"], "wer": rates["wer"], "epoch": epochs[-1], "averaged_epochs": epochs}
    model.save(ckpt_dir / "best.keras")
    write_json(ckpt_dir / "best.json", best)
    return best


def publish(cfg: LinesConfig, charset: str, ckpt_dir: Path, best: dict, data: dict) -> None:
    """Copy the best epoch's serving model with its charset and meta.json into ``--out``."""
    model = keras.models.load_model(ckpt_dir / "best.keras", compile=False)
    cfg.out.mkdir(parents=True, exist_ok=True)
    model.save(cfg.out / "model.keras")
    exported = export_onnx(model, cfg.out)
    (cfg.out / "charset.txt").write_text(charset, encoding="utf-8")
    meta = {
        "name": "line",
        "task": "line",
        "version": "1",
        "architecture": "crnn",
        "input_shape": [LINE_HEIGHT, None, 1],
        "labels": list(charset),
        "parameters": int(model.count_params()),
        "training": {
            "best_epoch": best["epoch"],
            "averaged_epochs": best.get("averaged_epochs"),
            "val1_cer": round(best["cer"], 4),
            "val1_wer": round(best["wer"], 4),
            "epochs": cfg.epochs,
            "lines": data,
            "names_repeat": cfg.names_repeat,
            "lr": cfg.lr,
            "lr_decay": cfg.lr_decay,
            "variants": cfg.variants,
            "seed": cfg.seed,
            "config": config_record(cfg),
        },
        "metrics": {},
        "onnx": exported,
    }
    publish_meta(cfg.out, meta, "training.train_lines", "line")
    print(f"saved {cfg.out} (best epoch {best['epoch']}, val CER {best['cer']:.2%})")


if __name__ == "__main__":
    sys.exit(main())
