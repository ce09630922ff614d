"""CTC outputs -> text: greedy and beam-search decoding, and the edit distances behind CER/WER.

The blank is the last class (``len(charset)``), as ``models.architectures.build_crnn`` lays it out.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from typing import TypedDict

import numpy as np

from models.decoding.charlm import LineLM


def greedy(probs: np.ndarray, charset: str) -> str:
    """Best class per column, repeats collapsed, blanks dropped."""
    return best_path_frames(probs, charset)[0]


def beam_search(
    probs: np.ndarray,
    charset: str,
    width: int = 10,
    prune: float = 3e-3,
    lm=None,
    alpha: float = 0.0,
    beta: float = 0.0,
) -> str:
    """CTC prefix beam search: the most probable text summed over every alignment that yields it.

    Tracks, for each prefix, the probability of ending in a blank and in its last character, so a
    doubled letter ("ll") needs a blank between its two halves, as CTC defines. Width 10 and
    pruning characters below 0.3% read 400 validation lines exactly as width 16 and 0.1% did, in
    60% of the time.

    With a language model (``lm``: ``weights(prefix, alpha, beta)`` over the charset and
    ``log_end(prefix)``, see ``models.decoding.charlm.CharsetLM``), each new character of a prefix is weighed by
    P_lm(character | prefix) ** ``alpha`` and a bonus e ** ``beta`` (which keeps the model from
    preferring short texts), and a finished line by P_lm(end | text) ** ``alpha``.
    """
    blank = len(charset)
    use_lm = lm is not None and alpha != 0.0
    beams: dict[str, tuple[float, float]] = {"": (1.0, 0.0)}  # prefix -> (ends in blank, ends in char)
    # which classes each column offers, found for all columns at once: most columns offer only the blank
    kept = probs >= prune
    only_blank = kept[:, blank] & (np.count_nonzero(kept, axis=1) == 1)
    kept[:, blank] = False
    columns, classes = np.nonzero(kept)
    bounds = np.searchsorted(columns, np.arange(probs.shape[0] + 1)).tolist()
    classes = classes.tolist()
    for t in range(probs.shape[0]):
        if only_blank[t]:
            norm = sum(b + c for b, c in beams.values()) or 1.0
            beams = {prefix: ((b + c) / norm, 0.0) for prefix, (b, c) in beams.items()}
            continue
        p = probs[t]
        nxt: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        chars = classes[bounds[t] : bounds[t + 1]]
        column = p[chars].tolist()  # Python floats: numpy scalars make this loop several times slower
        letters = [charset[k] for k in chars]
        p_blank = float(p[blank])
        for prefix, (pb, pc) in beams.items():
            total = pb + pc
            entry = nxt[prefix]
            entry[0] += total * p_blank  # a blank keeps the prefix
            last = prefix[-1] if prefix else None
            weights = lm.weights(prefix, alpha, beta) if use_lm else None
            for k, ch, q in zip(chars, letters, column, strict=True):
                w = q * weights.item(k) if use_lm else q
                if ch == last:
                    entry[1] += pc * q  # the same character continues without a blank
                    nxt[prefix + ch][1] += pb * w  # a new one after a blank
                else:
                    nxt[prefix + ch][1] += total * w
        top = heapq.nlargest(width, nxt.items(), key=lambda item: item[1][0] + item[1][1])
        norm = sum(b + c for _, (b, c) in top) or 1.0  # rescale: long lines would underflow
        beams = {prefix: (b / norm, c / norm) for prefix, (b, c) in top}
    if use_lm:
        return max(beams.items(), key=lambda item: (item[1][0] + item[1][1]) * math.exp(alpha * lm.log_end(item[0])))[0]
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


class ErrorRates(TypedDict):
    """How far readings are from their references (what the line model's meta.json reports)."""

    cer: float  # character error rate
    wer: float  # word error rate
    lines: int  # how many lines were compared


def error_rates(references: list[str], hypotheses: list[str]) -> ErrorRates:
    """Character and word error rates the standard way: total edit operations over total reference
    length (characters, and words split on spaces)."""
    char_edits = sum(edit_distance(r, h) for r, h in zip(references, hypotheses, strict=True))
    word_edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(references, hypotheses, strict=True))
    chars = sum(len(r) for r in references)
    words = sum(len(r.split()) for r in references)
    return {"cer": char_edits / max(chars, 1), "wer": word_edits / max(words, 1), "lines": len(references)}


def confidence(probs: np.ndarray) -> float:
    """How sure the reading of a line is: the geometric mean of each column's best probability."""
    return float(np.exp(np.mean(np.log(np.maximum(probs.max(axis=-1), 1e-9))))) if len(probs) else 0.0


def best_path_frames(probs: np.ndarray, charset: str) -> tuple[str, list[int]]:
    """The greedy text and, for each of its characters, the column where it was emitted."""
    best = probs.argmax(axis=-1)
    blank = len(charset)
    text, frames, prev = [], [], blank
    for t, k in enumerate(best):
        if k != prev and k != blank:
            text.append(charset[k])
            frames.append(t)
        prev = k
    return "".join(text), frames


