"""The glyph path, as MNIST was made: ink cropped, stroke width brought into range, the longer
side fitted into 20 px with the aspect kept, padded to 28x28 and centred by centre of mass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from models.errors import BlankImage
from models.preprocessing.image import DEFAULT_MAX_PIXELS, decode, to_gray
from models.preprocessing.ink import crop_to_sheet, ink_bbox, ink_map, ink_window, reduce

# Bump whenever the output of any function below changes: weights record the version they were
# trained with, and the registry refuses to serve weights made for another version.
PREPROCESSING_VERSION = "4"


GLYPH_SIZE = 28  # model input side, as MNIST


GLYPH_BOX = 20  # the longer side of the ink is fitted into this, as MNIST


STROKE_RANGE = (1.6, 3.6)  # stroke width in output pixels that MNIST digits mostly have


MIN_GAP = 3  # pixels: in a small photo (ink 15 px tall) a 2 px gap is a pen skipping, not a new character


@dataclass(frozen=True)
class Glyph:
    """A glyph ready for a classifier, with what was learned on the way."""

    pixels: np.ndarray  # (28, 28) uint8, white ink on black, as the models expect
    ink_box: tuple[int, int, int, int]  # x, y, w, h of the ink in the (reduced) working image
    inverted: bool  # True when the input was light ink on a dark background
    pieces: int = 1  # side-by-side groups of ink as tall as a character: more than 1 is not one glyph


def stroke_width(ink: np.ndarray) -> float:
    """Typical stroke width in pixels: twice the ink area over the outline length."""
    mask = ink > 0.5
    area = int(mask.sum())
    if area == 0:
        return 0.0
    return 2.0 * area / max(int((mask & ~_eroded(mask)).sum()), 1)


def _eroded(mask: np.ndarray) -> np.ndarray:
    """``ndimage.binary_erosion(mask)`` (the 4-neighbour cross, nothing outside the image) by
    slicing: the same pixels in a sixth of the time."""
    out = np.zeros_like(mask)
    out[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return out


def normalise_stroke(ink: np.ndarray, scale: float) -> np.ndarray:
    """Thicken hairlines and thin marker strokes so that, after shrinking by ``scale``, the stroke
    width lands in ``STROKE_RANGE``: a model trained on MNIST pen strokes then reads both."""
    change = _stroke_change(ink, scale)
    return ink if change is None else _changed_stroke(ink, *change)


def _stroke_change(ink: np.ndarray, scale: float) -> tuple[str, int] | None:
    """What ``normalise_stroke`` does to ``ink``: ("dilation" or "erosion", passes), or None when
    its stroke width is in range already. Zeros round ``ink`` change nothing here (``stroke_width``
    counts pixels at the border as outline, as a zero beyond them would make them)."""
    width = stroke_width(ink) * scale
    lo, hi = STROKE_RANGE
    if width <= 0 or lo <= width <= hi:
        return None
    target = lo if width < lo else hi
    steps = int(round(abs(target - width) / scale / 2))  # a 3x3 pass changes width by 2 px
    return None if steps == 0 else ("dilation" if width < lo else "erosion", steps)


def _changed_stroke(ink: np.ndarray, kind: str, steps: int) -> np.ndarray:
    """``steps`` 3x3 cross grey dilations or erosions of ``ink`` (erosion stops before it breaks the
    glyph apart), at most 32."""
    op = ndimage.grey_dilation if kind == "dilation" else ndimage.grey_erosion
    out = ink
    for _ in range(min(steps, 32)):
        changed = op(out, footprint=np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
        if op is ndimage.grey_erosion and (changed > 0.5).sum() < 0.35 * (out > 0.5).sum():
            break  # stop before erosion breaks the glyph apart
        out = changed
    return out


def fit_glyph(ink: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Crop to the ink (``box``: its ``ink_bbox`` when the caller has it), fit the longer side into
    20 px, pad to 28x28, centre by centre of mass. The stroke is brought into range first
    (``normalise_stroke``, with room round the crop to thicken into); a stroke in range already (a
    canvas drawing) is not padded, which gives the same crop."""
    x, y, w, h = box or ink_bbox(ink)
    crop = ink[y : y + h, x : x + w]
    scale = GLYPH_BOX / max(w, h)
    change = _stroke_change(crop, scale)
    if change is not None:
        crop = _changed_stroke(np.pad(crop, 2 + int(np.ceil(STROKE_RANGE[0] / scale))), *change)  # room to thicken
    if change is not None or not _ink_on_every_edge(crop):
        x2, y2, w2, h2 = ink_bbox(crop)
        crop = crop[y2 : y2 + h2, x2 : x2 + w2]
    h2, w2 = crop.shape
    scale = GLYPH_BOX / max(w2, h2)
    size = (max(1, round(w2 * scale)), max(1, round(h2 * scale)))
    small = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0.0, 1.0)
    peak = float(small.max())
    if peak <= 0:
        raise BlankImage("Nothing to read: the image has no ink.")
    small = np.clip(small / max(peak, 0.5), 0.0, 1.0)  # faint after shrinking -> full strength
    out = np.zeros((GLYPH_SIZE, GLYPH_SIZE), np.float32)
    top, left = (GLYPH_SIZE - size[1]) // 2, (GLYPH_SIZE - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = small
    cy, cx = _centre_of_mass(out)
    # moved by at most what keeps it inside: the same pixels as rolling ``out`` (only zeros wrap round)
    top += int(np.clip(round(GLYPH_SIZE / 2 - cy), -top, GLYPH_SIZE - size[1] - top))
    left += int(np.clip(round(GLYPH_SIZE / 2 - cx), -left, GLYPH_SIZE - size[0] - left))
    glyph = np.zeros((GLYPH_SIZE, GLYPH_SIZE), np.uint8)
    glyph[top : top + size[1], left : left + size[0]] = np.round(small * 255).astype(np.uint8)
    return glyph


