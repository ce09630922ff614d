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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.glyphs import CHARSET62, EMNIST_NPZ, _find, load_mnist, prepare, three_way_split
from training.provenance import ROOT, config_record, publish_meta

OUT = ROOT / "models" / "weights" / "personal-base"


@dataclass(frozen=True)
class BaseDataConfig:
    """What the base data holds; its meta.json keeps this whole (``training.config``)."""

    data_dir: Path  # folder with mnist/ and emnist/ (see ../shared/data)
    out: Path = OUT  # output folder
    replay_per_class: int = 200  # digit task: training samples per class
    char_replay_per_class: int = 48  # character task: training samples per class
    guard: int = 2000  # test-split samples per task for the promotion check
    seed: int = 1


def parse_args(argv=None) -> BaseDataConfig:
    d = BaseDataConfig(Path("."))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder with mnist/ and emnist/ (see ../shared/data)")
    p.add_argument("--out", type=Path, default=d.out, help="output folder")
    p.add_argument(
        "--replay-per-class", type=int, default=d.replay_per_class, help="digit task: training samples per class"
    )
    p.add_argument(
        "--char-replay-per-class",
        type=int,
        default=d.char_replay_per_class,
        help="character task: training samples per class",
    )
    p.add_argument("--guard", type=int, default=d.guard, help="test-split samples per task for the promotion check")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    return BaseDataConfig(**vars(p.parse_args(argv)))


def balanced(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to ``per_class`` random samples of every class, sorted."""
    picks = [
        rng.choice(np.flatnonzero(y == c), min(per_class, int((y == c).sum())), replace=False) for c in np.unique(y)
    ]
    return np.sort(np.concatenate(picks))


def digit_base(cfg: BaseDataConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """MNIST train (replay) and MNIST test (guard), the digit model's own splits."""
    x_train, y_train, x_test, y_test = load_mnist(cfg.data_dir)
    r = balanced(y_train, cfg.replay_per_class, rng)
    g = np.sort(rng.choice(len(y_test), cfg.guard, replace=False))
    return {
        "replay_x": prepare(x_train[r]),
        "replay_y": y_train[r],
        "guard_x": prepare(x_test[g]),
        "guard_y": y_test[g],
    }


def character_base(cfg: BaseDataConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The EMNIST parts the character model trained and was tested on (the split of
    ``training.data.glyphs.character_data``, seed 1), sampled without preparing the whole file."""
    d = np.load(_find(cfg.data_dir, EMNIST_NPZ))
    x, y = d["x"], d["y"]
    idx = three_way_split(y, 0.05, 0.15, 1)
    train, test = idx["train"], idx["test"]
    r = train[balanced(y[train], cfg.char_replay_per_class, rng)]
    g = np.sort(rng.choice(test, cfg.guard, replace=False))
    return {"replay_x": prepare(x[r]), "replay_y": y[r], "guard_x": prepare(x[g]), "guard_y": y[g]}


# task -> (where its replay and guard samples come from, how they are built, its labels)
SOURCES = {
    "digit": ("MNIST train (replay) / MNIST test (guard)", digit_base, "0123456789"),
    "character": ("EMNIST ByClass train part (replay) / test part (guard), split seed 1", character_base, CHARSET62),
}


def build_task(cfg: BaseDataConfig, task: str) -> dict:
    """Write ``<task>.npz`` into ``cfg.out``; returns what its meta.json says of it."""
    source, build, labels = SOURCES[task]
    data = build(cfg, np.random.default_rng(cfg.seed))
    np.savez_compressed(cfg.out / f"{task}.npz", **data)
    print(f"{task}: {len(data['replay_y'])} replay, {len(data['guard_y'])} guard samples")
    return {"source": source, "labels": labels, "replay": len(data["replay_y"]), "guard": len(data["guard_y"])}


def main(argv=None) -> None:
    cfg = parse_args(argv)
    cfg.out.mkdir(parents=True, exist_ok=True)
    tasks = {task: build_task(cfg, task) for task in SOURCES}
    meta = {"tasks": tasks, "training": {"config": config_record(cfg)}}
    publish_meta(cfg.out, meta, "training.personal_data", "glyph")


if __name__ == "__main__":
    main()
