"""Recognition service: image bytes -> the response every route and the CLI return.

request -> preprocessing -> model -> decoding -> response; nothing here knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.decoding.candidates import check_hint, group_confidence, lookalikes, restrict, top_candidates
from models.errors import UnknownTask
from models.preprocessing import (
    DEFAULT_MAX_PIXELS,
    PREPROCESSING_VERSION,
    Glyph,
    glyph_from_gray,
    png_data_url,
    read_gray,
    source_png,
    to_png,
)
from models.protocols import GlyphModel
from models.reading.personal import personal_models, writer_verdict
from models.reading.results import GlyphAnswer
from models.registry import Registry

GLYPH_TASKS = ("digit", "character")


DEFAULT_UNSURE_THRESHOLD = 0.5  # used only when a model's meta.json has no measured threshold


def available_tasks(registry: Registry) -> list[str]:
    """The glyph tasks whose weights are installed, in display order."""
    installed = registry.tasks()
    return [t for t in GLYPH_TASKS if t in installed]


def offered_tasks(registry: Registry) -> list[str]:
    """Every task a server answers: the installed glyph tasks, pages (with any glyph model) and
    lines (with a line model)."""
    glyphs = available_tasks(registry)
    return glyphs + (["page"] if glyphs else []) + (["line"] if registry.has_line() else [])


def measured_unsure(model: GlyphModel, key: str, alphabet: str = "any", default=None):
    """A "not sure" setting ``key`` of ``model``'s meta.json (``unsure``): measured for the alphabet
    hint when it was, else measured over every class, else ``default``."""
    unsure = model.meta.get("unsure", {})
    value = unsure.get("by_alphabet", {}).get(alphabet, {}).get(key)
    return value if value is not None else unsure.get(key, default)


def unsure_threshold(model: GlyphModel, override: float | None = None, alphabet: str = "any") -> float:
    """The confidence below which an answer is "not sure": configured, else measured for the
    alphabet hint (over its classes only), else measured over every class, else the default."""
    if override is not None:
        return float(override)
    return float(measured_unsure(model, "threshold", alphabet, DEFAULT_UNSURE_THRESHOLD))


def side_by_side_threshold(model: GlyphModel, alphabet: str = "any") -> float:
    """The confidence below which ink in several pieces side by side is "not sure" (measured with
    the model; above it the model's certainty wins over a broken stroke). Without a measured one:
    always."""
    return float(measured_unsure(model, "side_by_side_threshold", alphabet, 1.0001))


def doubt(
    glyph: Glyph,
    probs: np.ndarray,
    labels: list[str],
    threshold: float,
    side_by_side: float = 1.0001,
    one_character: float | None = None,
) -> str | None:
    """Why the answer should not be trusted as one glyph, or None when it can be.
    ``one_character``: how likely the glyph gate thinks it is one character at all, already
    compared with its threshold (None: no gate, or the gate is content)."""
    confidence = group_confidence(probs, labels)
    if glyph.pieces > 1 and (confidence < side_by_side or one_character is not None):  # say why: several
        return f"Not sure: this looks like {glyph.pieces} characters side by side. Write one at a time."
    if one_character is not None:
        return "Not sure: this does not look like one handwritten character."
    if confidence < threshold:
        return "Not sure: this does not look much like any single character."
    return None


def gate_threshold(gate: GlyphModel, model: GlyphModel, alphabet: str = "any") -> float:
    """The glyph gate's threshold measured with ``model`` (``unsure.glyph_gate`` in its meta.json,
    for the alphabet hint when measured) for this very gate (its name and version), else the gate's
    own: a gate retrained since the model was measured gives other probabilities."""
    measured = measured_unsure(model, "glyph_gate", alphabet) or {}
    if (measured.get("name"), measured.get("version")) != (gate.name, gate.version):
        return float(gate.meta.get("threshold", 0.0))
    return float(measured.get("threshold", gate.meta.get("threshold", 0.0)))


def one_character(gate: GlyphModel, pixels: np.ndarray) -> np.ndarray:
    """p(one character) of each (N, 28, 28) glyph, from the glyph gate."""
    return gate.probabilities(pixels)[:, gate.labels.index("character")]


def gate_doubt(gate: GlyphModel | None, model: GlyphModel, pixels: np.ndarray, alphabet: str = "any") -> float | None:
    """p(one character) from the glyph gate when it is below its threshold for ``model``, else None."""
    if gate is None:
        return None
    p = float(one_character(gate, pixels)[0])
    return p if p < gate_threshold(gate, model, alphabet) else None


def glyph_result(
    task: str,
    model: GlyphModel,
    glyph: Glyph,
    probs: np.ndarray,
    threshold: float,
    seen_png: bytes,
    alphabet: str = "any",
    one_character: float | None = None,
) -> GlyphAnswer:
    """The shared response shape for one glyph; ``seen_png`` is ``glyph.pixels`` as PNG. With an
    ``alphabet`` hint, candidates and confidence are over that alphabet's classes only."""
    probs, labels = restrict(probs, model.labels, alphabet)
    candidates = top_candidates(probs, labels, 5)
    best = candidates[0]["label"]
    reason = doubt(glyph, probs, labels, threshold, side_by_side_threshold(model, alphabet), one_character)
    result: GlyphAnswer = {
        "task": task,
        "text": "" if reason else best,
        "confidence": candidates[0]["probability"],
        "candidates": candidates,
        "lookalikes": lookalikes(best, labels),
        "unsure": reason is not None,
        "input_28x28": png_data_url(seen_png),
        "model": {"name": model.name, "version": model.version},
    }
    if alphabet != "any":
        result["alphabet"] = alphabet
    if reason:
        result["message"] = reason
    return result


