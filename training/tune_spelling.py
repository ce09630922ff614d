"""Choose the spelling corrector's two settings on validation data only:
``python -m training.tune_spelling --data-dir ../shared/data``.

``models.decoding.spelling.OOV_LOG_COUNT`` (the prior of a raw reading that is no dictionary word) and
``REPLACE_MARGIN`` (how much better a replacement must score) are swept over a grid. Each setting
is scored on the IAM-OnDB ``val1`` lines that chose the line model's epoch (whole forms it never
trained on, the same pick as ``training.train_lines``, rendered plainly) and on the scanned names
1-800 (the line model's training part of ``names_words``; the held-out names 801-1000 stay out).
The chosen setting has the lowest corrected CER on ``val1`` among those no worse than raw on the
names, with a margin of at least ``MIN_MARGIN`` (a replacement must beat the raw reading
clearly); the table is printed and written as JSON (``--out``). Texts are compared as the product
answers them (``models.decoding.spelling.tidy_text``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import models.decoding.spelling as spelling_module
from models.decoding.ctc import beam_search, error_rates
from models.decoding.spelling import Speller, tidy_text
from models.loading import load_line_model
from models.registry import WEIGHTS_DIR
from training.data.lines import (
    Lines,
    column_probs,
    gray_strips,
    load_iam_ondb,
    load_names_words,
    strips,
    validation_lines,
)
from training.provenance import command_line, config_record

MIN_MARGIN = 0.5  # lower margins replace words the writing reads better as they are


def score(speller: Speller, probs: list, refs: list[str], charset: str, fold_case: bool = False) -> dict:
    """Raw and corrected CER of beam-search readings, and how many words were changed."""
    raw, fixed, changed = [], [], 0
    for p in probs:
        if p is None:
            raw.append("")
            fixed.append("")
            continue
        text = beam_search(p, charset)
        corrected, changes = speller.correct(text, p, charset)
        raw.append(tidy_text(text))
        fixed.append(tidy_text(corrected))
        changed += len(changes)
    refs = [tidy_text(r) for r in refs]
    if fold_case:
        refs, raw, fixed = [r.upper() for r in refs], [h.upper() for h in raw], [h.upper() for h in fixed]
    cer = {k: round(error_rates(refs, hyps)["cer"], 5) for k, hyps in (("raw_cer", raw), ("corrected_cer", fixed))}
    return cer | {"words_changed": changed}


@dataclass(frozen=True)
class SpellingTuning:
    """The grid the spelling corrector's two settings are chosen from; the table keeps it (``config``)."""

    data_dir: Path  # folder with iam_ondb_lines/ and names_words/
    weights: Path = WEIGHTS_DIR / "line"  # the line model folder
    val_lines: int = 400  # val1 lines used, picked as training.train_lines picks them
    oov: tuple[float, ...] = (0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0)  # OOV_LOG_COUNT values tried
    margin: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # REPLACE_MARGIN values tried
    out: Path | None = None  # write the table here (JSON)


def parse_args(argv=None) -> SpellingTuning:
    d = SpellingTuning(Path("."))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def floats(text: str) -> tuple[float, ...]:
        return tuple(float(v) for v in text.split(","))

    p.add_argument("--data-dir", type=Path, required=True, help="folder with iam_ondb_lines/ and names_words/")
    p.add_argument("--weights", type=Path, default=d.weights, help="the line model folder")
    p.add_argument(
        "--val-lines", type=int, default=d.val_lines, help="val1 lines used (as training.train_lines picks them)"
    )
    p.add_argument("--oov", type=floats, default=d.oov, help="OOV_LOG_COUNT values tried (0,2,4,6,8,10,12)")
    p.add_argument("--margin", type=floats, default=d.margin, help="REPLACE_MARGIN values tried (0.5,1,2,4)")
    p.add_argument("--out", type=Path, default=None, help="write the table here (JSON)")
    return SpellingTuning(**vars(p.parse_args(argv)))


def readings(cfg: SpellingTuning, model) -> tuple[Lines, list, list[str], list]:
    """(validation lines, their column probabilities, names 1-800, theirs)."""
    val = load_iam_ondb(cfg.data_dir, "val1")
    seed = model.meta.get("training", {}).get("seed", 1)
    pick = validation_lines(val.ids, cfg.val_lines, np.random.default_rng(seed))
    val = Lines([val.strokes[i] for i in pick], [val.texts[i] for i in pick], [val.ids[i] for i in pick])
    grays, names = load_names_words(cfg.data_dir, "train")
    return val, column_probs(model, strips(val, None)), names, column_probs(model, gray_strips(grays))


def sweep(cfg: SpellingTuning, charset: str, val: Lines, val_probs: list, names: list[str], name_probs: list) -> list:
    """Raw and corrected CER of every setting, on the validation lines and the names."""
    speller, rows = Speller.english(), []
    for oov, margin in itertools.product(cfg.oov, cfg.margin):
        spelling_module.OOV_LOG_COUNT, spelling_module.REPLACE_MARGIN = oov, margin
        row = {
            "oov_log_count": oov,
            "replace_margin": margin,
            "val1": score(speller, val_probs, val.texts, charset),
            "names_1_800": score(speller, name_probs, names, charset, fold_case=True),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def choose(rows: list[dict]) -> dict:
    """The lowest corrected val1 CER among the settings no worse than raw on the names, with a
    margin of at least ``MIN_MARGIN``."""
    names_kept = [r for r in rows if r["names_1_800"]["corrected_cer"] <= r["names_1_800"]["raw_cer"]]
    fair = [r for r in names_kept if r["replace_margin"] >= MIN_MARGIN] or rows
    return min(fair, key=lambda r: r["val1"]["corrected_cer"])


def publish(cfg: SpellingTuning, best: dict, rows: list[dict], val: Lines, names: list[str], minutes: float) -> None:
    """Print the ``best`` setting; with ``cfg.out``, write the table (``cfg`` whole, the command, every row)."""
    report = {
        "chosen": {"oov_log_count": best["oov_log_count"], "replace_margin": best["replace_margin"]},
        "grid": rows,
        "val1_lines": len(val.texts),
        "names": len(names),
        "config": config_record(cfg),
        "command": command_line("training.tune_spelling"),
        "minutes": minutes,
    }
    print(json.dumps(report["chosen"]))
    if cfg.out:
        cfg.out.write_text(json.dumps(report, indent=2) + "\n")


def main(argv=None) -> None:
    cfg = parse_args(argv)
    started = time.monotonic()
    model = load_line_model(cfg.weights)
    val, val_probs, names, name_probs = readings(cfg, model)
    rows = sweep(cfg, model.charset, val, val_probs, names, name_probs)
    best = choose(rows)
    publish(cfg, best, rows, val, names, round((time.monotonic() - started) / 60, 1))


if __name__ == "__main__":
    main()
