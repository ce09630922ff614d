"""Pages with known ground truth, composed from real handwritten glyphs (``training.compose_pages``
writes them; tests and ``bench/pages.py`` compose their own), and filled-in handwriting sheets.

Each page is a sheet of paper (uneven light, grain) with printed ruling (none, lines, squares or a
table), rows of numbers written with a slight slant of the row, varying size and spacing, then
blur, noise, a random resolution as a phone photo or scan would have. Its truth holds the text and
every glyph's box. The same seed and sources give the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RULINGS = ("none", "lines", "squares", "table")


def glyph_sources(mnist_npz: Path, photo_dir: Path | None) -> list[tuple[np.ndarray, str]]:
    """(ink image with 1 = ink, label) pairs: MNIST digits and photographed digits."""
    d = np.load(mnist_npz)
    out = [(x.astype(np.float32) / 255.0, str(y)) for x, y in zip(d["x"], d["y"], strict=True)]
    for f in sorted(photo_dir.rglob("DIGIT_*.png")) if photo_dir else []:
        img = Image.open(f)
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            bg = Image.new("RGBA", img.size, "white")
            img = Image.alpha_composite(bg, img)
        gray = np.asarray(img.convert("L"), np.float32) / 255.0
        ink = np.clip((np.median(gray) - gray) / max(np.median(gray) - gray.min(), 1e-3), 0, 1)
        out.append((ink, f.name.split("_")[1]))
    return out


def _ruling(draw: ImageDraw.ImageDraw, kind: str, size: tuple[int, int], step: int, rng) -> None:
    w, h = size
    colour = int(rng.integers(90, 170))
    width = int(rng.integers(1, 4))
    if kind in ("lines", "squares", "table"):
        for y in range(step, h, step):
            draw.line([(0, y), (w, y)], fill=colour, width=width)
    if kind == "squares":
        for x in range(step // 2, w, step // 2):
            draw.line([(x, 0), (x, h)], fill=colour, width=1)
        for y in range(step // 2, h, step):
            draw.line([(0, y), (w, y)], fill=colour, width=1)
    if kind == "table":
        for x in range(int(w * 0.08), w, int(w * 0.28)):
            draw.line([(x, 0), (x, h)], fill=colour, width=width + 1)


def compose_page(sources, rng, ruling: str, min_width: int = 1400, max_width: int = 2400) -> tuple[Image.Image, dict]:
    """One page image and its truth: text (rows joined by newlines) and glyph boxes."""
    w = int(rng.integers(min_width, max_width))
    h = int(w * 1.3)
    glyph_h = int(rng.integers(int(w * 0.03), int(w * 0.05)))
    row_step = int(glyph_h * rng.uniform(1.9, 2.4))
    page = blank_page(rng, (w, h), ruling, row_step)
    ink_layer = np.zeros_like(page)
    rows, boxes = [], []
    top = int(row_step * 0.4)
    while top + glyph_h * 1.3 < h - row_step * 0.3 and len(rows) < 10:
        rows.append(write_row(sources, rng, ink_layer, top, glyph_h, boxes, len(rows)))
        top += row_step
    truth = {"text": "\n".join(rows), "glyphs": boxes, "ruling": ruling, "width": w, "height": h}
    return photographed(page, ink_layer, rng), truth


def blank_page(rng, size: tuple[int, int], ruling: str, row_step: int) -> np.ndarray:
    """Paper (0-1 floats) under uneven light, with its printed ``ruling``."""
    w, h = size
    paper = np.full((h, w), rng.uniform(0.82, 0.97), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    paper *= 1.0 - 0.18 * (xx / w) * rng.uniform(0.3, 1.0) - 0.1 * (yy / h)  # uneven light
    img = Image.fromarray(np.clip(paper * 255, 0, 255).astype(np.uint8))
    _ruling(ImageDraw.Draw(img), ruling, size, row_step, rng)
    return np.asarray(img, np.float32) / 255.0


def write_row(sources, rng, ink_layer: np.ndarray, top: int, glyph_h: int, boxes: list, row: int) -> str:
    """Groups of 1-5 glyphs along one slanted row, drawn into ``ink_layer`` (their boxes appended
    to ``boxes``); returns the row's text."""
    h, w = ink_layer.shape
    x = int(rng.integers(int(w * 0.05), int(w * 0.12)))
    slant = rng.uniform(-0.03, 0.03)
    text = ""
    while True:
        group = int(rng.integers(1, 6))
        if x + group * glyph_h * 0.9 > w * 0.92:
            return text
        if text:
            text += " "
        for _ in range(group):
            ink, label = sources[int(rng.integers(len(sources)))]
            glyph = _fit(ink, int(glyph_h * rng.uniform(0.85, 1.15)))
            gy = int(top + slant * (x - w * 0.05) + rng.normal(0, glyph_h * 0.04))
            gy = max(0, min(h - glyph.shape[0], gy))
            if x + glyph.shape[1] >= w:
                break
            region = ink_layer[gy : gy + glyph.shape[0], x : x + glyph.shape[1]]
            np.maximum(region, glyph, out=region)
            gh, gw = glyph.shape
            boxes.append({"x": x, "y": gy, "w": int(gw), "h": int(gh), "text": label, "line": row})
            text += label
            x += gw + int(glyph_h * rng.uniform(0.2, 0.45))
        x += int(glyph_h * rng.uniform(0.9, 1.6))


