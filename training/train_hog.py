"""Train the classical digit engine: ``python -m training.train_hog --data-dir ../shared/data``.

MNIST train digits go through the app's glyph preprocessing, then HOG features (scikit-image),
PCA and an RBF SVM with calibrated probabilities (or KNN with ``--classifier knn``), scikit-learn.
The official MNIST test split is measured at the end and written into ``meta.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from models.hog import hog_features, save_hog
from models.timestamps import utc_stamp
from training.data.glyphs import load_mnist, prepare
from training.hog_pipeline import fit
from training.provenance import ROOT, command_line

LABELS = list("0123456789")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=None, help="folder holding mnist/*.gz (default: download)")
    p.add_argument("--classifier", choices=["svm", "knn"], default="svm", help="the classifier on HOG features")
    p.add_argument("--components", type=int, default=80, help="PCA components kept")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "weights" / "hog-digit", help="output folder")
    args = p.parse_args(argv)
    x_train, y_train, x_test, y_test = load_mnist(args.data_dir)
    start = time.time()
    pipeline = fit(prepare(x_train), y_train.astype(str), args.classifier, args.components, args.seed)
    seconds = time.time() - start
    test = prepare(x_test)
    pred = pipeline.predict(hog_features(test))
    accuracy = float((pred == y_test.astype(str)).mean())
    meta = {
        "name": "hog-digit",
        "version": "1",
        "labels": LABELS,
        "classifier": args.classifier,
        "trained_on": utc_stamp(),
        "training": {
            "command": command_line("training.train_hog"),
            "data": f"MNIST train ({len(y_train):,})",
            "components": args.components,
            "seconds": round(seconds, 1),
        },
        "metrics": {"mnist_test": {"accuracy": round(accuracy, 5), "samples": len(y_test)}},
    }
    save_hog(pipeline, args.out, meta)
    print(f"MNIST test accuracy {accuracy:.4f}; saved {args.out}")


if __name__ == "__main__":
    main()