def text_log_likelihood(probs: np.ndarray, text: str, charset: str) -> float:
    """log P(text | columns) under CTC: every alignment of ``text`` to these columns, summed.
    -inf when the text cannot fit or has characters outside ``charset``."""
    return float(texts_log_likelihood(probs, [text], charset)[0])


def texts_log_likelihood(probs: np.ndarray, texts: list[str], charset: str) -> np.ndarray:
    """``text_log_likelihood`` of several texts at once: the forward algorithm over every text's
    states together, rescaled per column so long lines do not underflow."""
    blank, steps = len(charset), probs.shape[0]
    known = [all(c in charset for c in t) for t in texts]
    labels = [[charset.index(c) for c in t] if ok else [] for t, ok in zip(texts, known, strict=True)]
    longest = max((len(x) for x in labels), default=0)
    states = 2 * longest + 1
    ext = np.full((len(texts), states), blank)
    valid = np.zeros((len(texts), states), bool)
    for k, x in enumerate(labels):
        ext[k, 1 : 2 * len(x) : 2] = x
        valid[k, : 2 * len(x) + 1] = True
    skip = np.zeros_like(valid)  # a character may follow the previous one directly unless they are equal
    skip[:, 3::2] = (ext[:, 3::2] != ext[:, 1:-2:2]) & valid[:, 3::2]
    out = np.full(len(texts), -np.inf)
    if steps == 0:
        return out
    alpha = np.zeros((len(texts), states))
    alpha[:, 0] = probs[0, blank]
    if states > 1:
        alpha[:, 1] = probs[0, ext[:, 1]] * valid[:, 1]
    log_scale = np.zeros(len(texts))
    for t in range(1, steps):
        total = alpha.sum(axis=1)
        alive = total > 0
        alpha[alive] /= total[alive, None]
        log_scale[alive] += np.log(total[alive])
        nxt = alpha.copy()
        nxt[:, 1:] += alpha[:, :-1]
        nxt[:, 2:] += np.where(skip[:, 2:], alpha[:, :-2], 0.0)
        alpha = nxt * probs[t][ext] * valid
    for k, x in enumerate(labels):
        if not known[k]:
            continue
        last = 2 * len(x)
        end = alpha[k, last] + (alpha[k, last - 1] if last > 0 else 0.0)
        if end > 0:
            out[k] = math.log(end) + log_scale[k]
    return out


def alignment(probs: np.ndarray, text: str, charset: str) -> list[int] | None:
    """The column where each character of ``text`` begins in its likeliest CTC alignment (Viterbi
    over the states of the text with blanks between); None when the text cannot fit."""
    blank = len(charset)
    if not text or any(c not in charset for c in text):
        return None
    ext = np.full(2 * len(text) + 1, blank)
    ext[1::2] = [charset.index(c) for c in text]
    n, steps = len(ext), probs.shape[0]
    skip = np.zeros(n, bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    logp = np.log(np.maximum(probs[:, ext], 1e-30))
    # scores live behind two states that are never reached, so a state's predecessors are slices;
    # every step works in place (a new array per move took 1.2 ms per line, now 0.5)
    padded = np.full(n + 2, -np.inf)
    score, step, prev2 = padded[2:], padded[1:-1], padded[:-2]
    score[0], score[1] = logp[0, 0], logp[0, 1]
    barred = np.where(skip, 0.0, -np.inf)  # added to a jump: -inf where the blank cannot be skipped
    back = np.zeros((steps, n), np.int8)  # 0: same state, 1: from the previous, 2: skipped a blank
    jump, best = np.empty(n), np.empty(n)
    step_wins, jump_wins = np.empty(n, bool), np.empty(n, bool)
    for t in range(1, steps):
        np.add(prev2, barred, out=jump)
        np.greater(step, score, out=step_wins)  # ties go to the earlier move, as argmax would
        np.maximum(score, step, out=best)
        np.greater(jump, best, out=jump_wins)
        np.maximum(best, jump, out=best)
        back[t][step_wins] = 1
        back[t][jump_wins] = 2
        np.add(best, logp[t], out=score)
    state = n - 1 if score[n - 1] >= score[n - 2] else n - 2
    if not np.isfinite(score[state]):
        return None
    starts = [0] * len(text)
    for t in range(steps - 1, 0, -1):
        move = int(back[t, state])
        if move and state % 2 == 1:  # this character's first column
            starts[state // 2] = t
        state -= move
    if state % 2 == 1:
        starts[state // 2] = 0
    return starts


DECODERS = ("beam", "greedy")  # beam: with the language model of models/weights/line-lm when installed


def decode_columns(probs: np.ndarray, charset: str, decoder: str = "beam", lm: LineLM | None = None) -> str:
    """The text of a line's column probabilities: greedily, or by beam search (with the language
    model ``lm`` when given, weighted as it was tuned)."""
    if decoder == "greedy":
        return greedy(probs, charset)
    if lm is None:
        return beam_search(probs, charset)
    return beam_search(probs, charset, **lm.decoder(charset, greedy(probs, charset)))
