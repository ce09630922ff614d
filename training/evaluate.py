"""Evaluate a shipped model on full test sets and record the figures in its ``meta.json``.

``python -m training.evaluate --task digit --data-dir ../shared/data`` measures, through the same
preprocessing and compiled forward pass the app serves with:
- the official MNIST test split (10,000 digits);
- real photographed pen-on-paper digits (``handwritten_chars62``, 1,000 PNG files read as uploads),
  which no training command uses.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import numpy as np

from models.decoding import group_confidence
from models.preprocessing import PreprocessError, glyph_from_bytes, side_by_side_pieces
from models.registry import TASK_WEIGHTS, WEIGHTS_DIR, Recognizer, load_recognizer
from training.common import command_line
from training.datasets import character_data, digit_split, load_mnist, prepare
from training.negatives import scribbles, side_by_side

GENUINE_FLAG_RATE = 0.03  # the "not sure" threshold flags this share of real validation glyphs


def probabilities(model: Recognizer, glyphs: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Class probabilities for (N, 28, 28) uint8 glyphs, in batches."""
    return np.concatenate([model.probabilities(glyphs[i : i + batch]) for i in range(0, len(glyphs), batch)])


def predict(model: Recognizer, glyphs: np.ndarray) -> np.ndarray:
    """Class ids for (N, 28, 28) uint8 glyphs."""
    return probabilities(model, glyphs).argmax(1)


