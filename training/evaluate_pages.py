"""Measure page reading on pages with ground truth (``training.compose_pages`` or your own):
``python -m training.evaluate_pages --pages tests/resources/pages --engine cnn hog``.

Each page goes through the same path as an upload (``models.reading.page.read_page``). A true glyph is
detected when one predicted box overlaps it enough (intersection over union >= 0.3, each box used
once); it is read right when that box's label is the true one. Reported per engine:
- detection recall: detected true glyphs / true glyphs;
- glyph accuracy (end to end): true glyphs detected *and* read right / true glyphs;
- extra boxes: predicted boxes that match no true glyph;
- space errors: of the gaps between two neighbouring true glyphs of a line that were both detected
  as neighbours in one row, those where a space was read and none is written, or the other way;
- exact pages: pages whose whole text (rows, spaces, digits) is right.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from models.reading.page import read_page
from models.registry import Registry, shared_registry


@dataclass(frozen=True)
class PagesEvaluation:
    """Which pages are read, by which engines, for which alphabet (the step prints its figures)."""

    pages: Path  # folder with page images and truth.json
    engine: tuple[str, ...] = ("cnn", "hog")  # engines compared, in this order
    alphabet: str = "digit"  # "digit" or "character"


def parse_args(argv=None) -> PagesEvaluation:
    d = PagesEvaluation(Path("."))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=Path, required=True, help="folder with page images and truth.json")
    p.add_argument("--engine", nargs="+", default=list(d.engine), help="engines to compare")
    p.add_argument("--alphabet", default=d.alphabet, help="digit or character")
    args = vars(p.parse_args(argv))
    return PagesEvaluation(**args | {"engine": tuple(args["engine"])})


def iou(a: dict, b: dict) -> float:
    """Intersection over union of two {x, y, w, h} boxes."""
    ix = max(0, min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]))
    iy = max(0, min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]))
    inter = ix * iy
    return inter / max(1, a["w"] * a["h"] + b["w"] * b["h"] - inter)


def true_spaces(truth: dict) -> list[bool]:
    """Per true glyph (in reading order): whether its line's text has a space before it."""
    spaces = []
    for line in truth["text"].split("\n"):
        before = False
        for ch in line:
            if ch == " ":
                before = True
                continue
            spaces.append(before)
            before = False
    return spaces


def space_counts(truth: dict, result: dict, matched: dict[int, int]) -> tuple[int, int]:
    """(gaps compared, gaps read wrong): neighbouring true glyphs of a line matched (``matched``:
    true index -> predicted index) to neighbouring glyphs of one row, space or not."""
    spaces, glyphs = true_spaces(truth), result["glyphs"]
    compared = wrong = 0
    for i in range(1, len(truth["glyphs"])):
        a, b = matched.get(i - 1), matched.get(i)
        same_line = truth["glyphs"][i - 1]["line"] == truth["glyphs"][i]["line"]
        if a is None or b != a + 1 or not same_line or glyphs[a]["line"] != glyphs[b]["line"]:
            continue
        compared += 1
        wrong += bool(glyphs[b].get("space_before")) != spaces[i]
    return compared, wrong


def score_page(truth: dict, result: dict) -> dict:
    """Counts for one page: true glyphs, detected, read right, extra boxes, gaps compared and
    spaces read wrong, exact text."""
    sx = result["image"]["width"] / truth["width"]  # boxes come back in the working image's pixels
    sy = result["image"]["height"] / truth["height"]
    true = [
        {"x": g["x"] * sx, "y": g["y"] * sy, "w": g["w"] * sx, "h": g["h"] * sy, "text": g["text"]}
        for g in truth["glyphs"]
    ]
    pairs = sorted(
        ((iou(t, p), i, j) for i, t in enumerate(true) for j, p in enumerate(result["glyphs"])),
        reverse=True,
    )
    matched, used_p, right = {}, set(), 0
    for overlap, i, j in pairs:
        if overlap < 0.3:
            break
        if i in matched or j in used_p:
            continue
        matched[i] = j
        used_p.add(j)
        right += result["glyphs"][j]["text"] == true[i]["text"]
    gaps, space_errors = space_counts(truth, result, matched)
    return {
        "glyphs": len(true),
        "detected": len(matched),
        "right": right,
        "extra": len(result["glyphs"]) - len(used_p),
        "gaps": gaps,
        "space_errors": space_errors,
        "exact": result["text"] == truth["text"],
    }


def read_timed(path: Path, registry: Registry, alphabet: str, engine: str) -> tuple[dict, float]:
    """(the answer to page ``path`` as an upload gets it, the seconds it took)."""
    start = time.perf_counter()
    result = read_page(path.read_bytes(), registry, alphabet, engine).result
    return result, time.perf_counter() - start


def evaluate(pages: Path, engine: str, alphabet: str = "digit") -> dict:
    """Totals over every page listed in ``pages/truth.json``."""
    truths = json.loads((pages / "truth.json").read_text())
    registry = shared_registry()
    counts = ("glyphs", "detected", "right", "extra", "gaps", "space_errors", "exact")
    totals = dict.fromkeys(counts, 0) | {"pages": 0, "seconds": 0.0}
    for name, truth in truths.items():
        result, seconds = read_timed(pages / name, registry, alphabet, engine)
        totals["seconds"] += seconds
        score = score_page(truth, result)
        totals["pages"] += 1
        for k in counts:
            totals[k] += int(score[k])
    return totals | rates(totals)


def rates(totals: dict) -> dict:
    """The shares reported from the totals: detection recall, glyph accuracy, exact pages, s/page."""
    n, pages = max(1, totals["glyphs"]), max(1, totals["pages"])
    return {
        "detection_recall": round(totals["detected"] / n, 4),
        "glyph_accuracy": round(totals["right"] / n, 4),
        "exact_page_rate": round(totals["exact"] / pages, 4),
        "seconds_per_page": round(totals["seconds"] / pages, 3),
    }


def summary_line(engine: str, r: dict) -> str:
    """One engine's figures as the step prints them."""
    return (
        f"{engine}: {r['pages']} pages, {r['glyphs']} glyphs: detection recall {r['detection_recall']:.2%}, "
        f"glyph accuracy {r['glyph_accuracy']:.2%}, extra boxes {r['extra']}, "
        f"space errors {r['space_errors']}/{r['gaps']} gaps, "
        f"exact pages {r['exact']}/{r['pages']}, {r['seconds_per_page']:.2f} s/page"
    )


def main(argv=None) -> None:
    cfg = parse_args(argv)
    for engine in cfg.engine:
        print(summary_line(engine, evaluate(cfg.pages, engine, cfg.alphabet)))


if __name__ == "__main__":
    main()
