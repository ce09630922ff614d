"""A paragraph image -> its text lines: the ink levelled, cut into bands at the gaps of the row
profile (tall bands of touching lines cut at the line pitch), each stroke given to one band."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

from models.errors import BadLineRequest, BlankImage
from models.preprocessing import (
    estimate_skew,
)
from models.segmentation.page import page_ink, remove_ruling

MAX_LINES = 60  # a paragraph image with more text lines than this is refused rather than read slowly


class FoundLine(NamedTuple):
    """One text line of a paragraph image: where it is, and its own strokes on paper."""

    box: tuple[int, int, int, int]  # (x, y, w, h) in the image's pixels (as levelled, when it was skewed)
    crop: np.ndarray  # grayscale (1 = white), the line's box with a margin; other lines' strokes painted out


def split_lines(gray: np.ndarray, ruled: bool = True) -> list[FoundLine]:
    """A paragraph image -> its text lines, top to bottom.

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
        out.append(FoundLine((x0, y0, w, h), crop))
    return out


def _crop(gray: np.ndarray, a: int, b: int, left: int, right: int) -> FoundLine:
    """Rows a:b and columns left:right of the page with a margin of 15% of the height, copied."""
    pad = max(2, int(0.15 * (b - a)))
    y0, y1 = max(0, a - pad), min(gray.shape[0], b + pad)
    x0, x1 = max(0, left - pad), min(gray.shape[1], right + pad)
    return FoundLine((x0, y0, x1 - x0, y1 - y0), gray[y0:y1, x0:x1].copy())


def _level(image: np.ndarray, angle: float) -> np.ndarray:
    """An 8-bit image (ink bright) rotated by ``angle`` degrees, new corners dark: plenty for
    cutting lines, and four times faster than rotating floats."""
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
