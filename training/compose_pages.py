"""Test pages with known ground truth, composed from real held-out handwritten glyphs:
``python -m training.compose_pages --out tests/resources/pages --count 8``.

Each page is a sheet of paper (uneven light, grain) with printed ruling (none, lines, squares or a
table), rows of numbers written with a slight slant of the row, varying size and spacing, then
blur, noise, a random resolution and JPEG compression, as a phone photo or scan would have. The
glyphs are real: MNIST test digits (never used for training) and, when given, photographed
pen-on-paper digits from handwritten_chars62. ``truth.json`` holds every page's text and glyph boxes.
This step writes them; composing a page is ``training.data.pages``.
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from models.files import write_atomically
from training.data.pages import RULINGS, compose_page, glyph_sources
from training.provenance import ROOT


@dataclass(frozen=True)
class PagesConfig:
    """Which pages are composed (the seed and sources fix every pixel)."""

    out: Path = ROOT / "tests" / "resources" / "pages"  # output folder
    count: int = 8  # pages to make
    mnist_npz: Path = ROOT / "tests" / "resources" / "mnist_test_first500.npz"  # held-out MNIST digits (x, y)
    photo_dir: Path | None = ROOT / "tests" / "resources" / "photo_digits"  # DIGIT_7_12.png etc. (None: MNIST only)
    seed: int = 7
    quality: int = 75  # JPEG quality of the pages
    width: tuple[int, int] = (1400, 2400)  # range of page widths in pixels


def parse_args(argv=None) -> PagesConfig:
    d = PagesConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=d.out, help="output folder")
    p.add_argument("--count", type=int, default=d.count, help="pages to make")
    p.add_argument("--mnist-npz", type=Path, default=d.mnist_npz, help="held-out MNIST digits (.npz with x, y)")
    photos = "photographed digits named like DIGIT_7_12.png (none: MNIST only)"
    p.add_argument("--photo-dir", type=Path, default=d.photo_dir, help=photos)
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--quality", type=int, default=d.quality, help="JPEG quality of the pages")
    p.add_argument("--width", type=int, nargs=2, default=d.width, help="range of page widths in pixels")
    args = vars(p.parse_args(argv))
    return PagesConfig(**args | {"width": tuple(args["width"])})


def write_page(cfg: PagesConfig, name: str, img: Image.Image) -> int:
    """Save one page as JPEG in ``cfg.out``; returns its size in bytes."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=cfg.quality)
    (cfg.out / name).write_bytes(buf.getvalue())
    return len(buf.getvalue())


def compose_all(cfg: PagesConfig) -> dict:
    """Compose and save ``cfg.count`` pages (the rulings in turn); every page's truth, by file name."""
    rng = np.random.default_rng(cfg.seed)
    sources = glyph_sources(cfg.mnist_npz, cfg.photo_dir if cfg.photo_dir and cfg.photo_dir.exists() else None)
    cfg.out.mkdir(parents=True, exist_ok=True)
    truths = {}
    for i in range(cfg.count):
        img, truth = compose_page(sources, rng, RULINGS[i % len(RULINGS)], *cfg.width)
        name = f"page_{i + 1:02d}_{truth['ruling']}.jpg"
        size = write_page(cfg, name, img)
        truths[name] = truth
        print(f"{name}: {len(truth['glyphs'])} glyphs, {size // 1024} KB")
    return truths


def write_truth(cfg: PagesConfig, truths: dict) -> None:
    """``truth.json`` in ``cfg.out``, in one step. Indented by one space as the committed
    tests/resources/pages/truth.json is (``models.files.write_json`` indents by two)."""
    write_atomically(cfg.out / "truth.json", json.dumps(truths, indent=1) + "\n")


def main(argv=None) -> None:
    cfg = parse_args(argv)
    write_truth(cfg, compose_all(cfg))


if __name__ == "__main__":
    main()
