"""Train the classical digit engine: ``python -m training.train_hog --data-dir ../shared/data``.

MNIST train digits go through the app's glyph preprocessing, then HOG features (scikit-image),
PCA and an RBF SVM with calibrated probabilities (or KNN with ``--classifier knn``), scikit-learn.
The official MNIST test split is measured at the end and written into ``meta.json``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.loading import hog_features, save_hog
from training.data.glyphs import load_mnist, prepare
from training.lib.hog_pipeline import fit
from training.provenance import ROOT, config_record, stamped

LABELS = list("0123456789")


@dataclass(frozen=True)
class HogTraining:
    """How the HOG engine is fitted; its meta.json keeps this whole (``training.config``)."""

    data_dir: Path | None = None  # folder holding mnist/*.gz (None: download)
    classifier: str = "svm"  # "svm" or "knn", on the HOG features
    components: int = 80  # PCA components kept
    seed: int = 1
    out: Path = ROOT / "models" / "weights" / "hog-digit"  # output folder


def parse_args(argv=None) -> HogTraining:
    d = HogTraining()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding mnist/*.gz (default: download)")
    p.add_argument("--classifier", choices=["svm", "knn"], default=d.classifier, help="the classifier on HOG features")
    p.add_argument("--components", type=int, default=d.components, help="PCA components kept")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--out", type=Path, default=d.out, help="output folder")
    return HogTraining(**vars(p.parse_args(argv)))


def train(cfg: HogTraining, x_train: np.ndarray, y_train: np.ndarray):
    """(the HOG pipeline fitted on the training digits through the glyph preprocessing, seconds it took)."""
    start = time.time()
    pipeline = fit(prepare(x_train), y_train.astype(str), cfg.classifier, cfg.components, cfg.seed)
    return pipeline, time.time() - start


def test_accuracy(pipeline, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy on the official MNIST test split, through the glyph preprocessing."""
    pred = pipeline.predict(hog_features(prepare(x_test)))
    return float((pred == y_test.astype(str)).mean())


def publish(cfg: HogTraining, pipeline, train_size: int, seconds: float, accuracy: float, test_size: int) -> None:
    """The pipeline and its meta.json (``cfg`` whole, the fit's time, the MNIST test figure) in ``cfg.out``."""
    meta = {
        "name": "hog-digit",
        "version": "1",
        "labels": LABELS,
        "classifier": cfg.classifier,
        "training": {
            "config": config_record(cfg),
            "data": f"MNIST train ({train_size:,})",
            "components": cfg.components,
            "seconds": round(seconds, 1),
        },
        "metrics": {"mnist_test": {"accuracy": round(accuracy, 5), "samples": test_size}},
    }
    save_hog(pipeline, cfg.out, stamped(meta, "training.train_hog", "glyph"))
    print(f"MNIST test accuracy {accuracy:.4f}; saved {cfg.out}")


def main(argv=None) -> None:
    cfg = parse_args(argv)
    x_train, y_train, x_test, y_test = load_mnist(cfg.data_dir)
    pipeline, seconds = train(cfg, x_train, y_train)
    accuracy = test_accuracy(pipeline, x_test, y_test)
    publish(cfg, pipeline, len(y_train), seconds, accuracy, len(y_test))


if __name__ == "__main__":
    main()
