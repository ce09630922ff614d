"""Spelling correction of a line's reading, weighed against the writing (``Speller``: a word is
replaced only when the column probabilities support the replacement clearly better than the raw
reading; names are kept unless the writing says otherwise), and the answer's text as people
write it (``tidy_text``)."""

from __future__ import annotations

import itertools
import re
import threading

import numpy as np

from models.decoding.ctc import (
    alignment,
    best_path_frames,
    texts_log_likelihood,
)
from models.reading.results import Correction, WordChange

WORD = re.compile(r"[A-Za-z]+")


CANDIDATES = 60  # dictionary words within two edits weighed against the writing, nearest first


PRIOR_WEIGHT = 0.3  # how much a word's frequency counts beside how well it fits the columns


# The raw reading is itself a candidate: when it is no dictionary word its prior is this log count,
# and a replacement must beat it by REPLACE_MARGIN (log-likelihood + prior). Names (capitalised
# inside a sentence, or all capitals) are replaced only when the writing alone fits the replacement
# better. Tuned on IAM-OnDB val1 lines and scanned names 1-800 (python -m training.tune_spelling;
# the grid is in models/weights/line/spelling-tuning.json): val1 CER 10.05% raw, 7.82% corrected
OOV_LOG_COUNT = 0.0  # a count of one


REPLACE_MARGIN = 0.5


class Speller:
    """Word-by-word spelling correction with symspellpy and its English frequency list (or a
    word list of your own: then every word is corrected to the nearest word of that list)."""

    _lock = threading.Lock()
    _default: Speller | None = None

    def __init__(self, words: list[str] | None = None):
        from symspellpy import SymSpell

        self.sym = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        # an English dictionary knows few names, so names are kept; a word list of your own is the
        # vocabulary (names included) every word is corrected to
        self.keeps_names = words is None
        if words is None:
            import importlib.resources

            path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
            self.sym.load_dictionary(str(path), term_index=0, count_index=1)
        else:
            for w in words:
                self.sym.create_dictionary_entry(w.lower(), 1)

    @classmethod
    def english(cls) -> Speller:
        with cls._lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def word(self, token: str) -> str:
        """The best correction of one word, with its capitalisation kept; short words stay."""
        from symspellpy import Verbosity

        if len(token) < 3:
            return token
        low = token.lower()
        found = self.sym.lookup(low, Verbosity.TOP, max_edit_distance=2)
        if not found or found[0].term == low:
            return token
        return _same_case(found[0].term, token)

    def line(self, text: str, probs: np.ndarray | None = None, charset: str | None = None) -> str:
        """``text`` corrected (see ``correct``)."""
        return self.correct(text, probs, charset)[0]

    def correct(
        self, text: str, probs: np.ndarray | None = None, charset: str | None = None
    ) -> tuple[str, list[WordChange]]:
        """Correct the words of a line; spaces, digits and punctuation stay as they are. Returns the
        text and the changes, ``WordChange``s ``{"raw", "corrected", "word"}`` (``word``: which word of
        the line, counted from 0), so a user can be offered the raw word back.

        With the line's column probabilities (``text`` read from them greedily or by beam search), a
        misspelt word becomes the candidate the writing supports clearly better than the raw reading:
        CTC likelihood of the candidate over the word's columns plus a little of its word frequency,
        against the same for the raw word (see ``OOV_LOG_COUNT``, ``REPLACE_MARGIN``); names are kept
        unless the writing alone prefers the replacement. Without them, the most frequent nearest
        word, names excepted."""
        fixed, changes = self._corrected(text, probs, charset)
        return fixed, [{"raw": c["raw"], "corrected": c["corrected"], "word": c["word"]} for c in changes]

    def answer(
        self, text: str, probs: np.ndarray | None = None, charset: str | None = None
    ) -> tuple[str, list[Correction]]:
        """A line as its answer gives it: ``correct``ed and written as people write (``tidy_text``),
        each change with ``start`` and ``end``, where it stands in that text."""
        return _tidied(*self._corrected(text, probs, charset))

    def _corrected(self, text: str, probs: np.ndarray | None, charset: str | None) -> tuple[str, list[Correction]]:
        """``correct``, each change with where it stands in the corrected text."""
        frames = None
        if probs is not None and charset is not None:
            greedy_text, frames = best_path_frames(probs, charset)
            if greedy_text != text:  # beam search read it differently: align its letters to the columns
                frames = alignment(probs, text, charset)
        best = probs.argmax(axis=-1) if frames is not None else None
        changes: list[Correction] = []
        words = itertools.count()  # which word of the line ``fix`` is at
        shift = 0  # how much longer the corrected text is than ``text`` before the word ``fix`` is at

        def fix(m: re.Match) -> str:
            nonlocal shift
            token, index = m.group(0), next(words)
            name = self.keeps_names and looks_like_name(text, m.start(), token)
            if frames is None:
                new = token if name else self.word(token)
            else:
                i, j = m.span()
                start = frames[i - 1] + 1 if i > 0 else 0
                while i > 0 and start < len(best) and best[start] == best[frames[i - 1]]:
                    start += 1  # the rest of the character before the word
                end = frames[j] if j < len(frames) else len(probs)
                new = self._likeliest(token, probs[start:end], charset, name)
            if new != token:
                start = m.start() + shift
                changes.append({"raw": token, "corrected": new, "word": index, "start": start, "end": start + len(new)})
                shift += len(new) - len(token)
            return new

        return WORD.sub(fix, text), changes

    def _likeliest(self, token: str, columns: np.ndarray, charset: str, name: bool = False) -> str:
        from symspellpy import Verbosity

        low = token.lower()
        if len(token) < 3 or low in self.sym.words:
            return token
        found = self.sym.lookup(low, Verbosity.ALL, max_edit_distance=2)[:CANDIDATES]
        if not found:
            return token
        words = [_same_case(item.term, token) for item in found]
        fits = texts_log_likelihood(columns, [token, *words], charset)
        if not np.isfinite(fits).any():
            return token if name else self.word(token)
        raw_fit, fits = fits[0], fits[1:]
        scores = fits + PRIOR_WEIGHT * np.log([max(item.count, 1) for item in found])
        k = int(np.argmax(scores))
        if name:  # a name stays unless the writing itself reads the dictionary word better
            return words[k] if fits[k] > raw_fit else token
        return words[k] if scores[k] > raw_fit + PRIOR_WEIGHT * OOV_LOG_COUNT + REPLACE_MARGIN else token


