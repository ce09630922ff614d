"""Page reading speed: ``python bench/pages.py [--runs 10]``.

Composes an A4 scan at 300 dpi (2480 x 3508 pixels, JPEG) holding about 100 real handwritten digits
(``training.data.pages``), then times ``models.reading.page.read_page`` end to end: decoding (JPEG
draft), segmentation, one batched forward pass for all glyphs, and the two output images. Prints
p50/p90 seconds per page for each engine and the share spent in segmentation.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from models.preprocessing import decode, to_gray  # noqa: E402
from models.reading.page import read_page  # noqa: E402
from models.registry import shared_registry  # noqa: E402
from models.segmentation.page import PAGE_SIDE, segment  # noqa: E402
from training.data.pages import compose_page, glyph_sources  # noqa: E402

RESOURCES = Path(__file__).resolve().parent.parent / "tests" / "resources"


def a4_page(seed: int = 3, glyphs: int = 100) -> tuple[bytes, int]:
    """JPEG bytes of a 300 dpi A4 page with about ``glyphs`` digits, and the exact count."""
    sources = glyph_sources(RESOURCES / "mnist_test_first500.npz", RESOURCES / "photo_digits")
    rng = np.random.default_rng(seed)
    img, truth = compose_page(sources, rng, "lines", 2480, 2481)
    keep = [g for g in truth["glyphs"] if g["line"] < 10]
    while len(keep) > glyphs:  # blank out the extra glyphs at the end of the page
        g = keep.pop()
        img.paste(235, (g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"]))
    img = img.resize((2480, 3508))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue(), len(keep)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="timed pages per engine")
    args = p.parse_args()
    data, count = a4_page()
    registry = shared_registry()
    gray = to_gray(decode(data, side=PAGE_SIDE))
    seg = []
    for _ in range(args.runs):
        t = time.perf_counter()
        segment(gray)
        seg.append(time.perf_counter() - t)
    print(f"A4 at 300 dpi, {len(data) // 1024} KB JPEG, {count} digits; {os.cpu_count()} CPUs")
    print(f"{'engine':<8}{'glyphs':>8}{'p50 s':>8}{'p90 s':>8}  segmentation p50")
    for engine in ("cnn", "hog"):
        read_page(data, registry, "digit", engine)  # warm-up: loads the model
        times, found = [], 0
        for _ in range(args.runs):
            t = time.perf_counter()
            found = len(read_page(data, registry, "digit", engine).result["glyphs"])
            times.append(time.perf_counter() - t)
        print(
            f"{engine:<8}{found:>8}{np.percentile(times, 50):>8.3f}{np.percentile(times, 90):>8.3f}"
            f"  {np.percentile(seg, 50):.3f} s"
        )


if __name__ == "__main__":
    main()
