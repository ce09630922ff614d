"""Inputs that are not one character, for measuring the "not sure" answer: random scribbles and
several real characters written side by side. Made deterministically from a seed."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from models.errors import BlankImage
from models.preprocessing import Glyph, glyph_from_gray

CANVAS = 280


def _to_gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), np.float32) / 255.0


def scribbles(n: int, seed: int = 0, pen: tuple[int, int] = (8, 20)) -> list[Glyph]:
    """Random pen scribbles on a white canvas: tangles of 2-4 strokes of random curvature, drawn
    with a pen ``pen`` pixels wide (low inclusive, high exclusive)."""
    rng = np.random.default_rng(seed)
    out: list[Glyph] = []
    while len(out) < n:
        img = Image.new("L", (CANVAS, CANVAS), 255)
        draw = ImageDraw.Draw(img)
        for _ in range(rng.integers(2, 5)):
            steps = rng.integers(8, 30)
            heading = rng.uniform(0, 2 * np.pi)
            turn = rng.normal(0, 0.6, steps).cumsum()
            pts = np.cumsum(np.stack([np.cos(heading + turn), np.sin(heading + turn)], 1) * rng.uniform(8, 20), 0)
            pts = pts - pts.mean(0) + rng.uniform(80, 200, 2)
            draw.line([tuple(p) for p in np.clip(pts, 5, CANVAS - 5)], fill=0, width=int(rng.integers(*pen)))
        try:
            out.append(glyph_from_gray(_to_gray(img)))
        except BlankImage:
            continue
    return out


def side_by_side(glyphs: np.ndarray, n: int, seed: int = 0, gap: tuple[int, int] = (3, 9)) -> list[Glyph]:
    """2 or 3 real glyphs (28x28, white on black) written next to each other on one canvas,
    ``gap`` pixels apart (negative: overlapping, as in run-together writing)."""
    rng = np.random.default_rng(seed)
    out: list[Glyph] = []
    for _ in range(n):
        k = int(rng.integers(2, 4))
        picks = glyphs[rng.choice(len(glyphs), k, replace=False)]
        step = 28 + int(rng.integers(*gap))
        row = np.zeros((28, (k - 1) * step + 28), np.float32)
        for i, g in enumerate(picks):
            row[:, i * step : i * step + 28] = np.maximum(row[:, i * step : i * step + 28], g / 255)
        page = np.pad(row, 20)
        big = np.asarray(Image.fromarray(page, "F").resize((page.shape[1] * 4, page.shape[0] * 4), Image.BILINEAR))
        out.append(glyph_from_gray(1.0 - np.clip(big, 0, 1)))
    return out


def outliers(glyphs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` training outliers (uint8 glyphs, no class): two thirds scribbles, one third run-together
    characters made from ``glyphs``, through the glyph path. The seeds (``100 + seed``) differ from
    the ones ``training.evaluate`` measures with."""
    if n <= 0:
        return np.zeros((0, 28, 28), np.uint8)
    made = scribbles(n - n // 3, seed=100 + seed) + side_by_side(glyphs, n // 3, seed=100 + seed, gap=(-3, 3))
    return np.stack([g.pixels for g in made])