def looks_like_name(text: str, start: int, token: str) -> bool:
    """Whether the word ``token`` at ``start`` of ``text`` reads as a name: all capitals (two letters
    or more), or capitalised where a sentence does not begin."""
    if len(token) >= 2 and token.isupper():
        return True
    if not token[:1].isupper():
        return False
    before = text[:start].rstrip(" \"'(")
    return bool(before) and before[-1] not in ".!?:;"


# IAM's tokenisation puts a space before punctuation ("Jars ,however"); nobody writes that.
_SPACE_BEFORE = re.compile(r" +([.,;:?!'])")


_NO_SPACE_AFTER = re.compile(r"([,;:?!])(?=[A-Za-z])|(\.)(?=[A-Z][a-z])")


def tidy_text(text: str) -> str:
    """Text as people write it: no space before ``. , ; : ? ! '``, one after ``, ; : ? !`` (and after
    a full stop that ends a sentence) when a word follows, runs of spaces made one; hyphens and
    quotes stay as read."""
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _NO_SPACE_AFTER.sub(lambda m: (m.group(1) or m.group(2)) + " ", text)
    return re.sub(r" {2,}", " ", text).strip()


def _tidied(text: str, changes: list[Correction]) -> tuple[str, list[Correction]]:
    """``tidy_text`` of a corrected line, with its ``changes``' ``start`` and ``end`` moved to where
    the corrections stand in the tidy text."""
    tidy = tidy_text(text)
    # tidying only removes and adds spaces: the n-th character that is no space stays the n-th
    marks = [i for i, ch in enumerate(tidy) if not ch.isspace()]
    moved: list[Correction] = []
    for change in changes:
        start = marks[sum(not ch.isspace() for ch in text[: change["start"]])]
        moved.append(change | {"start": start, "end": start + change["end"] - change["start"]})
    return tidy, moved


def _same_case(word: str, like: str) -> str:
    """``word`` written in the capitalisation of ``like`` (all capitals, a capital first, or lower)."""
    if like.isupper():
        return word.upper()
    return word[0].upper() + word[1:] if like[0].isupper() else word
