"""Train the glyph gate: is this picture one handwritten character at all?
``python -m training.train_glyph_gate --data-dir ../shared/data``.

The digit and character models answer with a class; the gate answers "a character" or "not one":
a scribble, or several characters run together. It lets "not sure" catch such input without
lowering the recognisers' confidence threshold, so real characters read right are rarely flagged
(outlier exposure inside the digit model cost it accuracy: 99.51% on MNIST test against 99.74%).

- Characters: MNIST training digits (the digit model's own training part) and the EMNIST ByClass
  training part (``training.datasets.character_data``), through the app's glyph path; some of them
  again as phone photos (small, off-centre, on uneven paper, blurred, JPEG); and the *letters* of
  the photographed characters' training part (the photographed digits stay unseen: the digit
  model's photo figures are measured on all of them).
- Not characters: scribbles and 2-3 characters run together or side by side
  (``training.negatives``), from seeds ``training.evaluate`` never measures with.
- Validation: the digit and character models' validation glyphs and other-seed negatives; the
  threshold flags at most ``FLAG_RATE`` of the validation characters. The photographed characters
  and every test part stay out, so ``training.evaluate`` measures the gate on them honestly.

Writes ``models/weights/glyph-gate/`` (``model.keras`` + ``meta.json``: labels, threshold, figures).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from models.registry import WEIGHTS_DIR
from models.timestamps import utc_stamp
from training.augment import photographed
from training.common import CHECKPOINTS, save_weights, train_classifier
from training.datasets import character_data, digit_split, load_mnist, prepare
from training.negatives import scribbles, side_by_side
from training.provenance import command_line

# the gate's threshold flags this share of real validation characters. At 0.1% the digit model's
# "not sure" caught 85% of scribbles; at 0.2%, 91% (0.24% of MNIST test digits read right flagged)
FLAG_RATE = 0.002
LABELS = ["other", "character"]


def negatives(glyphs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Half scribbles, a quarter run together (overlapping), a quarter side by side with gaps."""
    made = (
        scribbles(n // 2, seed=seed)
        + side_by_side(glyphs, n // 4, seed=seed, gap=(-3, 3))
        + side_by_side(glyphs, n - n // 2 - n // 4, seed=seed + 1, gap=(3, 9))
    )
    return np.stack([g.pixels for g in made])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder with mnist/ and emnist/")
    p.add_argument("--characters", type=int, default=40_000, help="characters from each of MNIST and EMNIST")
    p.add_argument("--photos", type=int, default=12_000, help="characters also drawn as phone photos")
    p.add_argument("--others", type=int, default=20_000, help="scribbles and run-together characters")
    p.add_argument("--epochs", type=int, default=4, help="training epochs")
    p.add_argument("--width", type=int, default=16, help="filters in the first block of the glyph_cnn")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR / "glyph-gate", help="output folder")
    p.add_argument("--run-name", default="glyph-gate", help="checkpoint folder name")
    p.add_argument("--threshold-only", action="store_true", help="keep the model in --out; choose its threshold again")
    return p.parse_args(argv)


def main(argv=None) -> None:
    from models.architectures import build_glyph_cnn
    from models.registry import load_recognizer
    from training.evaluate import probabilities

    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    x_mnist, y_mnist, _, _ = load_mnist(args.data_dir)
    keep, val = digit_split(y_mnist, 5000, args.seed)  # the digit model's split
    x_mnist = prepare(x_mnist)
    sources = character_data(args.data_dir, args.seed, mnist_extra=0)  # the character model's split
    emnist, chars62 = sources["emnist"], sources.get("chars62")
    val_chars = np.concatenate([x_mnist[val], emnist["x_val"], photographed(x_mnist[val][:2000], 400 + args.seed)])
    val_others = negatives(np.concatenate([x_mnist[val], emnist["x_val"]]), 1200, seed=300 + args.seed)
    if args.threshold_only:
        out = args.out
    else:
        pick = lambda x, n=args.characters: x[rng.choice(len(x), min(n, len(x)), replace=False)]  # noqa: E731
        chars = [pick(x_mnist[keep]), pick(emnist["x_train"])]
        half = args.photos // 2
        to_photo = np.concatenate([pick(x_mnist[keep], half), pick(emnist["x_train"], half)])
        chars.append(photographed(to_photo, 200 + args.seed))
        if chars62 is not None:
            chars.append(np.repeat(chars62["x_train"][chars62["y_train"] >= 10], 3, axis=0))  # letters only
        chars = np.concatenate(chars)
        others = negatives(np.concatenate([x_mnist[keep], emnist["x_train"]]), args.others, seed=100 + args.seed)
        data = {
            "x_train": np.concatenate([chars, others]),
            "y_train": np.concatenate([np.ones(len(chars), int), np.zeros(len(others), int)]),
            "x_val": np.concatenate([val_chars, val_others]),
            "y_val": np.concatenate([np.ones(len(val_chars), int), np.zeros(len(val_others), int)]),
        }
        print(f"characters {len(chars)}, others {len(others)}; validation {len(val_chars)} / {len(val_others)}")
        model = build_glyph_cnn(2, width=args.width, dropout=0.3)
        best, summary = train_classifier(model, data, args.run_name, args.epochs, 128, 1e-3, 0.8, args.seed,
                                         augment_kwargs={"max_deg": 10.0, "max_shear": 0.2},
                                         checkpoint_root=CHECKPOINTS)  # fmt: skip
        meta = {"name": "glyph-gate", "task": "glyph-gate", "version": "1", "architecture": "glyph_cnn",
                "width": args.width, "labels": LABELS,
                "training": summary | {"command": command_line("training.train_glyph_gate"),
                                       "data": {"characters": len(chars), "others": len(others)}}}  # fmt: skip
        out = save_weights(best, args.out, meta)
    gate = load_recognizer(out)
    p_val = probabilities(gate, val_chars)[:, 1]
    threshold = round(float(np.quantile(p_val, FLAG_RATE)), 4)
    p_other = probabilities(gate, val_others)[:, 1]
    meta = json.loads((out / "meta.json").read_text())
    meta["threshold"] = threshold
    meta["validation"] = {
        "chosen_as": f"flags {FLAG_RATE:.1%} of the validation characters (MNIST and EMNIST validation "
        "parts, and 2,000 MNIST validation digits as phone photos)",
        "characters_flagged": round(float((p_val < threshold).mean()), 5),
        "others_flagged": round(float((p_other < threshold).mean()), 4),
        "samples": {"characters": len(val_chars), "others": len(val_others)},
        "measured_on": utc_stamp(),
        "command": command_line("training.train_glyph_gate"),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta["validation"]))


if __name__ == "__main__":
    main()
