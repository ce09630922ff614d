"""The character language model of the line decoder, built and tuned on validation lines only:
``python -m training.train_charlm --data-dir ../shared/data``.

Text it learns from (nothing of the test forms):
- IAM-OnDB transcriptions of ``trainset`` and of the ``testset_v`` lines that train the line model
  (not the 400 validation lines that choose its epoch, picked as ``training.train_lines`` picks
  them); any line whose form text (``a01-037`` of ``a01-037z``: IAM gives one text to several
  writers) also occurs in ``testset_f`` or among the validation lines is left out;
- the scanned names 1-600 of ``names_words`` (block capitals; 601-800 check the tuning, 801-1000
  stay held out for ``training.evaluate_lines``);
- symspellpy's English word-frequency list and word-bigram list (they ship with the package), each
  word or pair counted ``--words-weight`` times its share of the list's total, lower case, with a
  smaller share capitalised and in capitals.

The order and the word-list weight are chosen by perplexity on the validation texts (the lowest
order within 1% of the best, for size and speed), then the decoder's weights ``alpha`` (how much
the language model counts) and ``beta`` (a bonus per character) by beam-search CER on the
validation lines (rendered plainly, as they chose the line model's epoch), and the weight for a
line read in block capitals (``capitals_alpha``: names and codes on forms, see
``models.decoding.charlm.block_capitals``) by CER on the names 601-800. The model goes to
``models/weights/line-lm`` (``charlm.npz`` + ``meta.json`` with the tables).
"""

from __future__ import annotations

import argparse
import importlib.resources
import itertools
import json
import math
import re
import time
from pathlib import Path

import numpy as np

from models.decoding.charlm import CharLM, LineLM, count_ngrams
from models.decoding.ctc import beam_search, decode_columns, error_rates
from models.decoding.spelling import tidy_text
from models.loading import load_line_model
from models.registry import WEIGHTS_DIR
from models.timestamps import utc_stamp
from training.data.lines import (
    Lines,
    column_probs,
    gray_strips,
    load_iam_ondb,
    load_names_words,
    strips,
    validation_lines,
)
from training.provenance import command_line

NAMES_LM = 600  # names_words 1-600 teach the language model, 601-800 check its tuning
CAPITALISED, CAPITALS = 0.2, 0.05  # shares of a listed word's weight given to "Word" and "WORD"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder with iam_ondb_lines/ and names_words/")
    p.add_argument("--line-weights", type=Path, default=WEIGHTS_DIR / "line", help="the line model folder")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR / "line-lm", help="where the model is written")
    p.add_argument("--orders", default="5,6", help="n-gram orders tried")
    p.add_argument("--words-weights", default="0,0.1,0.3,1", help="word-list weights tried, in IAM-text totals")
    p.add_argument("--alphas", default="0.2,0.3,0.4,0.5,0.6,0.8", help="language-model weights tried")
    p.add_argument("--betas", default="0,0.5,1,1.5,2,3", help="per-character bonuses tried")
    p.add_argument("--capitals-alphas", default="0,0.1,0.2,0.3", help="weights tried for block capitals")
    p.add_argument("--width", type=int, default=16, help="beam width with the language model")
    p.add_argument("--val-lines", type=int, default=400, help="validation lines (as training.train_lines picks)")
    return p.parse_args(argv)


def text_id(line_id: str) -> str:
    """The IAM form text a line belongs to: ``a01-037`` for ``a01-037z-03`` (writers share texts)."""
    return re.sub(r"[a-z]$", "", line_id.rsplit("-", 1)[0])


def word_list(name: str) -> list[tuple[str, float]]:
    """(word or word pair, count) of one of symspellpy's frequency files."""
    path = importlib.resources.files("symspellpy") / name
    out = []
    for row in path.read_text(encoding="utf-8").splitlines():
        *words, count = row.split()
        if words:
            out.append((" ".join(words), float(count)))
    return out


def listed_texts(entries: list[tuple[str, float]], weight: float) -> list[tuple[str, float]]:
    """A word list as weighted pseudo-lines " word " (so each starts and ends like a word inside a
    line), lower case, capitalised and in capitals; weights sum to ``weight``."""
    total = sum(c for _, c in entries) or 1.0
    out = []
    for words, count in entries:
        w = weight * count / total
        out += [
            (f" {words} ", w * (1 - CAPITALISED - CAPITALS)),
            (f" {words.capitalize()} ", w * CAPITALISED),
            (f" {words.upper()} ", w * CAPITALS),
        ]
    return out


def perplexity(lm: CharLM, texts: list[str]) -> float:
    """Per-character perplexity (line ends included) of ``texts``."""
    total = sum(lm.log_prob(t) for t in texts)
    return math.exp(-total / sum(len(t) + 1 for t in texts))


