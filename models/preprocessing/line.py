"""The line path: a text line's ink, levelled, uprighted, trimmed and brought to the line
model's height with the aspect kept."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from models.errors import BlankImage
from models.preprocessing.image import MIN_CONTRAST, box_shrink
from models.preprocessing.ink import EIGHT_NEIGHBOURS, LINE_PAPER, _stretch, ink_bbox, paper_ink

# Line models record this version, as glyph models record PREPROCESSING_VERSION; bump on any change.
LINE_PREPROCESSING_VERSION = "2"


LINE_HEIGHT = 48  # model input height of a text line; width follows the aspect ratio
FILTER_WIDTH = 256  # the handwriting filter reads windows of this many strip columns


LINE_PAD = 3  # empty rows above and below the ink, so strokes never touch the edge


MAX_LINE_WIDTH = 2400  # a longer line is shrunk to this width (the model reads about 10 px per character)


MAX_SKEW_DEG = 10.0  # rotations tried when levelling a line


MAX_SLANT = 1.0  # shears tried when uprighting slanted writing (1.0 = 45 degrees)


def line_ink(gray: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] of a line image (1 = white paper in ``gray``), lighting divided out.

    Like ``ink_map`` (``paper_ink`` with ``LINE_PAPER``) but keeps small marks (dots, commas,
    periods matter in text); only specks far smaller than a stroke are dropped.
    Raises ``BlankImage`` when there is no ink.
    """
    ink, _ = paper_ink(gray, LINE_PAPER)
    if not np.any(ink >= MIN_CONTRAST):
        raise BlankImage("Nothing to read: the image has no ink.")
    ink = _stretch(ink, 1.0)
    h = ink.shape[0]
    labels, n = ndimage.label(ink > 0, structure=EIGHT_NEIGHBOURS)
    if n > 1:
        area = np.bincount(labels.ravel(), minlength=n + 1)
        tiny = area < max(2, int(0.0004 * h * h))  # grain, far smaller than the dot of an i
        tiny[0] = False
        ink[tiny[labels]] = 0.0
    if not ink.any():
        raise BlankImage("Nothing to read: the image has no ink.")
    return ink.astype(np.float32)


def _crop_ink(ink: np.ndarray, trim: float = 0.002) -> np.ndarray:
    """Crop to the ink, leaving out the outermost ``trim`` share of ink mass above and below and
    half that left and right: a stray speck far from the line must not set its height."""
    x, y, w, h = ink_bbox(ink)
    ink = ink[y : y + h, x : x + w]
    rows = np.cumsum(ink.sum(axis=1))
    cols = np.cumsum(ink.sum(axis=0))
    top, bottom = np.searchsorted(rows, [trim * rows[-1], (1 - trim) * rows[-1]])
    left, right = np.searchsorted(cols, [trim / 2 * cols[-1], (1 - trim / 2) * cols[-1]])
    return ink[top : bottom + 1, left : right + 1]


def _shrink_for_search(ink: np.ndarray, height: int = 32) -> np.ndarray:
    """A small copy for estimating skew and slant quickly."""
    scale = height / max(ink.shape[0], 1)
    return ink if scale >= 1 else np.asarray(box_shrink(Image.fromarray(ink, "F"), scale))


def affine(ink: np.ndarray, shear: float = 0.0, angle_deg: float = 0.0) -> np.ndarray:
    """Rotate by ``angle_deg`` and shear by ``shear`` (x += shear * (y - centre)), keeping all ink."""
    img = Image.fromarray(ink, "F")
    if angle_deg:
        img = img.rotate(angle_deg, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=0.0)
    if shear:
        h = img.height
        extra = int(np.ceil(abs(shear) * h))
        w = img.width + extra
        offset = 0.0 if shear > 0 else -shear * h  # output x = input x + shear * y + offset, all >= 0
        coeffs = (1.0, -shear, -offset, 0.0, 1.0, 0.0)  # inverse map: input from output
        img = img.transform((w, h), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR, fillcolor=0.0)
    return np.asarray(img, dtype=np.float32)


def _sharpness(positions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each row of ``positions`` (k, n), the sum of squares of the histogram of those positions
    (unit bins, each point split linearly between its two nearest bins, weighted): how sharply the
    points bunch up. Projecting ink this way stands in for resampling the image k times."""
    k = positions.shape[0]
    low = np.floor(positions)
    frac = positions - low
    index = (low - low.min()).astype(np.int64)
    bins = int(index.max()) + 2
    index += (np.arange(k) * bins)[:, None]
    hist = np.bincount(index.ravel(), (weights * (1 - frac)).ravel(), minlength=k * bins)
    hist += np.bincount((index + 1).ravel(), (weights * frac).ravel(), minlength=k * bins)
    return (hist.reshape(k, bins) ** 2).sum(axis=1)


def estimate_skew(ink: np.ndarray, height: int = 48) -> float:
    """The rotation (degrees, as ``affine`` takes it) that makes the row profile sharpest: text
    lines lie level. Every angle from -10 to 10 degrees is tried, 1 degree apart, on a copy at
    most ``height`` pixels high."""
    small = _shrink_for_search(ink, height)
    ys, xs = np.nonzero(small)
    if ys.size == 0:
        return 0.0
    angles = np.arange(-MAX_SKEW_DEG, MAX_SKEW_DEG + 0.01, 1.0)
    theta = np.radians(angles)[:, None]
    x, y = xs - small.shape[1] / 2, ys - small.shape[0] / 2
    rows = np.cos(theta) * y - np.sin(theta) * x  # where each ink pixel lands after the rotation
    return float(angles[int(np.argmax(_sharpness(rows, np.broadcast_to(small[ys, xs], rows.shape))))])


def estimate_slant(ink: np.ndarray) -> float:
    """The shear that uprights the writing (apply it with ``affine(ink, shear=...)``): the one that
    makes the column profile of the strokes sharpest, since upright strokes fill whole columns."""
    small = _shrink_for_search(ink, 32)
    ys, xs = np.nonzero(small > 0.3)
    if ys.size == 0:
        return 0.0
    shears = np.linspace(-MAX_SLANT, MAX_SLANT, 21)
    cols = xs + shears[:, None] * (ys - small.shape[0] / 2)  # where each stroke pixel lands after the shear
    return float(shears[int(np.argmax(_sharpness(cols, np.ones_like(cols))))])


def line_from_gray(gray: np.ndarray) -> np.ndarray:
    """Grayscale image of one handwritten line (1 = white) -> (LINE_HEIGHT, W) uint8 strip, white
    ink on black: polarity, lighting and grain handled, levelled, slant removed, margins trimmed,
    height normalised with the aspect ratio kept. The path every line takes, in training too."""
    ink = _crop_ink(line_ink(np.asarray(gray, dtype=np.float32)))
    angle = estimate_skew(ink)
    if angle:
        ink = _crop_ink(affine(ink, angle_deg=angle))
    shear = estimate_slant(ink)
    if shear:
        ink = _crop_ink(affine(ink, shear=shear))
    target = LINE_HEIGHT - 2 * LINE_PAD
    scale = target / ink.shape[0]
    width = min(MAX_LINE_WIDTH, max(1, round(ink.shape[1] * scale)))
    small = np.asarray(Image.fromarray(ink, "F").resize((width, target), Image.Resampling.BOX))
    out = np.zeros((LINE_HEIGHT, width + 2 * LINE_PAD), np.float32)
    out[LINE_PAD : LINE_PAD + target, LINE_PAD : LINE_PAD + width] = np.clip(small / max(small.max(), 0.5), 0, 1)
    return np.round(out * 255).astype(np.uint8)
