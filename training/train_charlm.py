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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.decoding.charlm import CharLM, LineLM, count_ngrams
from models.decoding.ctc import beam_search, decode_columns, error_rates
from models.decoding.spelling import tidy_text
from models.loading import load_line_model, save_charlm
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
from training.provenance import config_record, stamped

NAMES_LM = 600  # names_words 1-600 teach the language model, 601-800 check its tuning
CAPITALISED, CAPITALS = 0.2, 0.05  # shares of a listed word's weight given to "Word" and "WORD"


@dataclass(frozen=True)
class CharLMConfig:
    """How the language model is built and tuned; its meta.json keeps this whole (``training.config``)."""

    data_dir: Path  # folder with iam_ondb_lines/ and names_words/
    line_weights: Path = WEIGHTS_DIR / "line"  # the line model: its charset, its validation lines
    out: Path = WEIGHTS_DIR / "line-lm"  # where the model is written
    orders: tuple[int, ...] = (5, 6)  # n-gram orders tried
    words_weights: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)  # word-list weights tried, in IAM-text totals
    alphas: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8)  # language-model weights tried
    betas: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # per-character bonuses tried
    capitals_alphas: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3)  # weights tried for a line in block capitals
    width: int = 16  # beam width with the language model
    val_lines: int = 400  # validation lines, picked as training.train_lines picks them


def parse_args(argv=None) -> CharLMConfig:
    d = CharLMConfig(Path("."))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def listed(kind):
        return lambda text: tuple(kind(v) for v in text.split(","))

    def joined(values):
        return ",".join(f"{v:g}" for v in values)

    p.add_argument("--data-dir", type=Path, required=True, help="folder with iam_ondb_lines/ and names_words/")
    p.add_argument("--line-weights", type=Path, default=d.line_weights, help="the line model folder")
    p.add_argument("--out", type=Path, default=d.out, help="where the model is written")
    p.add_argument("--orders", type=listed(int), default=d.orders, help=f"n-gram orders tried ({joined(d.orders)})")
    p.add_argument(
        "--words-weights",
        type=listed(float),
        default=d.words_weights,
        help=f"word-list weights tried, in IAM-text totals ({joined(d.words_weights)})",
    )
    p.add_argument(
        "--alphas", type=listed(float), default=d.alphas, help=f"language-model weights tried ({joined(d.alphas)})"
    )
    p.add_argument(
        "--betas", type=listed(float), default=d.betas, help=f"per-character bonuses tried ({joined(d.betas)})"
    )
    p.add_argument(
        "--capitals-alphas",
        type=listed(float),
        default=d.capitals_alphas,
        help=f"weights tried for block capitals ({joined(d.capitals_alphas)})",
    )
    p.add_argument("--width", type=int, default=d.width, help="beam width with the language model")
    p.add_argument(
        "--val-lines", type=int, default=d.val_lines, help="validation lines (as training.train_lines picks)"
    )
    return CharLMConfig(**vars(p.parse_args(argv)))


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


@dataclass
class Texts:
    """What the model learns from and is tuned on (nothing of the test forms)."""

    own: list[tuple[str, float]]  # IAM training transcriptions and names 1-600, weight 1 each
    iam_lines: int
    names: int
    listed: list[tuple[str, float]]  # symspellpy's words and word pairs with their counts
    val: Lines  # the validation lines: their strokes to read, their texts to score
    check_names: list[str]  # names 601-800 and their pictures: the capitals weight is tuned on them
    check_grays: list[np.ndarray]
    held_out: int  # form texts left out because a test or validation form shares them

    @property
    def characters(self) -> int:
        return sum(len(t) for t, _ in self.own)


def gather_texts(cfg: CharLMConfig, seed: int) -> Texts:
    """The training texts, minus every form text of ``testset_f`` and of the validation lines."""
    train, val, test = (load_iam_ondb(cfg.data_dir, s) for s in ("train", "val1", "test_f"))
    pick = validation_lines(val.ids, cfg.val_lines, np.random.default_rng(seed))
    held = {text_id(i) for i in test.ids} | {text_id(val.ids[i]) for i in pick}
    rest = sorted(set(range(len(val.ids))) - set(pick))
    iam = [t for t, i in zip(train.texts, train.ids, strict=True) if text_id(i) not in held]
    iam += [val.texts[i] for i in rest if text_id(val.ids[i]) not in held]
    grays, names = load_names_words(cfg.data_dir, "train")
    listed = word_list("frequency_dictionary_en_82_765.txt") + word_list("frequency_bigramdictionary_en_243_342.txt")
    val_lines = Lines([val.strokes[i] for i in pick], [val.texts[i] for i in pick], [val.ids[i] for i in pick])
    own = [(t, 1.0) for t in iam + names[:NAMES_LM]]
    texts = Texts(
        own, len(iam), len(names[:NAMES_LM]), listed, val_lines, names[NAMES_LM:], grays[NAMES_LM:], len(held)
    )
    print(
        f"{texts.iam_lines} IAM lines and {texts.names} names ({texts.characters} characters), "
        f"{len(listed)} listed words and pairs; {len(held)} form texts held out",
        flush=True,
    )
    return texts


def lm_of(texts: Texts, order: int, words_weight: float) -> CharLM:
    """The model of ``order`` on the texts, the word list weighted ``words_weight`` (in IAM-text
    totals: 1 = as much weight as all IAM lines together)."""
    extra = listed_texts(texts.listed, words_weight * len(texts.own)) if words_weight else []
    return CharLM.from_counts(count_ngrams(texts.own + extra, order), order)


