"""CTC outputs -> text: greedy and beam-search decoding, and the edit distances behind CER/WER.

The blank is the last class (``len(charset)``), as ``models.architectures.build_crnn`` lays it out.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict

import numpy as np


def greedy(probs: np.ndarray, charset: str) -> str:
    """Best class per column, repeats collapsed, blanks dropped."""
    best = probs.argmax(axis=-1)
    blank = len(charset)
    out, prev = [], blank
    for k in best:
        if k != prev and k != blank:
            out.append(charset[k])
        prev = k
    return "".join(out)


def beam_search(probs: np.ndarray, charset: str, width: int = 16, prune: float = 1e-3) -> str:
    """CTC prefix beam search: the most probable text summed over every alignment that yields it.

    Tracks, for each prefix, the probability of ending in a blank and in its last character, so a
    doubled letter ("ll") needs a blank between its two halves, as CTC defines.
    """
    blank = len(charset)
    beams: dict[str, tuple[float, float]] = {"": (1.0, 0.0)}  # prefix -> (ends in blank, ends in char)
    for t in range(probs.shape[0]):
        p = probs[t]
        candidates = np.flatnonzero(p >= prune)
        if len(candidates) == 1 and candidates[0] == blank:  # most columns: only the blank is possible
            norm = sum(b + c for b, c in beams.values()) or 1.0
            beams = {prefix: ((b + c) / norm, 0.0) for prefix, (b, c) in beams.items()}
            continue
        nxt: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for prefix, (pb, pc) in beams.items():
            total = pb + pc
            nxt[prefix][0] += total * p[blank]  # a blank keeps the prefix
            for k in candidates:
                if k == blank:
                    continue
                ch = charset[k]
                if prefix and prefix[-1] == ch:
                    nxt[prefix][1] += pc * p[k]  # the same character continues without a blank
                    nxt[prefix + ch][1] += pb * p[k]  # a new one after a blank
                else:
                    nxt[prefix + ch][1] += total * p[k]
        top = heapq.nlargest(width, nxt.items(), key=lambda item: item[1][0] + item[1][1])
        norm = sum(b + c for _, (b, c) in top) or 1.0  # rescale: long lines would underflow
        beams = {prefix: (b / norm, c / norm) for prefix, (b, c) in top}
    return max(beams.items(), key=lambda item: item[1][0] + item[1][1])[0]


def edit_distance(a: list | str, b: list | str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning ``a`` into ``b``."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rates(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """Character and word error rates the standard way: total edit operations over total reference
    length (characters, and words split on spaces)."""
    char_edits = sum(edit_distance(r, h) for r, h in zip(references, hypotheses, strict=True))
    word_edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(references, hypotheses, strict=True))
    chars = sum(len(r) for r in references)
    words = sum(len(r.split()) for r in references)
    return {"cer": char_edits / max(chars, 1), "wer": word_edits / max(words, 1), "lines": len(references)}


def log_probability(probs: np.ndarray) -> float:
    """Sum of the best column log-probabilities: a confidence for a decoded line."""
    return float(np.sum(np.log(np.maximum(probs.max(axis=-1), 1e-12)))) if len(probs) else -math.inf
