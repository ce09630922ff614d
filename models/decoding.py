"""Class probabilities -> text and ranked candidates."""

from __future__ import annotations

import numpy as np


def top_candidates(probs: np.ndarray, labels: list[str], k: int = 5) -> list[dict]:
    """The ``k`` most probable labels, best first, as ``{"label", "probability"}``."""
    order = np.argsort(probs)[::-1][:k]
    return [{"label": labels[i], "probability": round(float(probs[i]), 4)} for i in order]