def case_report(labels: list[str], y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Case-sensitive and case-insensitive accuracy, overall, on letters alone and on digits alone."""
    t = np.array([labels[i] for i in y_true])
    p = np.array([labels[i] for i in y_pred])
    same_ci = np.char.lower(t) == np.char.lower(p)
    letters = np.char.isalpha(t)
    report = accuracy_report(labels, y_true, y_pred)
    report |= {
        "accuracy_case_insensitive": round(float(same_ci.mean()), 5),
        "letters_accuracy": round(float((t == p)[letters].mean()), 5),
        "letters_accuracy_case_insensitive": round(float(same_ci[letters].mean()), 5),
        "digits_accuracy": round(float((t == p)[~letters].mean()), 5),
        "letters": int(letters.sum()),
    }
    return report


def measure_unsure(model: Recognizer, val: np.ndarray, test: np.ndarray, multi_source: np.ndarray) -> dict:
    """Choose the "not sure" confidence threshold on real validation glyphs and measure what it does
    on held-out test glyphs, random scribbles and several characters written side by side."""

    def conf(glyphs: np.ndarray) -> np.ndarray:
        return np.array([group_confidence(p, model.labels) for p in probabilities(model, glyphs)])

    def flagged(glyphs: np.ndarray, threshold: float, pieces: np.ndarray | None = None) -> float:
        if pieces is None:
            pieces = np.array([side_by_side_pieces(g.astype(np.float32) / 255) for g in glyphs])
        return round(float(((conf(glyphs) < threshold) | (pieces > 1)).mean()), 4)

    threshold = round(float(np.quantile(conf(val), GENUINE_FLAG_RATE)), 4)
    scrib = scribbles(300, seed=7)
    multi = side_by_side(multi_source, 300, seed=7)
    return {
        "threshold": threshold,
        "chosen_as": f"{GENUINE_FLAG_RATE:.0%} quantile of look-alike-group confidence on validation glyphs",
        "real_glyphs_flagged_test": flagged(test, threshold),
        "scribbles_flagged": flagged(
            np.stack([g.pixels for g in scrib]), threshold, np.array([g.pieces for g in scrib])
        ),
        "side_by_side_flagged": flagged(
            np.stack([g.pixels for g in multi]), threshold, np.array([g.pieces for g in multi])
        ),
        "samples": {"validation": len(val), "test": len(test), "scribbles": 300, "side_by_side": 300},
    }


def accuracy_report(labels: list[str], y_true: np.ndarray, y_pred: np.ndarray, top: int = 8) -> dict:
    """Accuracy, error count and the most frequent confusions (true -> predicted)."""
    wrong = y_true != y_pred
    pairs = Counter((labels[t], labels[p]) for t, p in zip(y_true[wrong], y_pred[wrong], strict=False))
    return {
        "accuracy": round(float(1 - wrong.mean()), 5),
        "errors": int(wrong.sum()),
        "samples": int(len(y_true)),
        "top_confusions": [{"true": t, "predicted": p, "count": n} for (t, p), n in pairs.most_common(top)],
    }


def chars62_files(data_dir: Path, alphabet: set[str]) -> list[tuple[Path, str]]:
    """(png path, label) of the photographed characters whose label is in ``alphabet``."""
    root = data_dir / "handwritten_chars62"
    rows = list(csv.DictReader(open(root / "labels.csv", newline="")))
    return [(root / "png" / r["file"], r["char"]) for r in rows if r["char"] in alphabet]


def evaluate_files(model: Recognizer, files: list[tuple[Path, str]]) -> dict:
    """Read each file through the upload path; unreadable files count as errors."""
    index = {c: i for i, c in enumerate(model.labels)}
    glyphs, y_true, unreadable = [], [], 0
    for path, label in files:
        try:
            glyphs.append(glyph_from_bytes(path.read_bytes()).pixels)
            y_true.append(index[label])
        except PreprocessError:
            unreadable += 1
    report = accuracy_report(model.labels, np.array(y_true), predict(model, np.stack(glyphs)))
    total = report["samples"] + unreadable
    report["accuracy"] = round((report["samples"] - report["errors"]) / total, 5)
    report |= {"samples": total, "unreadable": unreadable}
    return report


def evaluate_digit(model: Recognizer, data_dir: Path | None) -> dict:
    """MNIST test split, real photographed digits when the data folder has them, and "not sure"."""
    x_train, y_train, x_test, y_test = load_mnist(data_dir)
    train = model.meta.get("training", {})
    _, val = digit_split(y_train, train.get("val_size", 5000), train.get("seed", 1))
    test = prepare(x_test)
    metrics = {"mnist_test": accuracy_report(model.labels, y_test, predict(model, test))}
    if data_dir is not None and (Path(data_dir) / "handwritten_chars62").exists():
        metrics["chars62_photo_digits"] = evaluate_files(model, chars62_files(Path(data_dir), set(model.labels)))
    metrics["unsure"] = measure_unsure(model, prepare(x_train)[val], test, x_test)
    return metrics


def evaluate_character(model: Recognizer, data_dir: Path | None) -> dict:
    """The held-out EMNIST and photographed-character test parts, by case and by letters/digits."""
    sources = character_data(data_dir, model.meta.get("training", {}).get("seed", 1), mnist_extra=0)
    metrics = {}
    for name, part in sources.items():
        metrics[f"{name}_test"] = case_report(model.labels, part["y_test"], predict(model, part["x_test"]))
    val = np.concatenate([p["x_val"] for p in sources.values()])
    test = np.concatenate([p["x_test"] for p in sources.values()])
    metrics["unsure"] = measure_unsure(model, val, test, sources["emnist"]["x_test"])
    return metrics


EVALUATORS = {"digit": evaluate_digit, "character": evaluate_character}


def evaluate_task(task: str, data_dir: Path | None, weights_dir: Path | None = None, write: bool = True) -> dict:
    """Evaluate the model of ``task`` and (by default) record the figures in its meta.json."""
    weights_dir = weights_dir or WEIGHTS_DIR / TASK_WEIGHTS[task]
    model = load_recognizer(weights_dir, task)
    metrics = EVALUATORS[task](model, data_dir)
    for name, rep in metrics.items():
        if "accuracy" in rep:
            print(f"{task} {name}: accuracy {rep['accuracy']:.4%} ({rep['errors']} errors / {rep['samples']})")
    print(f"{task} not sure: {json.dumps(metrics['unsure'])}")
    if write:
        meta_path = weights_dir / "meta.json"
        meta = json.loads(meta_path.read_text())
        meta["unsure"] = metrics.pop("unsure")
        meta["metrics"] = metrics | {
            "evaluated_by": command_line("training.evaluate")
            if __name__ == "__main__"
            else f"python -m training.evaluate --task {task}" + (f" --data-dir {data_dir}" if data_dir else ""),
            "evaluated_on": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return metrics


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(EVALUATORS), default="digit", help="which model to evaluate")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with the datasets (default: download)")
    p.add_argument("--weights", type=Path, default=None, help="model folder (default: the shipped one)")
    p.add_argument("--no-write", action="store_true", help="print only; leave meta.json unchanged")
    args = p.parse_args(argv)
    evaluate_task(args.task, args.data_dir, args.weights, write=not args.no_write)


if __name__ == "__main__":
    main()
