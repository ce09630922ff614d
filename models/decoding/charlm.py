"""A character n-gram language model for the line decoder's beam search.

Interpolated Witten-Bell estimates over (possibly fractional) n-gram counts: the probability of a
character after a context mixes what followed that context in the training text with the estimate
after the context one character shorter, weighted by how many different characters were seen to
follow it. Lines begin with ``BOUNDARY`` context and the model also gives the probability that a
line ends (``END``), so a beam's last word is scored too.

The counts are built by ``training.train_charlm`` from text the line model may see (IAM-OnDB
training transcriptions and the word-frequency list that ships with symspellpy) and stored as
``charlm.npz`` with a ``meta.json`` that records the decoder weights chosen on validation lines:
``models.loading.charlm`` writes and reads those files.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

BOUNDARY = "\n"  # the context before a line's first character; never a character of a line


END = "\n"  # the "character" that ends a line (the same symbol: it never occurs inside a line)


def _cache_size() -> int:
    """Distributions (of contexts shorter than the model's) kept per model, and beam weights per
    charset view, the least recently used dropped first (``HWR_LM_CACHE``, default 50,000). Each is
    80 floats, about 0.8 KB with its key. Measured over 1,500 IAM-OnDB lines in one process: the
    former cache of 200,000 of each, cleared when full, grew it by 184 MB at 5.1-6.7 ms of beam
    search per line once warm; 100,000: 129 MB, 5.1-6.5 ms; 50,000: 75 MB, 6.4-6.8 ms."""
    try:
        return max(0, int(os.environ.get("HWR_LM_CACHE", "50000")))
    except ValueError:
        return 50_000


CACHE_SIZE = _cache_size()


def count_ngrams(texts: Iterable[tuple[str, float]], order: int) -> dict[str, dict[str, float]]:
    """context -> next character -> weight, for contexts of 0 to ``order - 1`` characters, over
    ``(text, weight)`` pairs; each text is a whole line (its start is the boundary, its end ``END``)."""
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    pad = BOUNDARY * (order - 1)
    for text, weight in texts:
        s = pad + text + END
        for i in range(order - 1, len(s)):
            ch = s[i]
            for k in range(order):
                counts[s[i - k : i]][ch] += weight
    return counts


@dataclass
class CharLM:
    """A loaded model: ``vocab`` (every character it knows, ``END`` first) and, per context, the
    characters seen after it with their weights, in flat arrays: ``names`` (the contexts, sorted,
    found by binary search) and ``offsets`` into ``chars`` and ``weights``. Flat arrays keep a
    model of half a million contexts at a few tens of MB in memory and quick to load."""

    order: int
    vocab: str
    names: np.ndarray  # (contexts,) str, sorted
    offsets: np.ndarray  # (contexts + 1,) int64: context i's characters are chars[offsets[i]:offsets[i + 1]]
    chars: np.ndarray  # vocab indices, uint8
    weights: np.ndarray  # float32
    meta: dict = field(default_factory=dict)
    discount: float = 0.0  # 0: Witten-Bell; otherwise absolute discounting by this much

    def __post_init__(self) -> None:
        self._dist = functools.lru_cache(maxsize=CACHE_SIZE)(self._mixed)  # per model: bounded

    @classmethod
    def from_counts(
        cls, counts: dict[str, dict[str, float]], order: int, meta: dict | None = None, discount: float = 0.0
    ) -> CharLM:
        chars = sorted({c for follow in counts.values() for c in follow} - {END})
        vocab = END + "".join(chars)
        if len(vocab) > 256:
            raise ValueError(f"{len(vocab)} characters: the model stores character indices in one byte")
        index = {c: i for i, c in enumerate(vocab)}
        names = sorted(counts)
        sizes = [len(counts[c]) for c in names]
        return cls(
            order,
            vocab,
            np.array(names, dtype=str) if names else np.array([], str),
            np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            np.array([index[c] for n in names for c in counts[n]], np.uint8),
            np.array([w for n in names for w in counts[n].values()], np.float32),
            meta or {},
            discount,
        )

    @property
    def context_count(self) -> int:
        return len(self.names)

    def seen(self, ctx: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(vocab indices, weights) of what followed ``ctx`` in training, or None if it never occurred."""
        i = int(np.searchsorted(self.names, ctx))
        if i >= len(self.names) or self.names[i] != ctx:
            return None
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.chars[a:b].astype(np.intp), self.weights[a:b].astype(np.float64)

    def distribution(self, context: str) -> np.ndarray:
        """P(next character | context) over ``vocab`` (``END`` at index 0); ``context`` is the
        text so far of the line (only its last ``order - 1`` characters matter)."""
        ctx = (BOUNDARY * (self.order - 1) + context)[-(self.order - 1) :] if self.order > 1 else ""
        # a whole context's distribution is not kept: it is only ever the last step (the beam
        # search keeps what it makes of it, ``CharsetLM.weights``); the shorter contexts it mixes
        # in are kept, each shared by many longer ones
        return self._mixed(ctx) if ctx else self._dist(ctx)

    def _mixed(self, ctx: str) -> np.ndarray:
        """P(next character | ``ctx``), mixed with the estimate after ``ctx[1:]`` (``self._dist``,
        the cached form of this)."""
        lower = self._dist(ctx[1:]) if ctx else np.full(len(self.vocab), 1.0 / len(self.vocab))
        seen = self.seen(ctx)
        if seen is None:
            return lower
        idx, weights = seen
        total, types = float(weights.sum()), len(idx)
        if self.discount:  # what each seen character gives up goes to the shorter context
            kept = np.maximum(weights - self.discount, 0.0)
            out = lower * (1.0 - kept.sum() / total)
            out[idx] += kept / total
        else:
            out = lower * (types / (total + types))
            out[idx] += weights / (total + types)
        return out

    def log_prob(self, text: str) -> float:
        """log P(text as a whole line), its end included."""
        index = {c: i for i, c in enumerate(self.vocab)}
        total = 0.0
        for i, ch in enumerate(text + END):
            k = index.get(ch)
            p = self.distribution(text[:i])[k] if k is not None else 0.0
            total += float(np.log(max(p, 1e-12)))
        return total

    def for_charset(self, charset: str) -> CharsetLM:
        """The model seen through a recogniser's charset (its class order), for the beam search."""
        return CharsetLM(self, charset)


class CharsetLM:
    """A ``CharLM`` answering in a recogniser's class order: ``log_probs(prefix)[k]`` is
    log P(charset[k] | prefix), ``log_end(prefix)`` log P(the line ends | prefix). Characters the
    language model never saw get the smallest probability it gives any character there."""

    def __init__(self, lm: CharLM, charset: str):
        self.lm = lm
        index = {c: i for i, c in enumerate(lm.vocab)}
        self._map = np.array([index.get(c, -1) for c in charset])
        self._unknown = self._map < 0
        self._weights = functools.lru_cache(maxsize=CACHE_SIZE)(self._weighted)

    def log_probs(self, prefix: str) -> np.ndarray:
        dist = self.lm.distribution(prefix)  # not kept itself: ``weights`` keeps what is made of it
        p = dist[np.maximum(self._map, 0)]
        if self._unknown.any():
            p = np.where(self._unknown, dist[1:].min() if len(dist) > 1 else 1e-6, p)
        return np.log(np.maximum(p, 1e-12))

    def weights(self, prefix: str, alpha: float, beta: float) -> np.ndarray:
        """P(charset[k] | prefix) ** alpha * e ** beta for every k: what the beam search multiplies
        a new character by (kept per context, so each is computed once per line or two)."""
        return self._weights(prefix[-(self.lm.order - 1) :] if self.lm.order > 1 else "", alpha, beta)

    def _weighted(self, context: str, alpha: float, beta: float) -> np.ndarray:
        return np.exp(alpha * self.log_probs(context) + beta)

    def log_end(self, prefix: str) -> float:
        return float(np.log(max(self.lm.distribution(prefix)[0], 1e-12)))


def block_capitals(text: str) -> bool:
    """Whether a reading is in block capitals (two letters or more, at least 80% capitals): names
    and codes on forms more often than prose, where an English language model helps less."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and sum(c.isupper() for c in letters) >= 0.8 * len(letters)


class LineLM:
    """The language model as the line decoder uses it, with the weights chosen on validation lines:
    ``alpha`` and ``beta`` (see ``models.decoding.ctc.beam_search``), the beam ``width``, and
    ``capitals_alpha``, the weight for a line the greedy reading finds in block capitals."""

    def __init__(self, lm: CharLM, alpha: float, beta: float, width: int, capitals_alpha: float):
        self.lm, self.alpha, self.beta, self.width, self.capitals_alpha = lm, alpha, beta, width, capitals_alpha
        self._views: dict[str, CharsetLM] = {}
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        return str(self.lm.meta.get("version", "1"))

    def view(self, charset: str) -> CharsetLM:
        with self._lock:
            if charset not in self._views:
                self._views[charset] = self.lm.for_charset(charset)
            return self._views[charset]

    def decoder(self, charset: str, greedy_text: str) -> dict:
        """``beam_search`` keyword arguments for one line, given its greedy reading."""
        alpha = self.capitals_alpha if block_capitals(greedy_text) else self.alpha
        return {"lm": self.view(charset), "alpha": alpha, "beta": self.beta if alpha else 0.0, "width": self.width}
