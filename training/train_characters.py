"""Train the 62-class character model (0-9 A-Z a-z, EMNIST ByClass order):
``python -m training.train_characters --data-dir ../shared/data``.

Sources (see ``training.datasets.character_data``): EMNIST ByClass, the photographed
``handwritten_chars62`` characters and some MNIST digits, every image through the app's own glyph
path. Test parts are kept out of training and model selection; ``training.evaluate --task
character`` measures them. Interrupted runs resume from their checkpoint folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.architectures import BUILDERS
from training.common import CHECKPOINTS, ROOT, command_line, save_weights, train_classifier
from training.datasets import CHARSET62, character_data
from training.negatives import scribbles, side_by_side

LABELS = list(CHARSET62)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=None, help="folder with emnist/, handwritten_chars62/, mnist/")
    p.add_argument("--arch", choices=sorted(BUILDERS), default="glyph_cnn", help="network builder")
    p.add_argument("--width", type=int, default=32, help="filters in the first block (glyph_cnn only)")
    p.add_argument("--epochs", type=int, default=20, help="training epochs")
    p.add_argument("--batch-size", type=int, default=128, help="mini-batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate")
    p.add_argument("--lr-decay", type=float, default=0.85, help="learning-rate factor per epoch")
    p.add_argument("--mnist-extra", type=int, default=20_000, help="MNIST training digits added (0: none)")
    p.add_argument(
        "--outliers", type=int, default=6000, help="scribbles + run-together characters trained to a uniform answer"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (splits, init, shuffling)")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "weights" / "character", help="output folder")
    p.add_argument("--run-name", default=None, help="checkpoint folder name (default: character-<arch>)")
    p.add_argument("--checkpoint-dir", type=Path, default=CHECKPOINTS, help="where runs keep resumable state")
    return p.parse_args(argv)


def make_outliers(glyphs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Two thirds scribbles, one third run-together characters from the training part, through the
    glyph path (seeds differ from the ones ``training.evaluate`` measures with)."""
    if n <= 0:
        return np.zeros((0, 28, 28), np.uint8)
    made = scribbles(n - n // 3, seed=100 + seed) + side_by_side(glyphs, n // 3, seed=100 + seed, gap=(-3, 3))
    return np.stack([g.pixels for g in made])


def main(argv=None) -> None:
    args = parse_args(argv)
    sources = character_data(args.data_dir, args.seed, args.mnist_extra)
    data = {
        "x_train": np.concatenate([s["x_train"] for s in sources.values()]),
        "y_train": np.concatenate([s["y_train"] for s in sources.values()]),
        "x_val": np.concatenate([s["x_val"] for s in sources.values() if "x_val" in s]),
        "y_val": np.concatenate([s["y_val"] for s in sources.values() if "y_val" in s]),
    }
    outliers = make_outliers(sources["emnist"]["x_train"], args.outliers, args.seed)
    kwargs = {"width": args.width} if args.arch == "glyph_cnn" else {}
    model = BUILDERS[args.arch](len(LABELS), **kwargs)
    run = args.run_name or f"character-{args.arch}"
    best, summary = train_classifier(
        model,
        data,
        run,
        args.epochs,
        args.batch_size,
        args.lr,
        args.lr_decay,
        args.seed,
        checkpoint_root=args.checkpoint_dir,
        outliers=outliers,
    )
    sizes = {name: {k[2:]: len(v) for k, v in s.items() if k.startswith("y_")} for name, s in sources.items()}
    meta = {
        "name": "character",
        "task": "character",
        "version": "1",
        "architecture": args.arch,
        "width": args.width,
        "labels": LABELS,
        "training": summary | {"command": command_line("training.train_characters"), "data": sizes},
        "metrics": {},
    }
    out = save_weights(best, args.out, meta)
    print(f"saved {out}")
    from training.evaluate import evaluate_task

    evaluate_task("character", args.data_dir, weights_dir=out)


if __name__ == "__main__":
    main()
