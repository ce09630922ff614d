"""Per-line latency of the line model: ``python bench/lines.py --data-dir ../shared/data [--runs 100]``.

Renders IAM-OnDB test lines (``testset_f``) as PNG uploads and times, with the model loaded once:
line preprocessing, the forward pass, beam-search decoding (plain, and with the language model of
``models/weights/line-lm`` as served), spelling correction, and the whole
``models.reading.lines.read_lines`` call; then ``read_lines`` on the same lines drawn as the page's wide
canvas sends them (840 x 240, 6 px pen). Prints p50/p90/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from bench.canvas import PNG_LEVEL  # noqa: E402
from models.decoding.ctc import (
    beam_search,  # noqa: E402
    decode_columns,
)
from models.decoding.spelling import Speller
from models.loading import load_line_lm, load_line_model
from models.preprocessing import line_from_gray, to_png  # noqa: E402
from models.reading.lines import read_lines  # noqa: E402
from models.registry import WEIGHTS_DIR  # noqa: E402
from training.data.lines import load_iam_ondb, render  # noqa: E402


def canvas_png(points: np.ndarray, pen_up: np.ndarray, pen: int = 6) -> bytes:
    """A line written across the 840 x 240 canvas of the line task, as the page sends it (an opaque
    RGBA PNG, as Chromium makes it)."""
    p = points.astype(np.float32)
    p = p * min(800 / max(float(p[:, 0].max()), 1.0), 170 / max(float(p[:, 1].max()), 1.0)) + (20, 35)
    img = Image.new("L", (840, 240), 255)
    draw = ImageDraw.Draw(img)
    for stroke in np.split(p, np.flatnonzero(pen_up)[:-1] + 1):
        draw.line([tuple(q) for q in stroke] * (1 if len(stroke) > 1 else 2), fill=0, width=pen, joint="curve")
    return to_png(img.convert("RGBA"), compress_level=PNG_LEVEL)  # opaque RGBA, as a browser's canvas PNG


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder holding iam_ondb_lines/")
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR / "line", help="the line model folder")
    p.add_argument("--runs", type=int, default=100, help="lines timed")
    args = p.parse_args()
    model = load_line_model(args.weights)
    lm = load_line_lm(args.weights.parent / "line-lm")  # as the app serves: None when none is installed
    speller = Speller.english()
    lines = load_iam_ondb(args.data_dir, "test_f")
    grays = [render(*lines.strokes[i]) for i in range(args.runs)]
    pngs = [to_png((g * 255).astype(np.uint8), compress_level=PNG_LEVEL) for g in grays]
    canvases = [canvas_png(*lines.strokes[i]) for i in range(args.runs)]
    names = ("preprocess", "forward", "beam", "beam+lm", "spelling", "read_lines", "canvas")
    times: dict[str, list[float]] = {k: [] for k in names}
    read_lines(pngs[0], model, speller=speller, lm=lm)  # warm-up
    for g, png, drawn in zip(grays, pngs, canvases, strict=True):
        t0 = time.perf_counter()
        strip = line_from_gray(g)
        t1 = time.perf_counter()
        probs = model.probabilities(strip)
        t2 = time.perf_counter()
        beam_search(probs, model.charset)
        t3 = time.perf_counter()
        raw = decode_columns(probs, model.charset, "beam", lm)
        t3b = time.perf_counter()
        speller.line(raw, probs, model.charset)
        t4 = time.perf_counter()
        read_lines(png, model, speller=speller, lm=lm)
        t5 = time.perf_counter()
        read_lines(drawn, model, speller=speller, ruled=False, lm=lm)  # as /submit reads the canvas
        t6 = time.perf_counter()
        spans = (t1 - t0, t2 - t1, t3 - t2, t3b - t3, t4 - t3b, t5 - t4, t6 - t5)
        for k, v in zip(times, spans, strict=True):
            times[k].append(v * 1000)
    print(f"{len(pngs)} IAM-OnDB test lines, {os.cpu_count()} CPUs")
    print(f"{'measurement':<14}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}")
    for k, v in times.items():
        print(f"{k:<14}{np.percentile(v, 50):>9.1f}{np.percentile(v, 90):>9.1f}{np.percentile(v, 99):>9.1f}")


if __name__ == "__main__":
    main()