def choose_order(cfg: CharLMConfig, texts: Texts) -> tuple[CharLM, dict, list[dict]]:
    """The lowest order within 1% of the best validation perplexity (for size and speed), with its
    best word-list weight: (that model, its row, every row)."""
    rows = []
    for order, words_weight in itertools.product(cfg.orders, cfg.words_weights):
        lm = lm_of(texts, order, words_weight)
        score = round(perplexity(lm, texts.val.texts), 4)
        row = {"order": order, "words_weight": words_weight, "val_perplexity": score, "contexts": lm.context_count}
        rows.append(row)
        print(json.dumps(row), flush=True)
    lowest = min(r["val_perplexity"] for r in rows)
    best = min(
        (r for r in rows if r["val_perplexity"] <= 1.01 * lowest), key=lambda r: (r["order"], r["val_perplexity"])
    )
    return lm_of(texts, best["order"], best["words_weight"]), best, rows


@dataclass
class Tuning:
    """What tuning the decoder measured: CERs without the model and with it as chosen, every row."""

    plain: dict
    grid: list[dict]  # alpha x beta on the validation lines
    chosen: dict
    capitals: list[dict]  # the block-capitals weight on the check names
    capitals_alpha: float
    final: dict


def tune(cfg: CharLMConfig, charset: str, lm: CharLM, texts: Texts, probs: tuple[list, list]) -> Tuning:
    """``alpha`` and ``beta`` by beam-search CER on the validation lines, then the weight of a line
    in block capitals by CER on the check names; ``probs``: the line model's column probabilities
    of both."""
    val_probs, name_probs = probs
    val_texts, names = texts.val.texts, texts.check_names
    plain = {
        "val_cer": cer(val_probs, val_texts, charset),
        "names_cer": cer(name_probs, names, charset, fold_case=True),
    }
    print(json.dumps({"plain_beam": plain}), flush=True)
    view, grid = lm.for_charset(charset), []
    for alpha, beta in itertools.product(cfg.alphas, cfg.betas):
        decoder = {"lm": view, "alpha": alpha, "beta": beta, "width": cfg.width}
        grid.append({"alpha": alpha, "beta": beta, "val_cer": cer(val_probs, val_texts, charset, **decoder)})
        print(json.dumps(grid[-1]), flush=True)
    chosen = min(grid, key=lambda r: r["val_cer"])
    capitals = []
    for capitals_alpha in cfg.capitals_alphas:
        line_lm = LineLM(lm, chosen["alpha"], chosen["beta"], cfg.width, capitals_alpha)
        capitals.append({"capitals_alpha": capitals_alpha, "names_cer": cer(name_probs, names, charset, True, line_lm)})
        print(json.dumps(capitals[-1]), flush=True)
    capitals_alpha = min(capitals, key=lambda r: (r["names_cer"], -r["capitals_alpha"]))["capitals_alpha"]
    line_lm = LineLM(lm, chosen["alpha"], chosen["beta"], cfg.width, capitals_alpha)
    final = {
        "val_cer": cer(val_probs, val_texts, charset, line_lm=line_lm),
        "names_cer": cer(name_probs, names, charset, True, line_lm),
    }
    return Tuning(plain, grid, chosen, capitals, capitals_alpha, final)


def publish(
    cfg: CharLMConfig,
    line_model: str,
    lm: CharLM,
    texts: Texts,
    best: dict,
    perplexities: list,
    tuning: Tuning,
    minutes: float,
) -> None:
    """``charlm.npz`` and ``meta.json`` (the decoder's weights, the config, every table) in ``cfg.out``."""
    meta = {
        "name": "line-lm",
        "kind": "character n-gram, interpolated Witten-Bell",
        "order": best["order"],
        "charset_of": line_model,
        "version": "1",
        "decoder": {
            "alpha": tuning.chosen["alpha"],
            "beta": tuning.chosen["beta"],
            "width": cfg.width,
            "capitals_alpha": tuning.capitals_alpha,
        },
        "training": {
            "config": config_record(cfg),
            "iam_lines": texts.iam_lines,
            "names": texts.names,
            "characters": texts.characters,
            "listed_words_and_pairs": len(texts.listed),
            "words_weight": best["words_weight"],
            "form_texts_held_out": texts.held_out,
            "minutes": minutes,
        },
        "tuning": {
            "perplexity": perplexities,
            "plain_beam": tuning.plain,
            "with_lm": tuning.final,
            "grid": tuning.grid,
            "capitals": tuning.capitals,
            "val_lines": len(texts.val.texts),
            "check_names": len(texts.check_names),
        },
    }
    lm.meta = stamped(meta, "training.train_charlm")
    save_charlm(lm, cfg.out)
    print(json.dumps({"chosen": lm.meta["decoder"], "plain_beam": tuning.plain, "with_lm": tuning.final}), flush=True)


def main(argv=None) -> None:
    cfg = parse_args(argv)
    started = time.monotonic()
    model = load_line_model(cfg.line_weights)
    texts = gather_texts(cfg, model.meta.get("training", {}).get("seed", 1))
    lm, best, perplexities = choose_order(cfg, texts)
    probs = column_probs(model, strips(texts.val, None)), column_probs(model, gray_strips(texts.check_grays))
    tuning = tune(cfg, model.charset, lm, texts, probs)
    minutes = round((time.monotonic() - started) / 60, 1)
    publish(cfg, str(model.meta.get("name", "line")), lm, texts, best, perplexities, tuning, minutes)


if __name__ == "__main__":
    main()