def cer(
    probs: list, refs: list[str], charset: str, fold_case: bool = False, line_lm: LineLM | None = None, **decoder
) -> float:
    """Beam-search CER of column probabilities against ``refs``, with ``decoder`` keywords or a
    ``LineLM`` as the product uses it."""

    def read(p):
        return (
            decode_columns(p, charset, "beam", line_lm) if line_lm is not None else beam_search(p, charset, **decoder)
        )

    hyps = ["" if p is None else tidy_text(read(p)) for p in probs]
    refs = [tidy_text(r) for r in refs]
    if fold_case:
        refs, hyps = [r.upper() for r in refs], [h.upper() for h in hyps]
    return round(error_rates(refs, hyps)["cer"], 5)


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    model = load_line_model(args.line_weights)
    seed = model.meta.get("training", {}).get("seed", 1)
    train, val, test = (load_iam_ondb(args.data_dir, s) for s in ("train", "val1", "test_f"))
    pick = validation_lines(val.ids, args.val_lines, np.random.default_rng(seed))
    held = {text_id(i) for i in test.ids} | {text_id(val.ids[i]) for i in pick}
    rest = sorted(set(range(len(val.ids))) - set(pick))
    iam = [t for t, i in zip(train.texts, train.ids, strict=True) if text_id(i) not in held]
    iam += [val.texts[i] for i in rest if text_id(val.ids[i]) not in held]
    grays, names = load_names_words(args.data_dir, "train")
    lm_names, check_names, check_grays = names[:NAMES_LM], names[NAMES_LM:], grays[NAMES_LM:]
    own = [(t, 1.0) for t in iam + lm_names]
    own_chars = sum(len(t) for t, _ in own)
    listed = word_list("frequency_dictionary_en_82_765.txt") + word_list("frequency_bigramdictionary_en_243_342.txt")
    val_texts = [val.texts[i] for i in pick]
    print(
        f"{len(iam)} IAM lines and {len(lm_names)} names ({own_chars} characters), "
        f"{len(listed)} listed words and pairs; {len(held)} form texts held out",
        flush=True,
    )

    perplexities = []
    for order, words_weight in itertools.product(
        map(int, args.orders.split(",")), map(float, args.words_weights.split(","))
    ):
        # the word list's weight is in IAM-text totals: 1 = as much weight as all IAM lines together
        extra = listed_texts(listed, words_weight * len(own)) if words_weight else []
        lm = CharLM.from_counts(count_ngrams(own + extra, order), order)
        row = {
            "order": order,
            "words_weight": words_weight,
            "val_perplexity": round(perplexity(lm, val_texts), 4),
            "contexts": lm.context_count,
        }
        perplexities.append(row)
        print(json.dumps(row), flush=True)
    lowest = min(r["val_perplexity"] for r in perplexities)
    best = min(
        (r for r in perplexities if r["val_perplexity"] <= 1.01 * lowest),
        key=lambda r: (r["order"], r["val_perplexity"]),
    )
    extra = listed_texts(listed, best["words_weight"] * len(own)) if best["words_weight"] else []
    lm = CharLM.from_counts(count_ngrams(own + extra, best["order"]), best["order"])
    view = lm.for_charset(model.charset)

    val_lines = Lines([val.strokes[i] for i in pick], val_texts, [val.ids[i] for i in pick])
    val_probs = column_probs(model, strips(val_lines, None))
    name_probs = column_probs(model, gray_strips(check_grays))
    plain = {
        "val_cer": cer(val_probs, val_texts, model.charset),
        "names_cer": cer(name_probs, check_names, model.charset, fold_case=True),
    }
    print(json.dumps({"plain_beam": plain}), flush=True)
    grid = []
    for alpha, beta in itertools.product(map(float, args.alphas.split(",")), map(float, args.betas.split(","))):
        decoder = {"lm": view, "alpha": alpha, "beta": beta, "width": args.width}
        row = {"alpha": alpha, "beta": beta, "val_cer": cer(val_probs, val_texts, model.charset, **decoder)}
        grid.append(row)
        print(json.dumps(row), flush=True)
    chosen = min(grid, key=lambda r: r["val_cer"])
    capitals = []
    for capitals_alpha in map(float, args.capitals_alphas.split(",")):
        line_lm = LineLM(lm, chosen["alpha"], chosen["beta"], args.width, capitals_alpha)
        row = {
            "capitals_alpha": capitals_alpha,
            "names_cer": cer(name_probs, check_names, model.charset, True, line_lm),
        }
        capitals.append(row)
        print(json.dumps(row), flush=True)
    capitals_alpha = min(capitals, key=lambda r: (r["names_cer"], -r["capitals_alpha"]))["capitals_alpha"]
    line_lm = LineLM(lm, chosen["alpha"], chosen["beta"], args.width, capitals_alpha)
    final = {
        "val_cer": cer(val_probs, val_texts, model.charset, line_lm=line_lm),
        "names_cer": cer(name_probs, check_names, model.charset, True, line_lm),
    }
    lm.meta = {
        "name": "line-lm",
        "kind": "character n-gram, interpolated Witten-Bell",
        "order": best["order"],
        "charset_of": str(model.meta.get("name", "line")),
        "version": "1",
        "decoder": {
            "alpha": chosen["alpha"],
            "beta": chosen["beta"],
            "width": args.width,
            "capitals_alpha": capitals_alpha,
        },
        "trained_on": utc_stamp(),
        "training": {
            "command": command_line("training.train_charlm"),
            "iam_lines": len(iam),
            "names": len(lm_names),
            "characters": own_chars,
            "listed_words_and_pairs": len(listed),
            "words_weight": best["words_weight"],
            "form_texts_held_out": len(held),
            "minutes": round((time.monotonic() - started) / 60, 1),
        },
        "tuning": {
            "perplexity": perplexities,
            "plain_beam": plain,
            "with_lm": final,
            "grid": grid,
            "capitals": capitals,
            "val_lines": len(val_texts),
            "check_names": len(check_names),
        },
    }
    lm.save(args.out)
    print(json.dumps({"chosen": lm.meta["decoder"], "plain_beam": plain, "with_lm": final}), flush=True)


if __name__ == "__main__":
    main()
