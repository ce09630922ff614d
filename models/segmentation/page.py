"""Pages: a photo or scan with many handwritten glyphs -> text rows -> glyph boxes, in reading order.

1. The page is read at up to ``PAGE_SIDE`` pixels. The paper level is estimated locally (a grey
   closing wider than any stroke) and divided out, so uneven light and any scan resolution work;
   what is clearly darker than its surroundings is ink.
2. Printed ruling, table borders and underlines (straight runs far longer than a glyph) are found
   by morphological opening and removed; strokes they crossed are bridged again.
3. Connected pieces of ink are found; pieces of one glyph are merged (the dot of an i or j, the
   detached bar of a 5); specks are dropped; a piece much wider than the page's typical glyph is cut
   at a clear gap in its column profile (touching glyphs), and only there.
4. Glyphs are grouped into rows by following each row from left to right (so a slightly slanted
   row stays one row), rows are ordered top to bottom. A gap is a space when it is clearly wider
   than the row's gaps between the glyphs of one number or word, and always when it is wider than
   about a glyph (so a row of single digits, or of two numbers, keeps its spaces).
Each glyph's own ink then goes through ``models.preprocessing.fit_glyph``, the same step every
single glyph takes, so the classifiers see what they were trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from scipy import ndimage

from models.errors import BlankImage, TooManyPieces
from models.preprocessing import EIGHT_NEIGHBOURS, MIN_CONTRAST, PAGE_PAPER, fit_glyph, paper_ink
from models.preprocessing.ink import otsu

PAGE_SIDE = 2000  # pages are read at this longer side: a glyph on an A4 page is then 40-80 px tall


MAX_PIECES = 20_000  # more ink pieces than this after dropping specks is noise, not writing


RULE_FRACTION = 0.12  # straight ink runs longer than this share of the page side are ruling


MERGE_GAP = 0.45  # pieces of one glyph are at most this many glyph heights apart vertically


SPACE_GAP = 0.5  # a space is wider than this many glyph heights...


SPACE_OVER_GAP = 1.8  # ...and this many times the row's narrower gaps (lower quartile) between glyphs


# A gap this many glyph heights wide is a space whatever the row's other gaps are: otherwise a row
# whose gaps are all spaces ("1 2", "7 5 3") compares each with the others and keeps none. Gaps
# inside one number on tests/resources/pages are at most 0.6 heights; spaces at least 1.12.
SPACE_CLEAR = 0.9


WIDTH_RATIO = 0.7  # a typical handwritten glyph is this wide for its height


SPLIT_RATIO = 1.8  # a piece this many typical widths wide may be touching glyphs


MAX_SLANT = 0.1  # rows rise or fall at most this much per pixel (about 6 degrees)


MAX_GLYPHS = 2000  # a page with more glyphs than this is refused rather than read slowly


@dataclass
class PageGlyph:
    """One glyph on the page: its box in working-image pixels and the 28x28 to classify."""

    x: int
    y: int
    w: int
    h: int
    pixels: np.ndarray = field(repr=False)
    space_before: bool = False


@dataclass
class Page:
    """Rows of glyphs in reading order; ``scale`` maps working-image pixels to the original."""

    rows: list[list[PageGlyph]]
    size: tuple[int, int]  # working image (width, height)
    glyph_height: float  # typical glyph height in working pixels

    @property
    def glyphs(self) -> list[PageGlyph]:
        return [g for row in self.rows for g in row]


def page_ink(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ink of a page with lighting divided out and polarity handled: (ink, faint ink), binary.
    Ruling is looked for in the faint ink, so a line fading with the light is found whole."""
    ink, _ = paper_ink(gray, PAGE_PAPER)
    if float(ink.max()) < MIN_CONTRAST:
        raise BlankImage("Nothing to read: the page has no ink.")
    marked = ink[ink > 0.05]
    threshold = max(MIN_CONTRAST, 0.5 * otsu(marked) if marked.size else MIN_CONTRAST)
    return ink > threshold, ink > 0.5 * threshold


