"""CTC decoding (models/decoding/ctc.py): greedy and beam search over a line model's columns, and
the character and word error rates."""

from __future__ import annotations

import numpy as np
import pytest

from models.decoding.ctc import beam_search, edit_distance, error_rates, greedy


def ctc_probs(path: str, charset: str) -> np.ndarray:
    """One-hot-ish columns spelling ``path`` ('_' = blank)."""
    probs = np.full((len(path), len(charset) + 1), 0.01)
    for t, ch in enumerate(path):
        probs[t, len(charset) if ch == "_" else charset.index(ch)] = 1.0
    return probs / probs.sum(axis=1, keepdims=True)


def test_ctc_decoding_collapses_repeats_and_keeps_doubled_letters():
    charset = " ehlo"
    probs = ctc_probs("hh_e_ll_l_oo", charset)
    assert greedy(probs, charset) == "hello"
    assert beam_search(probs, charset) == "hello"


def test_beam_search_sums_alignments():
    """Greedy picks the best path; beam search finds the text whose paths together are likelier."""
    charset = "ab"
    probs = np.array([[0.3, 0.0, 0.7], [0.3, 0.0, 0.7]])  # columns: a, b, blank
    assert greedy(probs, charset) == ""  # blank, blank: 0.49
    assert beam_search(probs, charset) == "a"  # a_, _a, aa: 0.21 + 0.21 + 0.09 = 0.51


def test_error_rates_are_edits_over_reference_length():
    assert edit_distance("kitten", "sitting") == 3
    rates = error_rates(["the cat sat", "on the mat"], ["the bat sat", "on mat"])
    assert rates["cer"] == pytest.approx((1 + 4) / (11 + 10))
    assert rates["wer"] == pytest.approx((1 + 1) / (3 + 3))