_ROWS = np.arange(GLYPH_SIZE, dtype=float)[:, None]
_COLS = np.arange(GLYPH_SIZE, dtype=float)[None, :]


def _centre_of_mass(out: np.ndarray) -> tuple[float, float]:
    """``ndimage.center_of_mass(out)`` of a glyph-sized array, the same sums in the same order
    without scipy's general machinery (a third of the time)."""
    total = out.sum()
    return float((out * _ROWS).sum() / total), float((out * _COLS).sum() / total)


def _ink_on_every_edge(crop: np.ndarray) -> bool:
    """Whether ``crop`` has ink in its first and last row and column (it is its own ink box)."""
    return bool(crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any())


def side_by_side_pieces(ink: np.ndarray, box: tuple[int, int, int, int] | None = None) -> int:
    """How many groups of ink stand side by side, separated by clear vertical gaps, each at least
    a third as tall as the whole: 1 for a character (the dot of an i sits above, not beside), 2 or
    more for several characters written in one image.

    A gap is a run of columns without any ink the ink map kept, at least 8% of the ink's height
    and ``MIN_GAP`` pixels wide. Counting only strong ink (above 0.5) split 340 of the 6,200
    photographed single characters (an H's faint bar, a 4 drawn in a thin pen), 16 this way; the
    wide gaps between characters written side by side are found either way. ``box``: the ink's
    ``ink_bbox`` when the caller has it."""
    x, y, w, h = box or ink_bbox(ink)
    inked = ink[y : y + h, x : x + w] > 0
    filled = np.flatnonzero(inked.any(axis=0))
    if filled.size == 0:
        return 1
    min_gap = max(MIN_GAP, int(round(0.08 * h)))
    # a piece ends where at least min_gap empty columns follow its last inked one
    ends = np.flatnonzero(np.diff(filled) - 1 >= min_gap)
    starts = np.concatenate([[filled[0]], filled[ends + 1]])
    stops = np.concatenate([filled[ends] + 1, [filled[-1] + 1]])
    pieces = zip(starts.tolist(), stops.tolist(), strict=True)
    rows_of = [np.flatnonzero(inked[:, a:b].any(axis=1)) for a, b in pieces]
    return max(1, sum(1 for r in rows_of if r.size and r[-1] - r[0] + 1 >= h / 3))


def glyph_ink(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Grayscale array (1 = white) -> the cleaned ink map a glyph is cut from, and whether the
    picture was light on dark. The first half of ``glyph_from_gray``; ``fit_glyph`` is the second."""
    return ink_map(_sheet(gray))


def _sheet(gray: np.ndarray) -> np.ndarray:
    """The working picture a glyph is looked for in: reduced, and cropped to the sheet in a photo."""
    return crop_to_sheet(reduce(np.asarray(gray, dtype=np.float32)))


def glyph_from_gray(gray: np.ndarray) -> Glyph:
    """Grayscale array (1 = white) -> model-ready glyph. The path every glyph takes. The ink is
    kept as the window that holds it (``ink_window``): every step after crops to the ink anyway."""
    ink, (top, left), inverted = ink_window(_sheet(gray))
    box = ink_bbox(ink)
    x, y, w, h = box
    return Glyph(fit_glyph(ink, box), (x + left, y + top, w, h), inverted, side_by_side_pieces(ink, box))


def glyph_from_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Glyph:
    """Image file bytes -> model-ready glyph."""
    return glyph_from_gray(to_gray(decode(data, max_pixels)))


def glyph_from_mnist(pixels: np.ndarray) -> np.ndarray:
    """A dataset image (uint8, white ink on black, any size) through the same glyph path."""
    return glyph_from_gray(1.0 - np.asarray(pixels, dtype=np.float32) / 255.0).pixels