def _open_1d(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Binary opening with a straight line of ``length`` along ``axis`` (running min/max: fast).
    Each row (``axis=1``) or column (``axis=0``) is opened on its own, so only those holding at
    least ``length`` pixels are filtered: the others cannot hold such a run."""
    lines = np.flatnonzero(np.count_nonzero(mask, axis=axis) >= length)
    opened = np.zeros(mask.shape, bool)
    if lines.size:
        m = np.take(mask, lines, axis=1 - axis).astype(np.uint8)
        eroded = ndimage.minimum_filter1d(m, length, axis=axis, mode="constant", cval=0)
        runs = ndimage.maximum_filter1d(eroded, length, axis=axis, mode="constant", cval=0).astype(bool)
        if axis == 1:
            opened[lines] = runs
        else:
            opened[:, lines] = runs
    return opened


def _close_rect(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Binary closing with a (rows, columns) rectangle (separable running max, then min)."""
    m = mask.astype(np.uint8)
    grown = ndimage.maximum_filter(m, size=size, mode="constant", cval=0)
    return ndimage.minimum_filter(grown, size=size, mode="constant", cval=1).astype(bool)


def _dilate(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary dilation with a ``size`` square (``ndimage.maximum_filter``, zero outside)."""
    return ndimage.maximum_filter(mask.astype(np.uint8), size=size, mode="constant", cval=0).astype(bool)


def _near_lines(op, image: np.ndarray, lines: np.ndarray, axis: int, spread: int, reach: int) -> np.ndarray:
    """``op(image)`` computed only on the bands of rows (``axis=0``) or columns (``axis=1``) within
    ``spread`` of the ``True`` entries of ``lines``, and ``False`` elsewhere, where the caller knows
    it is (or does not use it). ``op`` is a filter whose output at a pixel depends on the pixels at
    most ``reach`` rows (columns) away: each band is filtered with that margin around it, so every
    pixel of it comes out as on the whole picture. Ruling is a few thin lines: the bands are a
    small part of a page, and filtering only them saved about 60 ms per A4 page."""
    out = np.zeros(image.shape, bool)
    at = np.flatnonzero(lines)
    if at.size == 0:
        return out
    n = image.shape[axis]
    cut = np.flatnonzero(np.diff(at) > 2 * (spread + reach))  # bands whose margins meet are one band
    for first, last in zip(at[np.r_[0, cut + 1]], at[np.r_[cut, at.size - 1]], strict=True):
        a, b = max(0, int(first) - spread), min(n, int(last) + 1 + spread)
        lo, hi = max(0, a - reach), min(n, b + reach)
        band = op(image[lo:hi] if axis == 0 else image[:, lo:hi])
        if axis == 0:
            out[a:b] = band[a - lo : b - lo]
        else:
            out[:, a:b] = band[:, a - lo : b - lo]
    return out


Pieces = tuple[np.ndarray, np.ndarray, np.ndarray]  # labels, boxes (x0, y0, x1, y1, area), their label ids


def remove_ruling(ink: np.ndarray, faint: np.ndarray | None = None) -> np.ndarray:
    """Remove long straight horizontal and vertical runs (ruling, table lines), found in ``faint``
    (default: ``ink``), then bridge the strokes that crossed them."""
    return _without_ruling(ink, faint)[0]


def _without_ruling(ink: np.ndarray, faint: np.ndarray | None = None) -> tuple[np.ndarray, Pieces | None]:
    """``remove_ruling``, with the pieces of what is left when it had to label them (ruling was
    found): the page then need not label them again (as ``_components``)."""
    h, w = ink.shape
    faint = ink if faint is None else faint
    tall = 2.5 * _rough_glyph_height(ink)  # no stroke of writing is a straight run this long
    horizontal = _open_1d(faint, int(max(25, w * RULE_FRACTION, tall)), axis=1)
    vertical = _open_1d(faint, int(max(25, h * RULE_FRACTION, tall)), axis=0)
    if not (horizontal.any() or vertical.any()):
        return ink, None
    # soft edges: each line grown by a pixel; the filters below run only near the lines
    rows_on, cols_on = horizontal.any(axis=1), vertical.any(axis=0)
    horizontal = _near_lines(lambda m: _dilate(m, 3), horizontal, rows_on, 0, 1, 2)
    vertical = _near_lines(lambda m: _dilate(m, 3), vertical, cols_on, 1, 1, 2)
    rows_on, cols_on = horizontal.any(axis=1), vertical.any(axis=0)
    rest = ink & ~(horizontal | vertical)
    # a stroke crossing a line is cut there: bridge it across the line (a horizontal line is
    # bridged vertically, a vertical one horizontally, a few pixels wide for slanted strokes), and
    # only inside the removed line, so neighbouring glyphs are never joined
    thick = int(max(_run_thickness(horizontal, axis=0), _run_thickness(vertical, axis=1))) + 2
    across_h = _near_lines(lambda m: _close_rect(m, (thick, 3)), rest, rows_on, 0, 0, thick + 1) & horizontal
    across_v = _near_lines(lambda m: _close_rect(m, (3, thick)), rest, cols_on, 1, 0, thick + 1)
    across_v &= vertical & ~horizontal
    out = rest | across_h | across_v
    # what is left of a line where writing crossed it: small pieces lying mostly on the line
    halo = lambda m: _dilate(m, 5)  # noqa: E731
    zone = _near_lines(halo, horizontal, rows_on, 0, 2, 3) | _near_lines(halo, vertical, cols_on, 1, 2, 3)
    labels, n = ndimage.label(out, structure=EIGHT_NEIGHBOURS)
    if not n:
        return out, None
    on = labels[out]  # each ink pixel's piece (counting only these: 3 ms, not 110 ms on an A4 page)
    area = _areas(on, n)
    inside = _areas(on[zone[out]], n) / np.maximum(area, 1)
    slices = ndimage.find_objects(labels)
    # no thicker than the line itself: a pen stroke lying along a line is thicker than the line's halo
    small = np.array([min(b[0].stop - b[0].start, b[1].stop - b[1].start) <= thick - 2 for b in slices])
    drop = (inside >= 0.8) & small
    out &= ~np.concatenate([[False], drop])[labels]
    # the pieces left keep their labels: a dropped piece's pixels are off in ``out`` and its label
    # is in no glyph, so ``segment`` finds the same pieces as labelling ``out`` again would
    kept = np.flatnonzero(~drop)
    return out, (labels, _boxes([slices[i] for i in kept], area[kept]), kept + 1)


def _rough_glyph_height(ink: np.ndarray) -> float:
    """The median height of the ink pieces that could be writing (before ruling is removed)."""
    labels, n = ndimage.label(ink, structure=EIGHT_NEIGHBOURS)
    if n == 0:
        return 0.0
    heights = np.array([s[0].stop - s[0].start for s in ndimage.find_objects(labels)])
    area = _areas(labels[ink], n)
    keep = (area >= 20) & (heights < 0.5 * ink.shape[0])
    return float(np.median(heights[keep])) if keep.any() else 0.0


def _areas(pieces: np.ndarray, n: int) -> np.ndarray:
    """Pixels per piece 1..n, given the piece label of each pixel to count (the ink pixels only:
    a page is 95% paper, and counting its zeros too took most of the time)."""
    return np.bincount(pieces, minlength=n + 1)[1:]


def _run_thickness(mask: np.ndarray, axis: int) -> float:
    """Median thickness of the straight lines in ``mask``: horizontal lines (``axis=0``) are runs of
    consecutive rows holding line pixels, vertical ones (``axis=1``) runs of columns."""
    on = mask.any(axis=1 - axis).astype(np.int8)
    if not on.any():
        return 0.0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on, [0]])))
    return float(np.median(edges[1::2] - edges[::2]))


def _components(ink: np.ndarray) -> Pieces:
    """The 8-connected ink pieces: labels, boxes (x0, y0, x1, y1, area) and label ids."""
    labels, n = ndimage.label(ink, structure=EIGHT_NEIGHBOURS)
    return labels, _boxes(ndimage.find_objects(labels), _areas(labels[ink], n)), np.arange(1, n + 1)


def _boxes(slices: list[tuple[slice, slice]], area: np.ndarray) -> np.ndarray:
    """Boxes (x0, y0, x1, y1, area) of pieces from their ``find_objects`` slices and areas."""
    rows = [[s[1].start, s[0].start, s[1].stop, s[0].stop, a] for s, a in zip(slices, area, strict=True)]
    return np.array(rows, np.int64).reshape(-1, 5)


def _typical_height(boxes: np.ndarray) -> float:
    """The height of a typical glyph: the median height of the larger pieces."""
    hs = boxes[:, 3] - boxes[:, 1]
    big = boxes[:, 4] >= np.percentile(boxes[:, 4], 50)
    return float(max(np.median(hs[big]), 4.0))


def _merge_groups(boxes: np.ndarray, height: float) -> list[list[int]]:
    """Groups of piece indices that make one glyph: pieces stacked over each other (mostly the same
    columns, a small vertical gap) whose union is still about one glyph tall."""
    n = len(boxes)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(boxes[:, 0])
    x0, y0, x1, y1 = (boxes[:, i].astype(float) for i in range(4))
    for a_pos, a in enumerate(order):
        for b in order[a_pos + 1 :]:
            if x0[b] > x1[a]:
                break  # sorted by left edge: no later piece overlaps a's columns
            overlap = min(x1[a], x1[b]) - max(x0[a], x0[b])
            if overlap < 0.5 * min(x1[a] - x0[a], x1[b] - x0[b]):
                continue
            gap = max(y0[a], y0[b]) - min(y1[a], y1[b])
            if gap > MERGE_GAP * height or max(y1[a], y1[b]) - min(y0[a], y0[b]) > 1.3 * height:
                continue
            parent[find(int(a))] = find(int(b))
    # a small fragment (a stroke end cut off by ruling, a broken bar) joins the glyph it nearly touches
    size = np.maximum(x1 - x0, y1 - y0)
    for a in np.flatnonzero(size < 0.5 * height):
        dx = np.maximum(0, np.maximum(x0 - x1[a], x0[a] - x1))
        dy = np.maximum(0, np.maximum(y0 - y1[a], y0[a] - y1))
        near = (np.hypot(dx, dy) <= 0.12 * height) & (size >= 0.5 * height)
        near &= (np.maximum(x1, x1[a]) - np.minimum(x0, x0[a])) <= 1.2 * height
        if near.any():
            parent[find(int(a))] = find(int(np.flatnonzero(near)[np.argmax(size[near])]))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _split(mask: np.ndarray, size: float, axis: int = 1) -> list[tuple[int, int]]:
    """Ranges along ``axis`` (1: columns, touching glyphs side by side; 0: rows, glyphs of two rows
    joined across a ruling line) of the glyphs in a piece. More than one only where the piece can
    be cut at a clear narrow waist close to where the typical glyph ``size`` says it should be."""
    w = mask.shape[axis]
    count = int(round(w / size))
    if w < SPLIT_RATIO * size or count < 2:
        return [(0, w)]
    width = size
    profile = mask.sum(axis=1 - axis).astype(float)
    cuts, start = [], 0
    for k in range(1, count):
        centre = int(round(k * w / count))
        lo, hi = max(start + 1, centre - int(0.3 * width)), min(w - 1, centre + int(0.3 * width))
        if hi <= lo:
            continue
        c = lo + int(np.argmin(profile[lo:hi]))
        if profile[c] <= 0.25 * np.median(profile[profile > 0]):
            cuts.append(c)
            start = c
    edges = [0, *cuts, w]
    return [(a, b) for a, b in pairwise(edges) if b > a]


def _row_line(row: list[PageGlyph]) -> tuple[float, float]:
    """(slope, intercept) of the line through a row's glyph centres; flat until it has three."""
    xs = np.array([g.x + g.w / 2 for g in row])
    ys = np.array([g.y + g.h / 2 for g in row])
    if len(row) < 3 or np.ptp(xs) == 0:
        return 0.0, float(np.median(ys[-3:]))
    slope = float(np.clip(np.polyfit(xs, ys, 1)[0], -MAX_SLANT, MAX_SLANT))
    return slope, float(np.median(ys - slope * xs))


def _rows(glyphs: list[PageGlyph], height: float) -> list[list[PageGlyph]]:
    """Group glyphs into rows, following each row from left to right along the line through its
    glyphs (so a slightly slanted row stays one row), and order everything."""
    rows: list[list[PageGlyph]] = []
    lines: list[tuple[float, float]] = []
    for g in sorted(glyphs, key=lambda g: g.x + g.w / 2):
        cx, cy = g.x + g.w / 2, g.y + g.h / 2
        best, best_cost = None, None
        for i, row in enumerate(rows):
            slope, intercept = lines[i]
            last = row[-1]
            if len(row) < 3:  # too few glyphs for a line: stay level with the last one
                slope, intercept = 0.0, last.y + last.h / 2
            dist = abs(cy - (slope * cx + intercept))
            if dist > 0.55 * height:
                continue
            cost = dist + 0.02 * max(0.0, g.x - (last.x + last.w))  # prefer the nearer row end
            if best_cost is None or cost < best_cost:
                best, best_cost = i, cost
        if best is None:
            rows.append([g])
            lines.append((0.0, cy))
        else:
            rows[best].append(g)
            lines[best] = _row_line(rows[best])
    rows.sort(key=lambda r: float(np.median([g.y + g.h / 2 for g in r])))
    for row in rows:
        _mark_spaces(row, height)
    return rows


def _mark_spaces(row: list[PageGlyph], height: float) -> None:
    """Set ``space_before`` on a row's glyphs: a gap wider than the row's narrow gaps suggest, or
    a clear gap (``SPACE_CLEAR`` glyph heights) in any case."""
    gaps = [g.x - (prev.x + prev.w) for prev, g in pairwise(row)]
    if not gaps:
        return
    relative = max(SPACE_GAP * height, SPACE_OVER_GAP * float(np.percentile(gaps, 25)))
    limit = min(relative, SPACE_CLEAR * height)
    for g, gap in zip(row[1:], gaps, strict=True):
        g.space_before = gap > limit


def segment(gray: np.ndarray) -> Page:
    """Grayscale page (1 = white, at most ``PAGE_SIDE``) -> rows of glyphs in reading order."""
    gray = np.asarray(gray, np.float32)
    ink, found = _without_ruling(*page_ink(gray))
    labels, boxes, ids = found or _components(ink)
    keep = boxes[:, 4] >= max(4, ink.size // 400_000)  # single pixels of grain
    if keep.sum() > MAX_PIECES:
        raise TooManyPieces(f"The page has {int(keep.sum()):,} specks of ink; this looks like noise, not writing.")
    ids = ids[keep]
    boxes = boxes[keep]
    if len(boxes) == 0:
        raise BlankImage("Nothing to read: the page has no ink.")
    height = _typical_height(boxes)
    glyphs: list[PageGlyph] = []
    pieces = []
    for group in _merge_groups(boxes, height):
        b = boxes[group]
        x0, y0, x1, y1 = int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())
        area = int(b[:, 4].sum())
        if max(x1 - x0, y1 - y0) < 0.25 * height or area < 0.02 * height * height:
            continue  # a speck, not a glyph (the dots of i and j were merged above)
        flat = (y1 - y0) < 0.12 * height and (x1 - x0) > 0.6 * height
        thin_and_tall = (x1 - x0) < 0.1 * height and (y1 - y0) > 1.6 * height
        if flat or thin_and_tall:
            continue  # a leftover piece of ruling: far flatter (or thinner and taller) than writing
        pieces.append((x0, y0, x1, y1, ids[group]))
    if not pieces:
        raise BlankImage("Nothing to read: the page has no writing.")
    height = float(np.median([p[3] - p[1] for p in pieces]))
    width = WIDTH_RATIO * height
    for x0, y0, x1, y1, members in pieces:
        mask = np.isin(labels[y0:y1, x0:x1], members)
        for t, u in _split(mask, height, axis=0):
            for a, b in _split(mask[t:u], width, axis=1):
                part = mask[t:u, a:b]
                rows_on, cols_on = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
                if rows_on.size == 0:
                    continue
                top, bottom = int(rows_on[0]), int(rows_on[-1]) + 1
                left, right = int(cols_on[0]), int(cols_on[-1]) + 1
                crop = part[top:bottom, left:right].astype(np.float32)  # this glyph's own ink only
                glyphs.append(PageGlyph(x0 + a + left, y0 + t + top, right - left, bottom - top, fit_glyph(crop)))
            if len(glyphs) > MAX_GLYPHS:
                raise TooManyPieces(f"The page has more than {MAX_GLYPHS:,} glyphs; split it into smaller images.")
    return Page(_rows(glyphs, height), (gray.shape[1], gray.shape[0]), height)
