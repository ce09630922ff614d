"""Train the digit model on MNIST: ``python -m training.train_digits --data-dir ../shared/data``.

Every MNIST image goes through ``models.preprocessing`` first, so the model learns from exactly what
the app feeds it. 5,000 training images (stratified) are held out for model selection; the official
test set is used only for the final figures, written into ``meta.json`` by ``training.evaluate``.
Interrupted runs resume from ``training/.checkpoints/<run-name>`` when started again.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.architectures import BUILDERS
from training.common import CHECKPOINTS, ROOT, command_line, save_weights, train_classifier
from training.datasets import digit_split, load_mnist, prepare

LABELS = list("0123456789")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir", type=Path, default=None, help="folder holding mnist/*.gz (default: download via Keras)"
    )
    p.add_argument("--arch", choices=sorted(BUILDERS), default="glyph_cnn", help="network builder")
    p.add_argument("--width", type=int, default=32, help="filters in the first block (glyph_cnn only)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs")
    p.add_argument("--batch-size", type=int, default=128, help="mini-batch size")
    p.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate")
    p.add_argument("--lr-decay", type=float, default=0.9, help="learning-rate factor per epoch")
    p.add_argument(
        "--val-size", type=int, default=5000, help="training images held out for model selection (at most 10%%)"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (split, init, shuffling)")
    p.add_argument("--out", type=Path, default=ROOT / "models" / "weights" / "digit", help="output folder")
    p.add_argument("--run-name", default=None, help="checkpoint folder name (default: digit-<arch>)")
    p.add_argument("--checkpoint-dir", type=Path, default=CHECKPOINTS, help="where runs keep resumable state")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    x_train, y_train, _, _ = load_mnist(args.data_dir)
    x_train = prepare(x_train)
    keep, val = digit_split(y_train, args.val_size, args.seed)
    data = {"x_train": x_train[keep], "y_train": y_train[keep], "x_val": x_train[val], "y_val": y_train[val]}
    kwargs = {"width": args.width} if args.arch == "glyph_cnn" else {}
    model = BUILDERS[args.arch](len(LABELS), **kwargs)
    run = args.run_name or f"digit-{args.arch}"
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
    )
    meta = {
        "name": "digit",
        "task": "digit",
        "version": "1",
        "architecture": args.arch,
        "labels": LABELS,
        "training": summary
        | {
            "val_size": args.val_size,
            "command": command_line("training.train_digits"),
            "data": f"MNIST train ({len(y_train):,}): {len(keep):,} train / {len(val):,} validation, "
            f"stratified, seed {args.seed}",
        },
        "metrics": {},
    }
    out = save_weights(best, args.out, meta)
    print(f"saved {out}")
    from training.evaluate import evaluate_task

    evaluate_task("digit", args.data_dir, weights_dir=out)


if __name__ == "__main__":
    main()
