"""Character and word error rates of the line model on IAM-OnDB's writer-independent test set
(``testset_f``, 3,859 lines) and on the held-out scanned names (``names_words`` files 801-1000):
``python -m training.evaluate_lines --data-dir ../shared/data``.

Each IAM line is rendered from its pen strokes without augmentation, prepared like an upload, and
decoded greedily and with beam search, each without and with spelling correction, and compared
as the product answers (``models.lines.tidy_text``), also per writer group. The names are real
scans: each crop decoded directly, and the whole answer of ``read_lines`` as a user gets it (the
handwriting filter of ``models/weights/line-filter`` on), raw and corrected. CER and WER are edit
operations over reference length (characters, and words split on spaces), summed over all
lines. It also checks the paragraph splitter (and that the filter keeps every line it finds) on
rendered test lines and composed paragraphs. The figures go into the model's ``meta.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from models.ctc import beam_search, error_rates, greedy
from models.lines import LineRecognizer, Speller, load_line_filter, load_line_model, read_lines, split_lines, tidy_text
from models.preprocessing import PreprocessError, line_from_gray
from models.registry import WEIGHTS_DIR
from training.common import command_line
from training.lines_data import NAMES, Lines, load_iam_ondb, load_names_words, render, strips


def evaluate(data_dir: Path, model: LineRecognizer, split: str = "test_f", limit: int | None = None) -> dict:
    """Error rates of every decoder / correction combination on ``split``, texts compared as the
    product answers them (``tidy_text``: IAM's "word ," tokenisation becomes "word,"), and the
    beam search's raw CER per writer group (lines grouped by the letter and first two digits of
    their form, ``a01``...), with the spread."""
    lines = load_iam_ondb(data_dir, split)
    if limit is not None:
        lines = Lines(lines.strokes[:limit], lines.texts[:limit], lines.ids[:limit])
    prepared = strips(lines, None)
    refs, outs = [], {k: [] for k in ("greedy", "greedy+spelling", "beam", "beam+spelling")}
    speller = Speller.english()
    start = time.perf_counter()
    for text, strip in zip(lines.texts, prepared, strict=True):
        refs.append(tidy_text(text))
        if strip is None:  # nothing readable was rendered: every character counts as an error
            for v in outs.values():
                v.append("")
            continue
        probs = model.probabilities(strip)
        for name, decode in (("greedy", greedy), ("beam", beam_search)):
            raw = decode(probs, model.charset)
            outs[name].append(tidy_text(raw))
            outs[f"{name}+spelling"].append(tidy_text(speller.line(raw, probs, model.charset)))
    seconds = time.perf_counter() - start
    result = {k: {m: round(v, 4) for m, v in error_rates(refs, h).items() if m != "lines"} for k, h in outs.items()}
    return result | {"groups": writer_groups(lines.ids, refs, outs), "lines": len(refs), "split": split,
                     "seconds": round(seconds, 1)}  # fmt: skip


def writer_groups(ids: list[str], refs: list[str], outs: dict[str, list[str]]) -> dict:
    """CER of beam search (raw and corrected) per form-prefix group, with mean, min and max."""
    by_group: dict[str, list[int]] = {}
    for i, line_id in enumerate(ids):
        by_group.setdefault(line_id.split("-")[0], []).append(i)
    table = {}
    for group, idx in sorted(by_group.items()):
        table[group] = {k: round(error_rates([refs[i] for i in idx], [outs[k][i] for i in idx])["cer"], 4)
                        for k in ("beam", "beam+spelling")} | {"lines": len(idx)}  # fmt: skip
    spread = {k: {"mean": round(float(np.mean([g[k] for g in table.values()])), 4),
                  "min": min(g[k] for g in table.values()), "max": max(g[k] for g in table.values())}
              for k in ("beam", "beam+spelling")}  # fmt: skip
    return {"by_form_prefix": table, "spread": spread}


def compose_paragraph(lines: Lines, rng: np.random.Generator, count: int, spacing: float) -> np.ndarray:
    """``count`` test lines of one pen stacked into a paragraph, ``spacing`` line heights apart
    (below zero, the tails of one line reach into the next), turned by up to 3 degrees."""
    picks = rng.choice(len(lines.texts), count, replace=False)
    images = [render(*lines.strokes[i]) for i in picks]
    step = int(np.mean([im.shape[0] for im in images]) * (1 + spacing))
    page = np.ones((step * (count - 1) + max(im.shape[0] for im in images) + 40,
                    max(im.shape[1] for im in images) + 40), np.float32)  # fmt: skip
    for k, im in enumerate(images):
        y = 20 + k * step
        page[y : y + im.shape[0], 20 : 20 + im.shape[1]] = np.minimum(
            page[y : y + im.shape[0], 20 : 20 + im.shape[1]], im
        )
    turned = Image.fromarray(page, "F").rotate(
        rng.uniform(-3, 3), expand=True, fillcolor=1.0, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(turned, np.float32)


def evaluate_splitting(data_dir: Path, single: int = 200, paragraphs: int = 60, handwriting=None) -> dict:
    """How ``split_lines`` does on single test lines (plain and augmented renderings: they must stay
    one line) and on composed four-line paragraphs at three spacings (they must give four); with
    the ``handwriting`` filter, how many of the lines it found the filter keeps (all should be)."""
    lines = load_iam_ondb(data_dir, "test_f")
    rng = np.random.default_rng(0)
    picks = rng.choice(len(lines.texts), single, replace=False)
    found_lines, kept = 0, 0

    def split(gray: np.ndarray) -> list:
        nonlocal found_lines, kept
        parts = split_lines(gray)
        if handwriting is not None:
            for _, crop in parts:
                found_lines += 1
                kept += handwriting.probability(line_from_gray(crop)) >= handwriting.threshold
        return parts

    result = {
        "single_lines_kept_whole": sum(len(split(render(*lines.strokes[i]))) == 1 for i in picks)
        + sum(len(split(render(*lines.strokes[i], np.random.default_rng(int(i))))) == 1 for i in picks),
        "single_lines": 2 * single,
    }
    for name, low, high in (("touching", -0.25, -0.1), ("tight", -0.1, 0.0), ("spaced", 0.0, 0.2)):
        ok = sum(len(split(compose_paragraph(lines, rng, 4, rng.uniform(low, high)))) == 4
                 for _ in range(paragraphs))  # fmt: skip
        result[f"paragraphs_{name}_split_right"] = ok
    if handwriting is not None:
        result["handwriting_filter"] = {"lines_found": found_lines, "kept": int(kept)}
    return result | {"paragraphs_each": paragraphs}


def evaluate_names(data_dir: Path, model: LineRecognizer, handwriting=None) -> dict:
    """Error rates on the held-out scanned names: each crop's strip decoded directly (exact and
    ignoring letter case), and the whole answer as a user gets it from ``read_lines`` (line
    finding, the handwriting filter, beam search; raw and corrected, ignoring case)."""
    grays, refs = load_names_words(data_dir, "test")
    outs: dict[str, list[str]] = {"greedy": [], "beam": [], "whole_raw": [], "whole_corrected": []}
    lines_returned = []
    for gray in grays:
        try:
            probs = model.probabilities(line_from_gray(gray))
            outs["greedy"].append(greedy(probs, model.charset))
            outs["beam"].append(beam_search(probs, model.charset))
        except PreprocessError:
            outs["greedy"].append("")
            outs["beam"].append("")
        buf = io.BytesIO()
        Image.fromarray(np.round(gray * 255).astype(np.uint8)).save(buf, format="PNG")
        try:
            answer = read_lines(buf.getvalue(), model, handwriting=handwriting).result
        except PreprocessError:
            answer = {"raw_text": "", "text": "", "lines": []}
        outs["whole_raw"].append(answer["raw_text"].replace("\n", " "))
        outs["whole_corrected"].append(answer["text"].replace("\n", " "))
        lines_returned.append(len(answer["lines"]))
    result = {}
    for k, hyps in outs.items():
        exact = error_rates(refs, hyps)
        folded = error_rates([r.upper() for r in refs], [h.upper() for h in hyps])
        result[k] = {"cer": round(exact["cer"], 4), "wer": round(exact["wer"], 4),
                     "cer_ignoring_case": round(folded["cer"], 4)}  # fmt: skip
    result["whole_lines_returned"] = {str(n): lines_returned.count(n) for n in sorted(set(lines_returned))}
    return result | {"lines": len(refs), "split": "names_words 801-1000"}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder holding iam_ondb_lines/")
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR / "line", help="the line model folder")
    p.add_argument("--limit", type=int, default=None, help="only the first N test lines (a quick look)")
    p.add_argument("--no-write", action="store_true", help="print only; leave meta.json alone")
    args = p.parse_args(argv)
    model = load_line_model(args.weights)
    r = evaluate(args.data_dir, model, limit=args.limit)
    for k in ("greedy", "greedy+spelling", "beam", "beam+spelling"):
        print(f"{k:<16} CER {r[k]['cer']:.2%}  WER {r[k]['wer']:.2%}")
    print(f"{r['lines']} lines of {r['split']} in {r['seconds']} s")
    handwriting = load_line_filter(args.weights.parent / "line-filter")
    names = evaluate_names(args.data_dir, model, handwriting) if (args.data_dir / NAMES).exists() else None
    spread = r["groups"]["spread"]["beam"]
    print(f"beam CER per writer group: mean {spread['mean']:.2%}, min {spread['min']:.2%}, max {spread['max']:.2%}")
    if names:
        for k in ("greedy", "beam", "whole_raw", "whole_corrected"):
            print(f"names {k:<10} CER {names[k]['cer']:.2%}  WER {names[k]['wer']:.2%}  "
                  f"CER ignoring case {names[k]['cer_ignoring_case']:.2%}")  # fmt: skip
        print(f"{names['lines']} held-out scanned names")
    splitting = evaluate_splitting(args.data_dir, handwriting=handwriting)
    print(f"line splitting: {splitting['single_lines_kept_whole']} of {splitting['single_lines']} single lines "
          f"kept whole; four-line paragraphs split right, of {splitting['paragraphs_each']} each: touching "
          f"{splitting['paragraphs_touching_split_right']}, tight {splitting['paragraphs_tight_split_right']}, "
          f"spaced {splitting['paragraphs_spaced_split_right']}")  # fmt: skip
    if "handwriting_filter" in splitting:
        f = splitting["handwriting_filter"]
        print(f"handwriting filter kept {f['kept']} of the {f['lines_found']} lines found in them")
    if not args.no_write and args.limit is None:
        meta_path = args.weights / "meta.json"
        meta = json.loads(meta_path.read_text())
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["metrics"] = {"iam_ondb_test_f": r, "names_words_test": names, "line_splitting": splitting,
                           "evaluated_by": command_line("training.evaluate_lines"), "evaluated_on": stamp}  # fmt: skip
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
