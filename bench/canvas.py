"""Drawings the benchmarks send, made as the page's 280x280 canvas makes them: a black pen 18 px
wide on white, points given in 0..1 of the canvas."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw

SIZE = 280
SEVEN = [(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]  # the strokes of a 7, as in tests/helpers.py


def drawing(points: list[tuple[float, float]], joint: str | None = None) -> Image.Image:
    """One stroke through ``points`` on the canvas (``joint="curve"``: rounded corners)."""
    img = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(img).line([(x * SIZE, y * SIZE) for x, y in points], fill="black", width=18, joint=joint)
    return img


def png_url(img: Image.Image) -> str:
    """``img`` as a PNG data: URL, as the page sends the canvas."""
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
