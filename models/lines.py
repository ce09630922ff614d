"""Reading handwritten lines and paragraphs with the CRNN: the image is split into text lines
(levelled first, then cut at the gaps of the row profile), each line goes through
``models.preprocessing.line_from_gray`` and one forward pass of its own (so no answer depends on
another image), CTC decoding gives ``raw_text``, and optional spelling correction gives ``text``.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from models.answers import LinesAnswer
from models.charlm import LineLM
from models.ctc import alignment, beam_search, best_path_frames, confidence, greedy, texts_log_likelihood
from models.errors import BadLineRequest, BlankImage, WeightsError, quoted
from models.loading import check_meta, load_forward, read_meta
from models.preprocessing import (
    FILTER_WIDTH,
    LINE_HEIGHT,
    LINE_PREPROCESSING_VERSION,
    PAGE_MAX_PIXELS,
    STORE_LINE_HEIGHT,
    estimate_skew,
    gray_png,
    line_from_gray,
    read_gray,
    to_png,
)
from models.segmentation import PAGE_SIDE, page_ink, remove_ruling

DECODERS = ("beam", "greedy")  # beam: with the language model of models/weights/line-lm when installed
MAX_LINES = 60  # a paragraph image with more text lines than this is refused rather than read slowly
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


@dataclass
class LineRecognizer:
    """The loaded CRNN: charset, metadata and a compiled forward pass for one strip at a time."""

    name: str
    version: str
    charset: str
    meta: dict[str, Any]
    path: Path
    _forward: Any = field(repr=False)

    @property
    def labels(self) -> list[str]:
        return list(self.charset)

    def probabilities(self, strip: np.ndarray) -> np.ndarray:
        """(LINE_HEIGHT, W) uint8 strip -> (W // 4, len(charset) + 1) column probabilities."""
        return self._forward(np.asarray(strip, np.uint8)[None, :, :, None])[0]


def load_line_model(weights_dir: Path) -> LineRecognizer:
    """Load ``model.onnx`` (or ``model.keras``) + ``meta.json`` of the line model; refuses other
    preprocessing."""
    command = "python -m training.train_lines --data-dir ../shared/data"
    if not (weights_dir / "model.keras").exists():
        raise WeightsError(f"No trained line model is installed: run `{command}`.")
    meta = read_meta(weights_dir)
    check_meta(meta, weights_dir, "line", command)
    forward = load_forward(weights_dir, meta, [LINE_HEIGHT, None, 1], command, (1, LINE_HEIGHT, 64, 1))
    return LineRecognizer(meta["name"], str(meta["version"]), "".join(meta["labels"]), meta, weights_dir, forward)


class HandwritingFilter:
    """p(handwriting) of a line strip (``models.architectures.build_line_filter``): printed form
    labels, dotted rules and cut-off lines score low. Windows of a long strip are averaged."""

    def __init__(self, meta: dict, forward):
        self.meta, self.threshold, self._forward = meta, float(meta["threshold"]), forward
        self.name, self.version = meta["name"], str(meta["version"])

    def probability(self, strip: np.ndarray) -> float:
        """How likely the (LINE_HEIGHT, W) uint8 strip is handwriting."""
        return float(self._forward(filter_windows(strip)[..., None]).mean())


def filter_windows(strip: np.ndarray, most: int = 4) -> np.ndarray:
    """(k, LINE_HEIGHT, FILTER_WIDTH) windows of a strip: the strip padded on the right when
    shorter, else up to ``most`` evenly spaced windows."""
    strip = np.asarray(strip, np.uint8)
    h, w = strip.shape
    if w <= FILTER_WIDTH:
        return np.pad(strip, ((0, 0), (0, FILTER_WIDTH - w)))[None]
    starts = np.linspace(0, w - FILTER_WIDTH, min(most, -(-w // FILTER_WIDTH))).astype(int)
    return np.stack([strip[:, a : a + FILTER_WIDTH] for a in starts])


def load_line_filter(weights_dir: Path) -> HandwritingFilter | None:
    """The handwriting filter in ``weights_dir`` (``models/weights/line-filter``), or None when
    none is installed (then every line found is read); refuses other line preprocessing."""
    if not (weights_dir / "model.keras").exists():
        return None
    command = "python -m training.train_line_filter --data-dir ../shared/data"
    meta = read_meta(weights_dir)
    check_meta(meta, weights_dir, "line", command)
    shape = [LINE_HEIGHT, FILTER_WIDTH, 1]
    return HandwritingFilter(meta, load_forward(weights_dir, meta, shape, command, (1, *shape), want=1))


def split_lines(gray: np.ndarray, ruled: bool = True) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """A paragraph image -> its text lines, top to bottom: ((x, y, w, h), grayscale crop).

    The ink is levelled first (a slightly skewed paragraph), then cut into bands where the row
    profile of the ink falls to almost nothing; gaps much thinner than a line (the dot of an i) do
    not cut. A band about twice the line pitch (lines whose tails touch) is cut at the emptiest
    rows of its profile. Then every connected stroke goes whole to the band holding most of it, and
    each line's crop shows only its own strokes: a tail reaching into the next line stays with its
    word and does not appear in the next line.
    """
    ink, faint = page_ink(gray)
    if ruled:  # paper may be ruled or squared; a drawing on the page's canvas is not
        ink = remove_ruling(ink, faint)
    if not ink.any():
        raise BlankImage("Nothing to read: the image has no ink.")
    angle = estimate_skew(ink.astype(np.float32))
    level = _level(ink.astype(np.uint8) * 255, angle) > 127 if angle else ink
    profile = level.sum(axis=1).astype(float)
    bands = _bands(profile)
    if not bands:
        raise BlankImage("Nothing to read: the image has no ink.")
    bands = _split_tall_bands(bands, profile)
    if len(bands) > MAX_LINES:
        raise BadLineRequest(f"The image has more than {MAX_LINES} lines of text; send one paragraph at a time.")
    if angle:
        dark = _level(np.round((1.0 - np.clip(gray, 0, 1)) * 255).astype(np.uint8), angle)
        gray, ink = 1.0 - dark.astype(np.float32) / 255, level
    if len(bands) == 1:  # one line: no strokes to share out
        (top, bottom), reach = bands[0], (bands[0][1] - bands[0][0]) // 2
        near = ink[max(0, top - reach) : bottom + reach]
        rows, cols = np.flatnonzero(near.any(axis=1)) + max(0, top - reach), np.flatnonzero(near.any(axis=0))
        return [_crop(gray, int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)]
    owner = _assign_strokes(ink, bands)
    out = []
    for k, (top, bottom) in enumerate(bands):
        mine = owner == k
        rows, cols = np.flatnonzero(mine.any(axis=1)), np.flatnonzero(mine.any(axis=0))
        if cols.size == 0:
            continue
        reach = (bottom - top) // 2  # strokes reaching out of the band, but no stray speck far off
        a, b = max(int(rows[0]), top - reach), min(int(rows[-1]) + 1, bottom + reach)
        (x0, y0, w, h), crop = _crop(gray, a, b, int(cols[0]), int(cols[-1]) + 1)
        others = (owner[y0 : y0 + h, x0 : x0 + w] >= 0) & ~mine[y0 : y0 + h, x0 : x0 + w]
        if others.any():  # strokes of the lines above and below: paper there
            near = ink[y0 : y0 + h, x0 : x0 + w]
            paper = float(np.median(crop[~ndimage.binary_dilation(near, iterations=2)])) if (~near).any() else 1.0
            crop[ndimage.binary_dilation(others, iterations=2) & ~mine[y0 : y0 + h, x0 : x0 + w]] = paper
        out.append(((x0, y0, w, h), crop))
    return out


def _crop(gray: np.ndarray, a: int, b: int, left: int, right: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Rows a:b and columns left:right of the page with a margin of 15% of the height: (box, copy)."""
    pad = max(2, int(0.15 * (b - a)))
    y0, y1 = max(0, a - pad), min(gray.shape[0], b + pad)
    x0, x1 = max(0, left - pad), min(gray.shape[1], right + pad)
    return (x0, y0, x1 - x0, y1 - y0), gray[y0:y1, x0:x1].copy()


def _level(image: np.ndarray, angle: float) -> np.ndarray:
    """An 8-bit image (ink bright) rotated by ``angle`` degrees, new corners dark: plenty for
    cutting lines, and four times faster than rotating floats."""
    from PIL import Image

    img = Image.fromarray(image, "L").rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=0)
    return np.asarray(img)


def _bands(profile: np.ndarray) -> list[list[int]]:
    """Row ranges where the ink profile stands clear of nothing; a band much thinner than the
    tallest one close to its neighbour, or a gap much thinner than the bands beside it, joins the
    neighbour (a row of dots or accents, quotes above, the tails below). A band with almost no ink
    (under 3% of the inkiest band's: a speck or smudge far from the writing) is dropped."""
    on = profile > 0.03 * profile.max()
    runs, start = [], None
    for y, filled in enumerate(np.append(on, False)):
        if filled and start is None:
            start = y
        elif not filled and start is not None:
            runs.append([start, y])
            start = None
    if not runs:
        return []
    tallest = max(b - a for a, b in runs)
    merged = [runs[0]]
    for a, b in runs[1:]:
        prev = merged[-1]
        thin = (b - a) < 0.45 * tallest or (prev[1] - prev[0]) < 0.45 * tallest
        if (thin and a - prev[1] < 0.5 * tallest) or a - prev[1] < 0.3 * max(b - a, prev[1] - prev[0]):
            prev[1] = b
        else:
            merged.append([a, b])
    mass = [float(profile[a:b].sum()) for a, b in merged]
    return [band for band, m in zip(merged, mass, strict=True) if m >= 0.03 * max(mass)]


def _line_pitch(profile: np.ndarray) -> float | None:
    """The distance between neighbouring text lines, from the autocorrelation of the row profile
    (its first clear peak); None when the profile repeats at no distance (one line)."""
    p = profile - profile.mean()
    n = len(p)
    if n < 8 or not p.any():
        return None
    ac = np.correlate(p, p, mode="full")[n - 1 :]
    ac /= ac[0]
    smooth = np.convolve(ac, np.ones(5) / 5, mode="same")
    for lag in range(3, n - 1):
        if smooth[lag] > 0.15 and smooth[lag] >= smooth[lag - 1] and smooth[lag] >= smooth[lag + 1]:
            dip = float(smooth[:lag].min())
            if smooth[lag] - dip > 0.15:  # a real peak after a real trough, not a shoulder
                return float(lag)
    return None


def _split_tall_bands(bands: list[list[int]], profile: np.ndarray) -> list[list[int]]:
    """Cut a band about twice as tall as the line pitch (two lines whose tails touch) at the lowest
    points of its row profile. The pitch is read from the profile's autocorrelation, or, when the
    profile does not repeat clearly, taken as the typical band height."""
    pitch = _line_pitch(profile[bands[0][0] : bands[-1][1]])
    if pitch is not None:
        typical = pitch
    elif len(bands) >= 2:
        typical = float(np.median([b - a for a, b in bands]))
    else:
        return bands
    out = []
    for a, b in bands:
        count = max(2, int(np.ceil((b - a) / typical - 0.35)))  # k lines: (k - 1) pitches + one line
        if (b - a) < 1.4 * typical:
            out.append([a, b])
            continue
        smooth = np.convolve(profile[a:b], np.ones(5) / 5, mode="same")
        cuts, start = [], a
        for k in range(1, count):
            centre = a + int(k * (b - a) / count)
            lo, hi = max(start + 1, centre - int(0.3 * typical)), min(b - 1, centre + int(0.3 * typical))
            if hi <= lo:
                continue
            c = lo + int(np.argmin(smooth[lo - a : hi - a]))
            if smooth[c - a] <= 0.35 * smooth.max():
                cuts.append(c)
                start = c
        edges = [a, *cuts, b]
        out += [[x, y] for x, y in zip(edges[:-1], edges[1:], strict=True)]
    return out


def _assign_strokes(ink: np.ndarray, bands: list[list[int]]) -> np.ndarray:
    """For every ink pixel, the index of the band its connected stroke mostly lies in (-1: paper).
    A stroke outside every band goes to the nearest one."""
    owner = np.full(ink.shape, -1, np.int32)
    if len(bands) == 1:
        owner[ink] = 0
        return owner
    labels, n = ndimage.label(ink, structure=np.ones((3, 3), bool))
    if n == 0:
        return owner
    row_band = np.full(ink.shape[0], -1, np.int64)
    for k, (a, b) in enumerate(bands):
        row_band[a:b] = k
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    inside = row_band[ys] >= 0
    votes = np.bincount(lab[inside] * len(bands) + row_band[ys][inside], minlength=(n + 1) * len(bands))
    votes = votes.reshape(n + 1, len(bands))
    centres = np.array([(a + b) / 2 for a, b in bands])
    mean_y = np.bincount(lab, ys, minlength=n + 1) / np.maximum(np.bincount(lab, minlength=n + 1), 1)
    best = np.where(votes.sum(axis=1) > 0, votes.argmax(axis=1), np.abs(mean_y[:, None] - centres).argmin(axis=1))
    owner[ys, xs] = best[lab]
    return owner


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

    def correct(self, text: str, probs: np.ndarray | None = None, charset: str | None = None) -> tuple[str, list[dict]]:
        """Correct the words of a line; spaces, digits and punctuation stay as they are. Returns the
        text and the changes, ``{"raw", "corrected", "word"}`` (``word``: which word of the line,
        counted from 0), so a user can be offered the raw word back.

        With the line's column probabilities (``text`` read from them greedily or by beam search), a
        misspelt word becomes the candidate the writing supports clearly better than the raw reading:
        CTC likelihood of the candidate over the word's columns plus a little of its word frequency,
        against the same for the raw word (see ``OOV_LOG_COUNT``, ``REPLACE_MARGIN``); names are kept
        unless the writing alone prefers the replacement. Without them, the most frequent nearest
        word, names excepted."""
        frames = None
        if probs is not None and charset is not None:
            greedy_text, frames = best_path_frames(probs, charset)
            if greedy_text != text:  # beam search read it differently: align its letters to the columns
                frames = alignment(probs, text, charset)
        best = probs.argmax(axis=-1) if frames is not None else None
        changes: list[dict] = []
        words = itertools.count()  # which word of the line ``fix`` is at

        def fix(m: re.Match) -> str:
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
                changes.append({"raw": token, "corrected": new, "word": index})
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


def _same_case(word: str, like: str) -> str:
    """``word`` written in the capitalisation of ``like`` (all capitals, a capital first, or lower)."""
    if like.isupper():
        return word.upper()
    return word[0].upper() + word[1:] if like[0].isupper() else word


def decode_columns(probs: np.ndarray, charset: str, decoder: str = "beam", lm: LineLM | None = None) -> str:
    """The text of a line's column probabilities: greedily, or by beam search (with the language
    model ``lm`` when given, weighted as it was tuned)."""
    if decoder == "greedy":
        return greedy(probs, charset)
    if lm is None:
        return beam_search(probs, charset)
    return beam_search(probs, charset, **lm.decoder(charset, greedy(probs, charset)))


CUT_OFF_HEIGHT = 0.6  # a line at the image's top or bottom edge this much shorter than the tallest is cut off


def read_lines(
    data: bytes,
    model: LineRecognizer,
    decoder: str = "beam",
    correct: bool = True,
    speller: Speller | None = None,
    max_pixels: int = PAGE_MAX_PIXELS,
    ruled: bool = True,
    handwriting: HandwritingFilter | None = None,
    lm: LineLM | None = None,
) -> LinesReading:
    """Read a handwritten line or paragraph; ``.result`` is the response shape of ``"task": "line"``.
    ``ruled=False`` (a drawing on the page's canvas) skips looking for ruled lines.

    Only the handwriting comes back: a line that the image's top or bottom edge cuts off, or that
    the ``handwriting`` filter does not take for handwriting (printed form labels, dotted rules),
    is listed under ``dropped`` instead of read. When nothing is left, the likeliest line is read
    with a message that it may not be handwriting. The beam search uses the language model ``lm``
    when given."""
    if decoder not in DECODERS:
        raise BadLineRequest(f"Unknown decoder {quoted(decoder)}; choose beam or greedy.")
    gray = read_gray(data, max_pixels, side=PAGE_SIDE)
    speller = speller or (Speller.english() if correct else None)
    found = []
    for box, crop in split_lines(gray, ruled):
        try:
            found.append((box, crop, line_from_gray(crop)))
        except BlankImage:
            continue
    if not found:
        raise BlankImage("Nothing to read: the image has no writing.")
    verdicts = _handwriting_verdicts(found, gray.shape[0], handwriting)
    if all(reason for reason, _ in verdicts):  # keep the likeliest line rather than answer nothing
        best = max(range(len(found)), key=lambda k: verdicts[k][1] if verdicts[k][1] is not None else -1)
        verdicts[best] = (None, verdicts[best][1])
        message = "Not sure this is handwriting: it looks printed, ruled or cut off at the edge."
    else:
        message = None
    lines, crops, strips, dropped = [], [], [], []
    for ((x, y, w, h), crop, strip), (reason, p_hand) in zip(found, verdicts, strict=True):
        seen = {"x": x, "y": y, "w": w, "h": h} | ({} if p_hand is None else {"handwriting": round(p_hand, 4)})
        if reason:
            dropped.append(seen | {"reason": reason})
            continue
        crops.append(gray_png(crop, height=STORE_LINE_HEIGHT))
        strips.append(to_png(strip))
        probs = model.probabilities(strip)
        raw = decode_columns(probs, model.charset, decoder, lm)
        text, changes = speller.correct(raw, probs, model.charset) if correct and speller else (raw, [])
        lines.append(
            {
                "text": tidy_text(text),
                "raw_text": tidy_text(raw),
                "corrections": changes,
                "confidence": round(confidence(probs), 4),
            }
            | seen
        )
    result: LinesAnswer = {
        "task": "line",
        "text": "\n".join(line["text"] for line in lines),
        "raw_text": "\n".join(line["raw_text"] for line in lines),
        "confidence": round(float(np.mean([line["confidence"] for line in lines])), 4),
        "lines": lines,
        "decoder": decoder,
        "language_model": {"name": "line-lm", "version": lm.version} if lm is not None and decoder == "beam" else None,
        "corrected": bool(correct),
        "image": {"width": gray.shape[1], "height": gray.shape[0]},
        "model": {"name": model.name, "version": model.version},
    }
    if dropped:
        result["dropped"] = dropped
    if message:
        result["message"] = message
    return LinesReading(result, crops, strips)


def _handwriting_verdicts(found: list, height: int, handwriting: HandwritingFilter | None) -> list[tuple]:
    """Per line found, (why it is not read or None, p(handwriting) or None without a filter)."""
    tallest = max(box[3] for box, _, _ in found)
    out = []
    for (_, y, _, h), _, strip in found:
        p_hand = handwriting.probability(strip) if handwriting is not None else None
        at_edge = y <= 1 or y + h >= height - 1
        if len(found) > 1 and at_edge and h < CUT_OFF_HEIGHT * tallest:
            out.append(("cut_off", p_hand))
        elif p_hand is not None and p_hand < handwriting.threshold:
            out.append(("not_handwriting", p_hand))
        else:
            out.append((None, p_hand))
    return out


@dataclass(frozen=True)
class LinesReading:
    """A line answer with, per line, what the feedback store keeps: its crop and the strip read."""

    result: LinesAnswer
    line_inputs: list[bytes]
    line_strips: list[bytes]
    preprocessing_version: str = LINE_PREPROCESSING_VERSION
