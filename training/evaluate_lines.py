"""Character and word error rates of the line model on IAM-OnDB's writer-independent test set
(``testset_f``, 3,859 lines) and on the held-out scanned names (``names_words`` files 801-1000):
``python -m training.evaluate_lines --data-dir ../shared/data``.

Each IAM line is rendered from its pen strokes without augmentation, prepared like an upload, and
decoded greedily and with beam search, each without and with spelling correction. The names are
real scans, prepared like uploads and decoded without correction (an English word list does not
fit French names). CER and WER are edit operations over reference length (characters, and words
split on spaces), summed over all lines. The figures go into the model's ``meta.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from models.ctc import beam_search, error_rates, greedy
from models.lines import Speller, load_line_model
from models.preprocessing import PreprocessError, line_from_gray
from models.registry import WEIGHTS_DIR
from training.common import command_line
from training.lines_data import NAMES, Lines, load_iam_ondb, load_names_words, strips


def evaluate(data_dir: Path, weights_dir: Path, split: str = "test_f", limit: int | None = None) -> dict:
    """Error rates of every decoder / correction combination on ``split``."""
    model = load_line_model(weights_dir)
    lines = load_iam_ondb(data_dir, split)
    if limit is not None:
        lines = Lines(lines.strokes[:limit], lines.texts[:limit], lines.ids[:limit])
    prepared = strips(lines, None)
    refs, outs = [], {k: [] for k in ("greedy", "greedy+spelling", "beam", "beam+spelling")}
    speller = Speller.english()
    start = time.perf_counter()
    for text, strip in zip(lines.texts, prepared, strict=True):
        refs.append(text)
        if strip is None:  # nothing readable was rendered: every character counts as an error
            for v in outs.values():
                v.append("")
            continue
        probs = model.probabilities(strip)
        for name, decode in (("greedy", greedy), ("beam", beam_search)):
            raw = decode(probs, model.charset)
            outs[name].append(raw)
            outs[f"{name}+spelling"].append(speller.line(raw))
    seconds = time.perf_counter() - start
    result = {k: {m: round(v, 4) for m, v in error_rates(refs, h).items() if m != "lines"} for k, h in outs.items()}
    return result | {"lines": len(refs), "split": split, "seconds": round(seconds, 1)}


def evaluate_names(data_dir: Path, weights_dir: Path) -> dict:
    """Error rates on the held-out scanned names (exact, and ignoring letter case)."""
    model = load_line_model(weights_dir)
    grays, refs = load_names_words(data_dir, "test")
    outs: dict[str, list[str]] = {"greedy": [], "beam": []}
    for gray in grays:
        try:
            probs = model.probabilities(line_from_gray(gray))
        except PreprocessError:
            outs["greedy"].append("")
            outs["beam"].append("")
            continue
        outs["greedy"].append(greedy(probs, model.charset))
        outs["beam"].append(beam_search(probs, model.charset))
    result = {}
    for k, hyps in outs.items():
        exact = error_rates(refs, hyps)
        folded = error_rates([r.upper() for r in refs], [h.upper() for h in hyps])
        result[k] = {"cer": round(exact["cer"], 4), "wer": round(exact["wer"], 4),
                     "cer_ignoring_case": round(folded["cer"], 4)}  # fmt: skip
    return result | {"lines": len(refs), "split": "names_words 801-1000"}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder holding iam_ondb_lines/")
    p.add_argument("--weights", type=Path, default=WEIGHTS_DIR / "line", help="the line model folder")
    p.add_argument("--limit", type=int, default=None, help="only the first N test lines (a quick look)")
    p.add_argument("--no-write", action="store_true", help="print only; leave meta.json alone")
    args = p.parse_args(argv)
    r = evaluate(args.data_dir, args.weights, limit=args.limit)
    for k in ("greedy", "greedy+spelling", "beam", "beam+spelling"):
        print(f"{k:<16} CER {r[k]['cer']:.2%}  WER {r[k]['wer']:.2%}")
    print(f"{r['lines']} lines of {r['split']} in {r['seconds']} s")
    names = evaluate_names(args.data_dir, args.weights) if (args.data_dir / NAMES).exists() else None
    if names:
        for k in ("greedy", "beam"):
            print(f"names {k:<10} CER {names[k]['cer']:.2%}  WER {names[k]['wer']:.2%}  "
                  f"CER ignoring case {names[k]['cer_ignoring_case']:.2%}")  # fmt: skip
        print(f"{names['lines']} held-out scanned names")
    if not args.no_write and args.limit is None:
        meta_path = args.weights / "meta.json"
        meta = json.loads(meta_path.read_text())
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["metrics"] = {"iam_ondb_test_f": r, "names_words_test": names,
                           "evaluated_by": command_line("training.evaluate_lines"), "evaluated_on": stamp}  # fmt: skip
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
