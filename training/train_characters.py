"""Train the 62-class character model (0-9 A-Z a-z, EMNIST ByClass order):
``python -m training.train_characters --data-dir ../shared/data``.

Sources (see ``training.data.glyphs.character_data``): EMNIST ByClass, the photographed
``handwritten_chars62`` characters and some MNIST digits, every image through the app's own glyph
path. Test parts are kept out of training and model selection; ``training.evaluate --task
character`` measures them. Interrupted runs resume from their checkpoint folder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.glyphs import CHARSET62, character_data
from training.data.negatives import outliers as make_outliers
from training.lib.loop import GlyphTraining, glyph_training_parser, publish, train_glyphs

LABELS = list(CHARSET62)


@dataclass(frozen=True)
class CharacterTraining(GlyphTraining):
    """The character model's recipe. Measured: extra MNIST digits, 6,000 outliers and the digit
    model's stronger augmentation cost it about one point on EMNIST (83.9% against 85.0%)."""

    task: str = "character"
    epochs: int = 14
    lr_decay: float = 0.82
    outliers: int = 2000
    max_deg: float = 8.0
    max_shear: float = 0.15
    mnist_extra: int = 0  # MNIST training digits added (0: none)


def parse_args(argv=None) -> CharacterTraining:
    p = glyph_training_parser(__doc__, CharacterTraining(), "folder with emnist/, handwritten_chars62/, mnist/")
    p.add_argument("--mnist-extra", type=int, default=CharacterTraining.mnist_extra, help="MNIST training digits added")
    return CharacterTraining(**vars(p.parse_args(argv)))


def load_data(cfg: CharacterTraining) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """(every source's training and validation glyphs together, EMNIST's training glyphs, which
    the outliers are made from, each source's part sizes for meta.json)."""
    sources = character_data(cfg.data_dir, cfg.seed, cfg.mnist_extra)
    data = {
        "x_train": np.concatenate([s["x_train"] for s in sources.values()]),
        "y_train": np.concatenate([s["y_train"] for s in sources.values()]),
        "x_val": np.concatenate([s["x_val"] for s in sources.values() if "x_val" in s]),
        "y_val": np.concatenate([s["y_val"] for s in sources.values() if "y_val" in s]),
    }
    sizes = {name: {k[2:]: len(v) for k, v in s.items() if k.startswith("y_")} for name, s in sources.items()}
    return data, sources["emnist"]["x_train"], sizes


def main(argv=None) -> None:
    cfg = parse_args(argv)
    data, emnist_train, sizes = load_data(cfg)
    outliers = make_outliers(emnist_train, cfg.outliers, cfg.seed)
    best, summary = train_glyphs(cfg, len(LABELS), data, outliers)
    architecture = {"width": cfg.width, "dropout": cfg.dropout}
    publish(cfg, "training.train_characters", LABELS, best, summary | {"data": sizes}, architecture)


if __name__ == "__main__":
    main()