@dataclass(frozen=True)
class Reading:
    """One answer with what the feedback store keeps of it."""

    result: GlyphAnswer  # the response shape
    input_png: bytes  # the input as the preprocessing received it (see ``source_png``)
    model_input_png: bytes  # the 28x28 the model saw
    preprocessing_version: str = PREPROCESSING_VERSION

    @property
    def predicted(self) -> str:
        """The top candidate, also when the answer is "not sure"."""
        return self.result["candidates"][0]["label"]


def recognize(
    data: bytes,
    task: str,
    registry: Registry,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
    profile: Path | None = None,
    alphabet: str | None = None,
    prepared: tuple[np.ndarray, Glyph] | None = None,
) -> Reading:
    """Read one image file's bytes as ``task``; raises ``PreprocessError``, ``UnknownTask`` or
    ``BadAlphabet``. With a ``profile`` folder the profile's adapted model answers, with its writer
    verdict; with an ``alphabet`` hint (``decoding.ALPHABET_HINTS``) only its classes are candidates.
    ``prepared``: ``data``'s grayscale (``read_gray``) and glyph, when the caller made them already."""
    available = available_tasks(registry)
    if task not in available:
        raise UnknownTask(task, available)
    model, writer = personal_models(registry, profile, task) if profile is not None else (registry.get(task), None)
    hint = check_hint(alphabet, model.labels)
    gray, glyph = prepared if prepared is not None else (None, None)
    if glyph is None:
        gray = read_gray(data, max_pixels)
        glyph = glyph_from_gray(gray)
    probs = model.probabilities(glyph.pixels)[0]
    seen_png = to_png(glyph.pixels)  # encoded once: for the answer and for the feedback store
    one_character = gate_doubt(registry.glyph_gate(), model, glyph.pixels, hint)
    result = glyph_result(
        task, model, glyph, probs, unsure_threshold(model, threshold, hint), seen_png, hint, one_character
    )
    if profile is not None:
        result["model"]["profile"] = profile.name
        result["writer"] = writer_verdict(writer, glyph.pixels)
    return Reading(result, source_png(data, gray), seen_png)