def photographed(page: np.ndarray, ink_layer: np.ndarray, rng) -> Image.Image:
    """The ink laid on the paper in a pen's darkness, with sensor noise and a lens's blur."""
    pen = rng.uniform(0.05, 0.25)  # ink darkness: pencil to black pen
    page = page * (1 - ink_layer) + pen * ink_layer
    page = np.clip(page + rng.normal(0, 0.012, page.shape), 0, 1)
    return Image.fromarray((page * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))


def compose_sheet(sources, rng, per_row: int = 6, order: str = "0123456789", glyph_h: int = 60) -> Image.Image:
    """A filled-in personal sheet (see ``models.handwriting_sheets``): one row per character of ``order``,
    ``per_row`` samples each (an int, or a list per row), on lined paper."""
    counts = per_row if isinstance(per_row, list) else [per_row] * len(order)
    by_label: dict[str, list[np.ndarray]] = {}
    for ink, label in sources:
        by_label.setdefault(label, []).append(ink)
    row_step = int(glyph_h * 2)
    w, h = int(glyph_h * (max(counts) * 1.4 + 2)), row_step * (len(order) + 1)
    img = Image.new("L", (w, h), 240)
    _ruling(ImageDraw.Draw(img), "lines", (w, h), row_step, rng)
    page = np.asarray(img, np.float32) / 255.0
    ink_layer = np.zeros_like(page)
    for r, (d, n) in enumerate(zip(order, counts, strict=True)):
        x = int(glyph_h * 0.8)
        for _ in range(n):
            glyph = _fit(by_label[d][int(rng.integers(len(by_label[d])))], int(glyph_h * rng.uniform(0.85, 1.1)))
            y = int(r * row_step + row_step * 0.9 - glyph.shape[0])
            region = ink_layer[y : y + glyph.shape[0], x : x + glyph.shape[1]]
            np.maximum(region, glyph[: region.shape[0], : region.shape[1]], out=region)
            x += glyph.shape[1] + int(glyph_h * rng.uniform(0.3, 0.5))
    page = page * (1 - ink_layer) + 0.1 * ink_layer
    return Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8))


def _fit(ink: np.ndarray, height: int) -> np.ndarray:
    """Crop a glyph to its ink and scale it to ``height`` pixels, aspect kept."""
    ys, xs = np.nonzero(ink > 0.2)
    crop = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = height / crop.shape[0]
    size = (max(2, int(round(crop.shape[1] * scale))), height)
    return np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.BILINEAR), np.float32) / 255
