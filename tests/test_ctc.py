"""CTC decoding (models/decoding/ctc.py): greedy and beam search over a line model's columns, and
the character and word error rates."""

from __future__ import annotations

import math

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
    """``alignment`` the slow, plain way: Viterbi with a Python loop over every state and column
    (the first of equal moves kept: stay, step, skip a blank), then the whole path, then where it
    first stands on each character."""
    blank = len(charset)
    if not text or any(c not in charset for c in text):
        return None
    states = [blank]
    for c in text:
        states += [charset.index(c), blank]
    logp = np.log(np.maximum(probs[:, states], 1e-30)).tolist()
    score = [-math.inf] * len(states)
    score[0], score[1] = logp[0][0], logp[0][1]
    came = []
    for t in range(1, len(logp)):
        moves, new = [], []
        for s, label in enumerate(states):
            skip_ok = s >= 2 and label != blank and label != states[s - 2]
            options = [score[s], score[s - 1] if s >= 1 else -math.inf, score[s - 2] if skip_ok else -math.inf]
            best = max(range(3), key=options.__getitem__)
            moves.append(best)
            new.append(options[best] + logp[t][s])
        came.append(moves)
        score = new
    at = len(states) - 1 if score[-1] >= score[-2] else len(states) - 2
    if not math.isfinite(score[at]):
        return None
    path = [at]
    for moves in reversed(came):
        path.append(path[-1] - moves[path[-1]])
    path.reverse()
    return [path.index(2 * k + 1) for k in range(len(text))]


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