def _reference_alignment(probs: np.ndarray, text: str, charset: str) -> list[int] | None:
    """``alignment`` as first written: a new array per move and step (the recipe the in-place
    version must match)."""
    blank = len(charset)
    if not text or any(c not in charset for c in text):
        return None
    ext = np.full(2 * len(text) + 1, blank)
    ext[1::2] = [charset.index(c) for c in text]
    n, steps = len(ext), probs.shape[0]
    skip = np.zeros(n, bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    logp = np.log(np.maximum(probs[:, ext], 1e-30))
    score = np.full(n, -np.inf)
    score[0], score[1] = logp[0, 0], logp[0, 1]
    back = np.zeros((steps, n), np.int8)
    for t in range(1, steps):
        stay, step, jump = score, np.full(n, -np.inf), np.full(n, -np.inf)
        step[1:] = score[:-1]
        jump[2:] = np.where(skip[2:], score[:-2], -np.inf)
        moves = np.stack([stay, step, jump])
        back[t] = moves.argmax(axis=0)
        score = moves.max(axis=0) + logp[t]
    state = n - 1 if score[n - 1] >= score[n - 2] else n - 2
    if not np.isfinite(score[state]):
        return None
    starts = [0] * len(text)
    for t in range(steps - 1, 0, -1):
        move = int(back[t, state])
        if move and state % 2 == 1:
            starts[state // 2] = t
        state -= move
    if state % 2 == 1:
        starts[state // 2] = 0
    return starts


def test_alignment_finds_each_character_as_the_reference_viterbi_does():
    """On random columns (some exactly tied, some with characters impossible), texts with doubled
    letters, texts too long for the columns and the empty text, ``alignment`` gives what the
    plain recipe gives."""
    from models.decoding.ctc import alignment

    charset = "abc l"
    rng = np.random.default_rng(11)
    found = 0
    for trial in range(300):
        steps = int(rng.integers(1, 30))
        probs = rng.dirichlet(np.full(len(charset) + 1, 0.3), size=steps)
        if trial % 3 == 0:
            probs = np.round(probs, 1)  # ties and zeros
        text = "".join(rng.choice(list(charset), size=int(rng.integers(0, 14))))
        got = alignment(probs, text, charset)
        assert got == _reference_alignment(probs, text, charset), trial
        found += got is not None
    assert found > 100
    assert alignment(ctc_probs("hh_e_ll_l_oo", " ehlo"), "hello", " ehlo") == [0, 3, 5, 8, 10]


def _reference_beam_search(probs, charset, width=10, prune=3e-3, lm=None, alpha=0.0, beta=0.0) -> str:
    """``beam_search`` as first written: each column's classes found on its own, the weights
    fancy-indexed (the recipe the faster loop must match)."""
    import heapq
    import math
    from collections import defaultdict

    blank = len(charset)
    use_lm = lm is not None and alpha != 0.0
    beams = {"": (1.0, 0.0)}
    for t in range(probs.shape[0]):
        p = probs[t]
        candidates = np.flatnonzero(p >= prune)
        if len(candidates) == 1 and candidates[0] == blank:
            norm = sum(b + c for b, c in beams.values()) or 1.0
            beams = {prefix: ((b + c) / norm, 0.0) for prefix, (b, c) in beams.items()}
            continue
        nxt = defaultdict(lambda: [0.0, 0.0])
        chars = [k for k in candidates.tolist() if k != blank]
        column = p[chars].tolist()
        letters = [charset[k] for k in chars]
        p_blank = float(p[blank])
        for prefix, (pb, pc) in beams.items():
            total = pb + pc
            nxt[prefix][0] += total * p_blank
            lm_weights = lm.weights(prefix, alpha, beta)[chars].tolist() if use_lm else None
            last = prefix[-1] if prefix else None
            for j, ch in enumerate(letters):
                w = column[j] * lm_weights[j] if lm_weights else column[j]
                if ch == last:
                    nxt[prefix][1] += pc * column[j]
                    nxt[prefix + ch][1] += pb * w
                else:
                    nxt[prefix + ch][1] += total * w
        top = heapq.nlargest(width, nxt.items(), key=lambda item: item[1][0] + item[1][1])
        norm = sum(b + c for _, (b, c) in top) or 1.0
        beams = {prefix: (b / norm, c / norm) for prefix, (b, c) in top}
    if use_lm:
        return max(beams.items(), key=lambda item: (item[1][0] + item[1][1]) * math.exp(alpha * lm.log_end(item[0])))[0]
    return max(beams.items(), key=lambda item: item[1][0] + item[1][1])[0]


def test_beam_search_reads_as_the_reference_recipe_with_and_without_a_language_model():
    """On random columns (peaked ones, where most offer only the blank, and flat ones offering many
    classes), with and without a small language model, the beam search gives what the plain recipe
    gives."""
    from models.decoding.charlm import CharLM, count_ngrams

    charset = "abc lt"
    texts = [("the cat", 1.0), ("a bat", 1.0), ("tall cats", 1.0), ("cab", 0.5)]
    lm = CharLM.from_counts(count_ngrams(texts, 4), 4).for_charset(charset)
    rng = np.random.default_rng(8)
    blank_only = 0
    for trial in range(120):
        steps = int(rng.integers(1, 40))
        concentration = 0.05 if trial % 2 else 0.6
        probs = rng.dirichlet(np.full(len(charset) + 1, concentration), size=steps)
        probs[rng.random(steps) < 0.4] = np.eye(len(charset) + 1)[len(charset)] * 0.999 + 0.001 / len(charset)
        blank_only += int(((probs >= 3e-3).sum(axis=1) == 1).sum())
        for kwargs in ({}, {"lm": lm, "alpha": 0.6, "beta": 1.0, "width": 16}, {"width": 3, "prune": 0.05}):
            assert beam_search(probs, charset, **kwargs) == _reference_beam_search(probs, charset, **kwargs), trial
    assert blank_only > 100
