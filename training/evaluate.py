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

from models.preprocessing import PreprocessError, glyph_from_bytes
from models.registry import TASK_WEIGHTS, WEIGHTS_DIR, Recognizer, load_recognizer
from training.common import command_line
from training.datasets import load_mnist, prepare


def predict(model: Recognizer, glyphs: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Class ids for (N, 28, 28) uint8 glyphs."""
    return np.concatenate([model.probabilities(glyphs[i : i + batch]).argmax(1) for i in range(0, len(glyphs), batch)])


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
    """MNIST test split, and real photographed digits when the data folder has them."""
    _, _, x_test, y_test = load_mnist(data_dir)
    metrics = {"mnist_test": accuracy_report(model.labels, y_test, predict(model, prepare(x_test)))}
    if data_dir is not None and (Path(data_dir) / "handwritten_chars62").exists():
        metrics["chars62_photo_digits"] = evaluate_files(model, chars62_files(Path(data_dir), set(model.labels)))
    return metrics


EVALUATORS = {"digit": evaluate_digit}


def evaluate_task(task: str, data_dir: Path | None, weights_dir: Path | None = None, write: bool = True) -> dict:
    """Evaluate the model of ``task`` and (by default) record the figures in its meta.json."""
    weights_dir = weights_dir or WEIGHTS_DIR / TASK_WEIGHTS[task]
    model = load_recognizer(weights_dir, task)
    metrics = EVALUATORS[task](model, data_dir)
    for name, rep in metrics.items():
        print(f"{task} {name}: accuracy {rep['accuracy']:.4%} ({rep['errors']} errors / {rep['samples']})")
    if write:
        meta_path = weights_dir / "meta.json"
        meta = json.loads(meta_path.read_text())
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
