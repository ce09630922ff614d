"""The base data a taught profile needs, shipped beside the weights so that teaching works on a
fresh clone with no dataset: ``python -m training.personal_data --data-dir ../shared/data``.

For each glyph task it writes ``models/weights/personal-base/<task>.npz`` with
- ``replay_x``/``replay_y``: a class-balanced sample of the base model's *training* data. It is
  replayed when a personal head is trained (so nothing else gets worse), and its samples of a
  taught character are the writer classifier's "standard" examples;
- ``guard_x``/``guard_y``: a random sample of the base model's *test* split (natural class mix).
  A personal model is promoted only if it reads these no worse than the base model.
Every image goes through ``models.preprocessing`` like served input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from models.loading import write_meta
from models.preprocessing import PREPROCESSING_VERSION
from training.data.glyphs import CHARSET62, EMNIST_NPZ, _find, load_mnist, prepare, three_way_split
from training.provenance import ROOT, command_line

OUT = ROOT / "models" / "weights" / "personal-base"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder with mnist/ and emnist/ (see ../shared/data)")
    p.add_argument("--out", type=Path, default=OUT, help="output folder")
    p.add_argument("--replay-per-class", type=int, default=200, help="digit task: training samples per class")
    p.add_argument("--char-replay-per-class", type=int, default=48, help="character task: training samples per class")
    p.add_argument("--guard", type=int, default=2000, help="test-split samples per task for the promotion check")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    return p.parse_args(argv)


def balanced(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to ``per_class`` random samples of every class, sorted."""
    picks = [
        rng.choice(np.flatnonzero(y == c), min(per_class, int((y == c).sum())), replace=False) for c in np.unique(y)
    ]
    return np.sort(np.concatenate(picks))


def digit_base(data_dir: Path, args: argparse.Namespace, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """MNIST train (replay) and MNIST test (guard), the digit model's own splits."""
    x_train, y_train, x_test, y_test = load_mnist(data_dir)
    r = balanced(y_train, args.replay_per_class, rng)
    g = np.sort(rng.choice(len(y_test), args.guard, replace=False))
    return {
        "replay_x": prepare(x_train[r]),
        "replay_y": y_train[r],
        "guard_x": prepare(x_test[g]),
        "guard_y": y_test[g],
    }


def character_base(data_dir: Path, args: argparse.Namespace, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The EMNIST parts the character model trained and was tested on (the split of
    ``training.data.glyphs.character_data``, seed 1), sampled without preparing the whole file."""
    d = np.load(_find(Path(data_dir), EMNIST_NPZ))
    x, y = d["x"], d["y"]
    idx = three_way_split(y, 0.05, 0.15, 1)
    train, test = idx["train"], idx["test"]
    r = train[balanced(y[train], args.char_replay_per_class, rng)]
    g = np.sort(rng.choice(test, args.guard, replace=False))
    return {"replay_x": prepare(x[r]), "replay_y": y[r], "guard_x": prepare(x[g]), "guard_y": y[g]}


def main(argv=None) -> None:

    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sources = {
        "digit": ("MNIST train (replay) / MNIST test (guard)", digit_base, "0123456789"),
        "character": (
            "EMNIST ByClass train part (replay) / test part (guard), split seed 1",
            character_base,
            CHARSET62,
        ),
    }
    meta = {
        "preprocessing_version": PREPROCESSING_VERSION,
        "command": command_line("training.personal_data"),
        "tasks": {},
    }
    for task, (source, build, labels) in sources.items():
        data = build(args.data_dir, args, np.random.default_rng(args.seed))
        np.savez_compressed(args.out / f"{task}.npz", **data)
        meta["tasks"][task] = {
            "source": source,
            "labels": labels,
            "replay": len(data["replay_y"]),
            "guard": len(data["guard_y"]),
        }
        print(f"{task}: {len(data['replay_y'])} replay, {len(data['guard_y'])} guard samples")
    write_meta(args.out, meta)


if __name__ == "__main__":
    main()
