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
