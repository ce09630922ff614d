"""Drawings the benchmarks send, made as the page's 280x280 canvas makes them: a black pen 18 px
wide on white, points given in 0..1 of the canvas; and pictures encoded as files."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from models.preprocessing import png_data_url, to_png

SIZE = 280
SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]  # the strokes of a 7, as in tests/helpers.py
# the PNG compression of the files the benchmarks send: Pillow's default, with which they were
# always saved (to_png's own default, 1, makes other bytes)
PNG_LEVEL = 6


def drawing(
    points: list[tuple[float, float]], joint: str | None = None, size: int = SIZE, width: int = 18
) -> Image.Image:
    """One stroke through ``points`` on the canvas (``joint="curve"``: rounded corners); ``size``
    and ``width``: another square and pen."""
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).line([(x * size, y * size) for x, y in points], fill="black", width=width, joint=joint)
    return img


def image_bytes(img: Image.Image | np.ndarray, fmt: str = "PNG", **save) -> bytes:
    """``img`` (PIL or a uint8 array) as the bytes of a ``fmt`` file (JPEG, GIF, TIFF, WebP, ...),
    with Pillow's ``save`` options (a PNG without options: as ``to_png`` at ``PNG_LEVEL``)."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def png_url(img: Image.Image) -> str:
    """``img`` as a PNG data: URL, as the page sends the canvas: an opaque RGBA PNG, which is what
    Chromium's ``canvas.toDataURL("image/png")`` makes of the page's white canvas (until 2026-12-07
    the benchmarks sent RGB or 8-bit gray PNGs, which decode and flatten faster than a browser's)."""
    return png_data_url(to_png(img.convert("RGBA"), compress_level=PNG_LEVEL))
