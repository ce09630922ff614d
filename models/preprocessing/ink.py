"""Ink from a grayscale picture: polarity, the paper level under the ink (one estimator,
``paper_ink``, with a preset for glyphs, lines and pages), the threshold that adapts to the image,
specks, and the photo of a sheet on a desk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from models.errors import BlankImage
from models.preprocessing.image import MIN_CONTRAST, WORK_SIDE, box_shrink

MIN_INK_PIXELS = 9  # fewer clearly inked pixels than this (a 3x3 dot) is no writing at all


SPECK_FRACTION = 0.02  # components with less ink than this share of the largest are noise


EDGE_FRACTION = 0.25  # smaller pieces touching the border are neighbours cut off by the crop


EIGHT_NEIGHBOURS = np.ones((3, 3), bool)


def reduce(gray: np.ndarray, side: int = WORK_SIDE) -> np.ndarray:
    """Shrink so the longer side is at most ``side``, averaging (no aliasing of thin strokes)."""
    scale = side / max(gray.shape)
    return gray if scale >= 1 else np.asarray(box_shrink(Image.fromarray(gray, "F"), scale), dtype=np.float32)


def _border(gray: np.ndarray) -> np.ndarray:
    """A ring of pixels along the image border, 5% of the shorter side wide."""
    h, w = gray.shape
    r = max(1, min(h, w) // 20)
    return np.concatenate([gray[:r].ravel(), gray[-r:].ravel(), gray[:, :r].ravel(), gray[:, -r:].ravel()])


def crop_to_sheet(gray: np.ndarray) -> np.ndarray:
    """A photo of a light sheet on a dark desk: keep only the sheet, or its dark surroundings would
    be taken for light-on-dark writing. The sheet is a large, nearly solid bright region."""
    if not _median_below_half(_border(gray)) or _median_below_half(gray):
        return gray
    bright = gray > otsu(gray)
    labels, n = ndimage.label(bright)
    if n == 0:
        return gray
    sizes = ndimage.sum_labels(bright, labels, index=np.arange(1, n + 1))
    biggest = int(np.argmax(sizes)) + 1
    ys, xs = np.nonzero(labels == biggest)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    area = (y1 - y0) * (x1 - x0)
    if sizes[biggest - 1] < 0.25 * gray.size or sizes[biggest - 1] < 0.7 * area:
        return gray  # not a sheet: a bold light glyph on a dark ground, say
    my, mx = max(1, (y1 - y0) // 33), max(1, (x1 - x0) // 33)  # stay clear of the sheet's edge
    return gray[y0 + my : y1 - my, x0 + mx : x1 - mx]


def is_light_on_dark(gray: np.ndarray) -> bool:
    """Whether the background is darker than the ink, judged by a ring of border pixels."""
    return _median_below_half(_border(gray))


def _median_below_half(values: np.ndarray) -> bool:
    """``np.median(values) < 0.5``, told by counting (a sixth of the time on a glyph's border):
    the median is below one half when more than half of the values are, and not when fewer than
    half are; only when exactly half are does the middle pair decide, as numpy averages it."""
    n, below = values.size, int(np.count_nonzero(values < 0.5))
    if n % 2 == 0 and below == n // 2:
        return bool(np.median(values) < 0.5)
    return below > n // 2


@dataclass(frozen=True)
class PaperPreset:
    """How the paper level under the ink is estimated: a grey closing (as wide as ``window``, at
    least ``min_window``, where ``window`` is the shorter side over ``window_divisor``) removes the
    strokes and leaves the lighting, a box filter half as wide (at least ``min_smooth``) smooths it.
    ``step`` > 1 estimates it on every ``step``-th pixel and spreads it back: the paper level is
    smooth, and a page is large."""

    min_window: int
    window_divisor: int
    min_smooth: int
    step: int = 1


# a glyph: the window is a quarter of the picture, so a stroke is never mistaken for paper
GLYPH_PAPER = PaperPreset(min_window=3, window_divisor=4, min_smooth=1)


# a line: half its height, and no smaller than 9 px (a thin line is still several strokes tall)
LINE_PAPER = PaperPreset(min_window=9, window_divisor=2, min_smooth=3)


# a page: wider than any pen stroke, narrower than the lighting changes, estimated at a quarter size
PAGE_PAPER = PaperPreset(min_window=15, window_divisor=25, min_smooth=3, step=4)


def paper_ink(gray: np.ndarray, preset: PaperPreset) -> tuple[np.ndarray, bool]:
    """Ink strength in [0, 1] relative to the local paper level (lighting divided out), before
    any threshold, and whether the picture was light on dark (then it is inverted first). The one
    recipe the glyph, line and page paths share; ``preset`` says how local "local" is."""
    ink, corner, inverted = paper_ink_window(gray, preset)
    return placed(ink, corner, gray.shape), inverted


def paper_ink_window(gray: np.ndarray, preset: PaperPreset) -> tuple[np.ndarray, tuple[int, int], bool]:
    """``paper_ink`` as the part of it that can hold ink, its top-left corner (y, x) in ``gray``,
    and whether the picture was inverted: on plain paper (a canvas, a clean scan) the ink is 0
    wherever the paper is at its level, so only the window round the darker pixels is computed,
    with the same operations on the same values as on the whole picture."""
    inverted = is_light_on_dark(gray)
    paper = 1.0 - gray if inverted else gray
    h, w = paper.shape
    k = max(preset.min_window, min(h, w) // preset.window_divisor)
    s = preset.step
    small = paper[::s, ::s] if s > 1 else paper
    window, smooth = max(3, k // s), max(preset.min_smooth, k // s // 2)
    level = _flat_level(small, window)
    if level is not None and level >= 1e-3:
        # the paper level is ``level`` everywhere; where the paper is no darker, the ink is exactly 0
        rows, cols = (np.flatnonzero(axis) for axis in _darker_rows_cols(paper, level))
        y0, x0 = (int(rows[0]), int(cols[0])) if rows.size else (0, 0)
        y1, x1 = (int(rows[-1]) + 1, int(cols[-1]) + 1) if rows.size else (1, 1)
        paper = paper[y0:y1, x0:x1]
        return _ink_against(paper, np.full(paper.shape, level, paper.dtype)), (y0, x0), inverted
    background = _paper_level(small, window, smooth)  # tries the shortcut again: cheap beside the closing
    if s > 1:
        background = np.repeat(np.repeat(background, s, axis=0), s, axis=1)[:h, :w]  # each value s x s
    return _ink_against(paper, background), (0, 0), inverted


def _ink_against(paper: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Ink in [0, 1], ``1 - paper / level``: the local paper level is never darker than a pixel on
    it, nor below 1e-3. ``background`` is a fresh array, and when it has the picture's float dtype
    the steps run in it (a page makes no whole-page temporaries); otherwise the same steps make
    new arrays."""
    if background.dtype != paper.dtype or background.dtype.kind != "f":
        background = np.maximum(background, paper)
        return np.clip(1.0 - paper / np.maximum(background, 1e-3), 0.0, 1.0)
    np.maximum(background, paper, out=background)
    np.maximum(background, 1e-3, out=background)
    ink = np.divide(paper, background, out=background)
    np.subtract(1.0, ink, out=ink)
    return np.clip(ink, 0.0, 1.0, out=ink)


def _darker_rows_cols(paper: np.ndarray, level: np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Which rows and which columns of ``paper`` hold a pixel darker than ``level``."""
    darker = paper < level
    return darker.any(axis=1), darker.any(axis=0)


def placed(part: np.ndarray, corner: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """``part`` put at ``corner`` (y, x) of a float32 array of ``shape`` that is 0 elsewhere."""
    if part.shape == tuple(shape):
        return part
    out = np.zeros(shape, np.float32)
    y, x = corner
    out[y : y + part.shape[0], x : x + part.shape[1]] = part
    return out


def _paper_level(paper: np.ndarray, window: int, smooth: int) -> np.ndarray:
    """The paper level under ``paper``: a grey closing ``window`` wide, then a box filter ``smooth``
    wide (both with the edge pixels repeated outwards)."""
    level = _flat_level(paper, window)
    if level is not None:
        return np.full(paper.shape, level, paper.dtype)
    closed = ndimage.grey_closing(paper, size=(window, window), mode="nearest")
    return ndimage.uniform_filter(closed, size=smooth, mode="nearest")


def _flat_level(paper: np.ndarray, window: int) -> np.float32 | None:
    """The brightest value of ``paper`` when the closing of ``_paper_level`` would be that value
    everywhere (then so is the box filter of it, exactly: a sum of equal terms over their count),
    ``None`` when that cannot be told cheaply. A canvas drawing or a clean scan is plain paper
    round thin strokes, and its 70x70 closing costs more than the rest of the glyph path.

    The closing's dilation is the brightest value everywhere when every window holds a pixel that
    bright. Every window, cut at the border or not, holds a whole tile of a grid of tiles
    ``(window + 1) // 2`` wide (the last ones in each direction narrower): so a brightest pixel in
    every tile is enough. The erosion of a constant is that constant."""
    top = paper.max()
    tile = (window + 1) // 2
    starts = [np.arange(0, n, tile) for n in paper.shape]
    has_top = np.logical_or.reduceat(np.logical_or.reduceat(paper == top, starts[0], axis=0), starts[1], axis=1)
    return top if has_top.all() else None


def _stretch(ink: np.ndarray, fallback_high: float, size: int | None = None) -> np.ndarray:
    """Ink fainter than half an Otsu threshold (at least ``MIN_CONTRAST``) is paper grain or light
    falloff and becomes 0; the 90th percentile of the rest becomes full ink (``fallback_high``
    when nothing is left). ``size``: the pixels of the whole picture when ``ink`` is a window of
    it (the rest is 0 and counts in the threshold)."""
    low = max(0.5 * otsu(ink, size), MIN_CONTRAST)
    kept = ink[ink > low]
    high = float(np.percentile(kept, 90)) if kept.size else fallback_high
    return np.clip((ink - low) / max(high - low, 1e-3), 0.0, 1.0)


def ink_map(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Ink strength in [0, 1] (1 = full ink) from a grayscale image, and whether it was inverted.

    Dark-on-light and light-on-dark both work. The paper level is estimated locally
    (``paper_ink`` with ``GLYPH_PAPER``), and everything fainter than an Otsu threshold on the
    result is treated as paper texture. Raises ``BlankImage`` when no mark is clearly darker than
    its surroundings.
    """
    ink, corner, inverted = ink_window(gray)
    return placed(ink, corner, gray.shape), inverted


def ink_window(gray: np.ndarray) -> tuple[np.ndarray, tuple[int, int], bool]:
    """``ink_map`` as a window of the picture that holds all of the ink, with its top-left corner
    (y, x) in ``gray`` and whether the picture was inverted: what the glyph path crops from."""
    ink, corner, inverted = paper_ink_window(gray, GLYPH_PAPER)
    n = max(MIN_INK_PIXELS, gray.size // 50_000)
    marked = ink[ink > 0]  # the n-th largest value lies among these (selection on a sea of zeros is slow)
    strong = float(np.partition(marked, -n)[-n]) if marked.size >= n else (0.0 if gray.size > n else float(ink.max()))
    if strong < MIN_CONTRAST:
        raise BlankImage("Nothing to read: the image has no ink.")
    return _drop_specks(_stretch(ink, strong, gray.size), corner, gray.shape), corner, inverted


def otsu(values: np.ndarray, size: int | None = None) -> float:
    """Otsu's threshold of values in [0, 1]; ``size``: as if ``values`` were that many, the rest 0."""
    hist, _ = _histogram64(values, size)
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    centers = _OTSU_CENTERS
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centers)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * (1 - w0))
    between = np.nan_to_num(between)
    return float(centers[int(np.argmax(between))])


OTSU_BINS = 64


_OTSU_EDGES = np.linspace(0.0, 1.0, OTSU_BINS + 1)  # np.histogram's edges for 64 bins over [0, 1], made once
_OTSU_EDGES.setflags(write=False)
_OTSU_CENTERS = (_OTSU_EDGES[:-1] + _OTSU_EDGES[1:]) / 2
_OTSU_CENTERS.setflags(write=False)


def _histogram64(values: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram(values, bins=64, range=(0, 1))``, bit for bit, in a fifth of the time: with
    64 bins (a power of two) ``value * 64`` is exact in floating point, so its floor is the bin
    (1.0 in the last one) and numpy's edge corrections never apply. ``size``: as if ``values``
    were that many, the rest 0."""
    v = np.asarray(values).ravel()
    zeros_beside = 0 if size is None else size - v.size
    if v.size and not (v.min() >= 0.0 and v.max() <= 1.0):  # numpy leaves values out of range out
        v = v[(v >= 0.0) & (v <= 1.0)]
    marked = v[v > 0]  # an ink map is mostly 0: counted apart, they cost nothing to bin
    bins = np.minimum((marked * OTSU_BINS).astype(np.intp), OTSU_BINS - 1)
    hist = np.bincount(bins, minlength=OTSU_BINS)
    hist[0] += v.size - marked.size + zeros_beside
    return hist, _OTSU_EDGES


def _drop_specks(ink: np.ndarray, corner: tuple[int, int] = (0, 0), shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Remove specks (components with a tiny share of the largest one's ink) and pieces of
    neighbouring writing cut off at the image border (small components touching the edge).
    ``corner`` and ``shape``: where ``ink`` lies in the whole picture when it is a window of it."""
    if not ink.any():
        return ink
    x, y, w, h = ink_bbox(ink)  # labelled inside the ink's box: the same labels, in less time
    box = ink[y : y + h, x : x + w]
    labels, n = ndimage.label(box > 0, structure=EIGHT_NEIGHBOURS)  # a 1 px diagonal stroke is one piece
    if n <= 1:
        return ink
    ids = np.arange(1, n + 1)
    mass = ndimage.sum_labels(box, labels, index=ids)
    edge = np.zeros(n + 1, bool)
    top, left = corner
    height, width = shape or ink.shape
    at_border = (top + y == 0, top + y + h == height, left + x == 0, left + x + w == width)  # the image's
    touching = [
        side for side, at in zip((labels[0], labels[-1], labels[:, 0], labels[:, -1]), at_border, strict=True) if at
    ]
    if touching:
        edge[np.unique(np.concatenate(touching))] = True
    keep = (mass >= SPECK_FRACTION * mass.max()) & ~(edge[1:] & (mass < EDGE_FRACTION * mass.max()))
    keep[np.argmax(mass)] = True
    out = np.zeros(ink.shape, np.float32)
    out[y : y + h, x : x + w] = np.where(np.concatenate([[False], keep])[labels], box, 0.0)
    return out


def ink_bbox(ink: np.ndarray) -> tuple[int, int, int, int]:
    """x, y, w, h of the non-zero ink; raises ``BlankImage`` when there is none."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise BlankImage("Nothing to read: the image has no ink.")
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
