"""Class probabilities -> text and ranked candidates, with look-alike characters kept together."""

from __future__ import annotations

import numpy as np

from models.errors import BadAlphabet, quoted
from models.reading.results import Candidate

# Characters that are written identically by many people (EMNIST ByClass's main confusions): when
# the answer is one of a group, the others are always shown beside it.
LOOKALIKE_GROUPS: tuple[str, ...] = (
    "0Oo",
    "1Il",
    "2Zz",
    "5Ss",
    "9gq",
    "Cc",
    "Kk",
    "Mm",
    "Pp",
    "Uu",
    "Vv",
    "Ww",
    "Xx",
    "Yy",
    "Jj",
)


def lookalikes(label: str, labels: list[str]) -> list[str]:
    """Other labels (in ``labels``) that share a look-alike group with ``label``."""
    group = next((g for g in LOOKALIKE_GROUPS if label in g), "")
    return [c for c in group if c != label and c in labels]


def top_candidates(probs: np.ndarray, labels: list[str], k: int = 5) -> list[Candidate]:
    """The ``k`` most probable labels, best first, as ``{"label", "probability"}``; the best
    label's look-alikes are always among them (they replace the least probable others)."""
    order = [int(i) for i in np.argsort(probs)[::-1]]
    must = [labels.index(c) for c in lookalikes(labels[order[0]], labels)]
    chosen = order[:k]
    for i in must:
        if i not in chosen:
            drop = next(j for j in reversed(chosen) if j != order[0] and j not in must)
            chosen[chosen.index(drop)] = i
    chosen.sort(key=lambda i: -probs[i])
    return [{"label": labels[i], "probability": round(float(probs[i]), 4)} for i in chosen]


def group_confidence(probs: np.ndarray, labels: list[str]) -> float:
    """Probability of the best label together with its look-alikes: how sure the model is about
    the shape, whichever case or digit it is."""
    best = int(np.argmax(probs))
    return float(probs[best] + sum(probs[labels.index(c)] for c in lookalikes(labels[best], labels)))


# What a user may say the character is, to read it among those classes only ("alphabet hints").
ALPHABET_HINTS: dict[str, str] = {
    "any": "",  # every class of the model
    "letter": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "upper": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "lower": "abcdefghijklmnopqrstuvwxyz",
    "digit": "0123456789",
}


def check_hint(hint: str | None, labels: list[str]) -> str:
    """``hint`` (None: ``"any"``) if it names an alphabet that shares classes with ``labels``."""
    hint = "any" if hint in (None, "") else str(hint)
    if hint not in ALPHABET_HINTS:
        raise BadAlphabet(f"Unknown alphabet {quoted(hint)}; choose one of: {', '.join(ALPHABET_HINTS)}.")
    if not hint_indices(hint, labels).size:
        raise BadAlphabet(f"This model reads none of the {hint} characters; choose one of: any, digit.")
    return hint


def hint_indices(hint: str, labels: list[str]) -> np.ndarray:
    """Indices into ``labels`` of the classes ``hint`` allows, in label order."""
    allowed = ALPHABET_HINTS[hint]
    return np.array([i for i, c in enumerate(labels) if not allowed or c in allowed], dtype=int)


def restrict(probs: np.ndarray, labels: list[str], hint: str) -> tuple[np.ndarray, list[str]]:
    """Probabilities renormalised over the classes ``hint`` allows (last axis), with their labels:
    candidates, confidence and "not sure" are then computed over those classes only."""
    if hint == "any":
        return probs, labels
    keep = hint_indices(hint, labels)
    sub = probs[..., keep]
    return sub / np.maximum(sub.sum(axis=-1, keepdims=True), 1e-12), [labels[i] for i in keep]
