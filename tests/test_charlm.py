"""The character language model of the line decoder: its estimates, its file, and how the beam
search weighs it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from scipy import ndimage

from models.decoding.charlm import END, CharLM, LineLM, block_capitals, count_ngrams
from models.decoding.ctc import beam_search
from models.loading import load_charlm, load_line_lm, load_line_model, save_charlm
from models.registry import WEIGHTS_DIR
from tests.helpers import RESOURCES, SHARED_DATA
from training.data.lines import render_as
from training.evaluate_lines import evaluate

TEXTS = ["the cat sat on the mat", "a cat and a hat", "the cat ran"]


@pytest.mark.parametrize("discount", [0.0, 0.75])
def test_every_context_gives_a_distribution(discount):
    lm = CharLM.from_counts(count_ngrams([(t, 1.0) for t in TEXTS], 4), 4, discount=discount)
    for context in ["", "the c", "zzz", "a h", "the cat ran"]:
        p = lm.distribution(context)
        assert p.shape == (len(lm.vocab),) and np.all(p > 0)
        assert p.sum() == pytest.approx(1.0)
    assert lm.vocab[0] == END


def test_seen_text_is_likelier_than_unseen():
    lm = CharLM.from_counts(count_ngrams([(t, 1.0) for t in TEXTS], 4), 4)
    assert lm.log_prob("the cat") > lm.log_prob("the cot") > lm.log_prob("tqe cxt")
    at = lm.vocab.index("a")
    assert lm.distribution("the c")[at] > 0.5  # "the c" is always followed by "a" here


def test_caches_stay_bounded_and_give_what_is_computed_afresh(monkeypatch):
    """The distributions and beam weights kept are bounded (least recently used dropped), and a
    kept one is what computing it again gives, after many more contexts than the bound."""
    import models.decoding.charlm as charlm

    monkeypatch.setattr(charlm, "CACHE_SIZE", 20)
    texts = [(t, 1.0) for t in TEXTS + ["quick brown foxes jump over lazy dogs", "pack my box with five dozen jugs"]]
    lm = CharLM.from_counts(count_ngrams(texts, 4), 4)
    view = lm.for_charset("abcdefghijklmnopqrstuvwxyz .")
    rng = np.random.default_rng(3)
    contexts = ["".join(rng.choice(list("abcdeot h"), size=int(rng.integers(0, 6)))) for _ in range(400)]
    first = [view.weights(c, 0.6, 1.0).copy() for c in contexts]
    assert lm._dist.cache_info().currsize <= 20 and view._weights.cache_info().currsize <= 20
    fresh = CharLM.from_counts(count_ngrams(texts, 4), 4).for_charset("abcdefghijklmnopqrstuvwxyz .")
    for c, w in zip(contexts, first, strict=True):
        again = fresh.weights(c, 0.6, 1.0)
        assert np.array_equal(w, again) and np.array_equal(view.weights(c, 0.6, 1.0), again)
        assert np.array_equal(lm.distribution(c), lm._mixed(((charlm.BOUNDARY * 3) + c)[-3:]))


def test_weights_count_like_repeats():
    once = CharLM.from_counts(count_ngrams([("abc", 2.0)], 3), 3)
    twice = CharLM.from_counts(count_ngrams([("abc", 1.0), ("abc", 1.0)], 3), 3)
    assert np.allclose(once.distribution("ab"), twice.distribution("ab"))


def test_the_file_keeps_every_estimate(tmp_path):
    lm = CharLM.from_counts(count_ngrams([(t, 1.0) for t in TEXTS], 5), 5, {"version": "1"}, discount=0.5)
    save_charlm(lm, tmp_path)
    back = load_charlm(tmp_path)
    assert (back.order, back.vocab, back.discount, back.meta) == (lm.order, lm.vocab, lm.discount, lm.meta)
    for context in ["", "the ", "a c", "qq"]:
        assert np.allclose(back.distribution(context), lm.distribution(context), atol=1e-6)


def ambiguous_columns(charset: str, first: str, second: str, margin: float) -> np.ndarray:
    """Columns reading "c?t": the middle column says ``first`` a little more than ``second``."""
    blank = len(charset)
    rows = []
    for ch in "c?t":
        row = np.full(len(charset) + 1, 1e-4)
        if ch == "?":
            row[charset.index(first)], row[charset.index(second)] = 0.5 + margin, 0.5 - margin
        else:
            row[charset.index(ch)] = 1.0
        rows += [row, np.eye(len(charset) + 1)[blank] + 1e-4]
    probs = np.array(rows)
    return probs / probs.sum(axis=1, keepdims=True)


def test_the_language_model_tips_a_close_reading_and_not_a_clear_one():
    charset = "acot "
    lm = CharLM.from_counts(count_ngrams([("cat", 1.0)] * 20 + [("cot", 1.0)], 4), 4).for_charset(charset)
    close = ambiguous_columns(charset, "o", "a", 0.05)
    assert beam_search(close, charset) == "cot"
    assert beam_search(close, charset, lm=lm, alpha=0.5) == "cat"
    clear = ambiguous_columns(charset, "o", "a", 0.49)
    assert beam_search(clear, charset, lm=lm, alpha=0.5) == "cot"


def test_block_capitals_choose_their_own_weight():
    assert block_capitals("JEAN-PIERRE") and block_capitals("NOM MARTIN") and not block_capitals("The cat")
    assert not block_capitals("A") and not block_capitals("1234")
    lm = LineLM(CharLM.from_counts(count_ngrams([("cat", 1.0)], 3), 3), 0.5, 1.0, 16, 0.0)
    assert lm.decoder("acot", "MARTIN")["alpha"] == 0.0 and lm.decoder("acot", "martin")["alpha"] == 0.5


@pytest.mark.skipif(not (WEIGHTS_DIR / "line-lm" / "charlm.npz").exists(), reason="no language model installed")
def test_the_shipped_language_model_knows_english_and_the_line_charset():
    lm = load_line_lm(WEIGHTS_DIR / "line-lm")
    charset = (WEIGHTS_DIR / "line" / "charset.txt").read_text(encoding="utf-8").rstrip("\n")
    assert set(charset) <= set(lm.lm.vocab)
    assert lm.lm.log_prob("the house was quiet") > lm.lm.log_prob("tne hovse wqs qviet") + 10
    assert 0 < lm.alpha <= 2 and lm.width >= 10


@pytest.mark.skipif(not (WEIGHTS_DIR / "line-lm" / "charlm.npz").exists(), reason="no language model installed")
def test_line_answers_name_the_language_model_they_used(client):
    name = next(iter(json.loads((RESOURCES / "lines" / "truth.json").read_text())))
    data = (RESOURCES / "lines" / name).read_bytes()
    beam = client.post("/upload", data={"file": (io.BytesIO(data), name), "task": "line"}).get_json()
    assert beam["language_model"]["name"] == "line-lm"
    greedy = client.post("/upload", data={"file": (io.BytesIO(data), name), "task": "line", "decoder": "greedy"})
    assert greedy.get_json()["language_model"] is None


def test_evaluation_reads_with_and_without_the_language_model():
    if not (SHARED_DATA / "iam_ondb_lines").exists() or not (WEIGHTS_DIR / "line-lm" / "charlm.npz").exists():
        pytest.skip("needs ../shared/data and the shipped models")
    r = evaluate(SHARED_DATA, load_line_model(WEIGHTS_DIR / "line"), limit=12, lm=load_line_lm(WEIGHTS_DIR / "line-lm"))
    assert {"beam", "beam+lm", "beam+lm+spelling"} <= set(r) and "beam+lm" in r["groups"]["spread"]
    assert r["beam+lm"]["cer"] < 0.5


@pytest.mark.parametrize("ink_height,pen", [(30, 1.5), (110, 4.0), (200, 8.0)])
def test_user_renderings_have_the_asked_size_and_pen(ink_height, pen):
    t = np.linspace(0, 2 * np.pi, 200)
    points = np.stack([t * 40, 50 + 50 * np.sin(t)], axis=1)  # one wave, 100 units tall
    ink = np.asarray(render_as(points, np.r_[np.zeros(199, bool), True], ink_height, pen)) < 128
    rows = np.flatnonzero(ink.any(axis=1))
    assert abs((rows[-1] - rows[0] + 1) - (ink_height + pen)) <= 2
    width = 2 * ndimage.distance_transform_edt(ink).max()
    assert abs(width - pen) <= max(1.5, 0.25 * pen)
