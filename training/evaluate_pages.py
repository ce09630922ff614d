"""Measure page reading on pages with ground truth (``training.compose_pages`` or your own):
``python -m training.evaluate_pages --pages tests/resources/pages --engine cnn hog``.

Each page goes through the same path as an upload (``models.pages.read_page``). A true glyph is
detected when one predicted box overlaps it enough (intersection over union >= 0.3, each box used
once); it is read right when that box's label is the true one. Reported per engine:
- detection recall: detected true glyphs / true glyphs;
- glyph accuracy (end to end): true glyphs detected *and* read right / true glyphs;
- extra boxes: predicted boxes that match no true glyph;
- exact pages: pages whose whole text (rows, spaces, digits) is right.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from models.pages import read_page
from models.registry import shared_registry


def iou(a: dict, b: dict) -> float:
    """Intersection over union of two {x, y, w, h} boxes."""
    ix = max(0, min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]))
    iy = max(0, min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]))
    inter = ix * iy
    return inter / max(1, a["w"] * a["h"] + b["w"] * b["h"] - inter)


def score_page(truth: dict, result: dict) -> dict:
    """Counts for one page: true glyphs, detected, read right, extra boxes, exact text."""
    sx = result["image"]["width"] / truth["width"]  # boxes come back in the working image's pixels
    sy = result["image"]["height"] / truth["height"]
    true = [{"x": g["x"] * sx, "y": g["y"] * sy, "w": g["w"] * sx, "h": g["h"] * sy, "text": g["text"]}
            for g in truth["glyphs"]]  # fmt: skip
    pairs = sorted(
        ((iou(t, p), i, j) for i, t in enumerate(true) for j, p in enumerate(result["glyphs"])),
        reverse=True,
    )
    used_t, used_p, right = set(), set(), 0
    for overlap, i, j in pairs:
        if overlap < 0.3:
            break
        if i in used_t or j in used_p:
            continue
        used_t.add(i)
        used_p.add(j)
        right += result["glyphs"][j]["text"] == true[i]["text"]
    return {
        "glyphs": len(true),
        "detected": len(used_t),
        "right": right,
        "extra": len(result["glyphs"]) - len(used_p),
        "exact": result["text"] == truth["text"],
    }


def evaluate(pages: Path, engine: str, alphabet: str = "digit") -> dict:
    """Totals over every page listed in ``pages/truth.json``."""
    truths = json.loads((pages / "truth.json").read_text())
    registry = shared_registry()
    totals = {"pages": 0, "glyphs": 0, "detected": 0, "right": 0, "extra": 0, "exact": 0, "seconds": 0.0}
    for name, truth in truths.items():
        start = time.perf_counter()
        result = read_page((pages / name).read_bytes(), registry, alphabet, engine).result
        totals["seconds"] += time.perf_counter() - start
        score = score_page(truth, result)
        totals["pages"] += 1
        for k in ("glyphs", "detected", "right", "extra", "exact"):
            totals[k] += int(score[k])
    n = max(1, totals["glyphs"])
    return totals | {
        "detection_recall": round(totals["detected"] / n, 4),
        "glyph_accuracy": round(totals["right"] / n, 4),
        "exact_page_rate": round(totals["exact"] / max(1, totals["pages"]), 4),
        "seconds_per_page": round(totals["seconds"] / max(1, totals["pages"]), 3),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=Path, required=True, help="folder with page images and truth.json")
    p.add_argument("--engine", nargs="+", default=["cnn", "hog"], help="engines to compare")
    p.add_argument("--alphabet", default="digit", help="digit or character")
    args = p.parse_args(argv)
    for engine in args.engine:
        r = evaluate(args.pages, engine, args.alphabet)
        print(
            f"{engine}: {r['pages']} pages, {r['glyphs']} glyphs: detection recall {r['detection_recall']:.2%}, "
            f"glyph accuracy {r['glyph_accuracy']:.2%}, extra boxes {r['extra']}, "
            f"exact pages {r['exact']}/{r['pages']}, {r['seconds_per_page']:.2f} s/page"
        )


if __name__ == "__main__":
    main()
