"""Reading a page: segmentation, one batched pass of the chosen engine over every glyph, the text
in reading order, and the two pictures the page offers for download (boxes and labels drawn on the
input; the recognised text rendered in place on white)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.decoding.candidates import group_confidence, restrict, top_candidates
from models.errors import BadPageRequest, BlankImage, WeightsError, quoted
from models.preprocessing import (
    DEFAULT_MAX_PIXELS,
    PAGE_MAX_PIXELS,
    PREPROCESSING_VERSION,
    decode,
    glyph_from_gray,
    load_image,
    png_data_url,
    read_gray,
    to_gray,
    to_png,
)
from models.protocols import GlyphModel
from models.reading.glyph import Reading, gate_threshold, measured_unsure, one_character, recognize
from models.reading.results import Box, LabelledBox, LinesAnswer, PageAnswer, PageGlyph, PageLine, SequenceAnswer
from models.registry import Registry
from models.segmentation.page import PAGE_SIDE, Page, segment
from models.segmentation.page import PageGlyph as FoundGlyph  # a box and its 28x28; ``PageGlyph`` is its answer

ALPHABETS = ("digit", "character")  # the page models


# what a page holds -> (the model that reads it, the alphabet hint its answers are restricted to)
PAGE_ALPHABETS: dict[str, tuple[str, str]] = {
    "digit": ("digit", "any"),
    "character": ("character", "any"),
    "any": ("character", "any"),
    "letter": ("character", "letter"),
    "upper": ("character", "upper"),
    "lower": ("character", "lower"),
}


def page_alphabet(alphabet: str) -> tuple[str, str]:
    """(model task, alphabet hint) for a page's ``alphabet``; raises ``BadPageRequest``."""
    if alphabet not in PAGE_ALPHABETS:
        raise BadPageRequest(f"Unknown alphabet {quoted(alphabet)}; choose one of: {', '.join(PAGE_ALPHABETS)}.")
    return PAGE_ALPHABETS[alphabet]


ENGINES = ("cnn", "hog")


def engine_model(registry: Registry, alphabet: str, engine: str, personal: Path | None = None) -> GlyphModel:
    """The classifier for ``alphabet`` and ``engine``: a ``Recognizer`` or a ``HogRecognizer``;
    ``personal`` (a folder made by ``training.lib.sheet_profile``) picks a personal digit model instead."""
    if alphabet not in ALPHABETS:
        raise BadPageRequest(f"Unknown alphabet {quoted(alphabet)}; choose digit or character.")
    if personal is not None:
        taught = Path(personal) / alphabet
        if engine == "cnn" and (taught / "model" / "model.keras").exists():  # a profile taught by samples
            return registry.personal(taught, "model")
        if alphabet != "digit" or engine not in ENGINES or not (Path(personal) / engine).exists():
            raise BadPageRequest(
                f"Profile {Path(personal).name!r} has no {engine} model for {alphabet} pages: teach it "
                "samples of this alphabet, or train it from a digit sheet."
            )
        try:
            return registry.personal(personal, engine)
        except WeightsError as exc:
            raise BadPageRequest(str(exc)) from exc
    if engine == "cnn":
        return registry.get(alphabet)
    if engine == "hog":
        if not registry.has_hog(alphabet):
            raise BadPageRequest(f"The HOG engine reads {' and '.join(hog_alphabets(registry)) or 'nothing'} only.")
        return registry.hog(alphabet)
    raise BadPageRequest(f"Unknown engine {quoted(engine)}; choose cnn or hog.")


def hog_alphabets(registry: Registry) -> list[str]:
    return [a for a in ALPHABETS if registry.has_hog(a)]


@dataclass(frozen=True)
class PageReading:
    """A page's answer with, per glyph, what the feedback store keeps (as ``recognize.Reading``)."""

    result: PageAnswer | SequenceAnswer  # a page, or a drawing of several glyphs (``read_drawing``)
    glyph_inputs: list[bytes]  # each glyph's crop of the page, PNG
    glyph_pixels: list[bytes]  # the 28x28 the engine saw, PNG
    preprocessing_version: str = PREPROCESSING_VERSION


def _crop_png(gray: np.ndarray, g: FoundGlyph) -> bytes:
    """A glyph's neighbourhood on the page as PNG: reading it again gives the same glyph."""
    m = int(0.2 * max(g.w, g.h)) + 2
    y0, x0 = max(0, g.y - m), max(0, g.x - m)
    crop = gray[y0 : g.y + g.h + m, x0 : g.x + g.w + m]
    return to_png(np.round(np.clip(crop, 0, 1) * 255).astype(np.uint8))


def read_page(
    data: bytes,
    registry: Registry,
    alphabet: str = "digit",
    engine: str = "cnn",
    max_pixels: int = PAGE_MAX_PIXELS,
    threshold: float | None = None,
    personal: Path | None = None,
) -> PageReading:
    """Read every glyph on a page image; ``.result`` is the response shape of ``"task": "page"``.
    ``alphabet`` (``PAGE_ALPHABETS``) names the model and restricts its answers to a hint's classes."""
    task, hint = page_alphabet(alphabet)
    model = engine_model(registry, task, engine, personal)
    if threshold is None:  # the model's measured "not sure" threshold for page glyphs
        overall = measured_unsure(model, "threshold", hint, 0.5)
        threshold = float(measured_unsure(model, "page_threshold", hint, overall))
    gray = read_gray(data, max_pixels, side=PAGE_SIDE)
    page = segment(gray)
    glyphs = page.glyphs
    probs = model.probabilities(np.stack([g.pixels for g in glyphs])) if glyphs else np.zeros((0, len(model.labels)))
    probs, labels = restrict(probs, model.labels, hint)
    doubted = _doubted(registry, model, hint, glyphs, probs, labels, threshold)
    out_glyphs, lines = _answer_rows(page, probs, labels, doubted)
    unsure = sum(g["unsure"] for g in out_glyphs)
    result: PageAnswer = {
        "task": "page",
        "alphabet": alphabet,
        "engine": engine,
        "text": "\n".join(line["text"] for line in lines),
        "lines": lines,
        "glyphs": out_glyphs,
        "image": {"width": page.size[0], "height": page.size[1]},  # the coordinates boxes refer to
        "annotated_png": png_data_url(annotate(gray, out_glyphs)),
        "rendering_png": png_data_url(render(page, out_glyphs)),
        "model": {"name": model.name, "version": model.version},
    }
    if out_glyphs and unsure > len(out_glyphs) / 2:
        result["message"] = (
            f"Not sure about {unsure} of {len(out_glyphs)} marks: this does not look much like handwritten "
            f"{'digits' if task == 'digit' else 'characters'}."
        )
    return PageReading(result, [_crop_png(gray, g) for g in glyphs], [to_png(g.pixels) for g in glyphs])


def _doubted(
    registry: Registry,
    model: GlyphModel,
    hint: str,
    glyphs: list[FoundGlyph],
    probs: np.ndarray,
    labels: list[str],
    threshold: float,
) -> np.ndarray:
    """Which page glyphs are "not sure": below ``threshold`` with their look-alikes, or not one
    character at all by the glyph gate (a printed word, a smudge)."""
    low = np.array([group_confidence(p, labels) < threshold for p in probs], bool)
    gate = registry.glyph_gate() if glyphs else None
    if gate is None:
        return low
    return low | (one_character(gate, np.stack([g.pixels for g in glyphs])) < gate_threshold(gate, model, hint))


def _answer_rows(
    page: Page, probs: np.ndarray, labels: list[str], doubted: np.ndarray
) -> tuple[list[PageGlyph], list[PageLine]]:
    """(the answer's glyphs, its lines): each glyph with its box, line, offset in the line's text,
    candidates and doubt, in reading order; each line with its text, the box round its glyphs and
    their mean confidence."""
    out_glyphs: list[PageGlyph] = []
    lines: list[PageLine] = []
    k = 0
    for r, row in enumerate(page.rows):
        text = ""
        total = 0.0  # summed one by one, in reading order: the figure the page has always shown
        for g in row:
            candidates = top_candidates(probs[k], labels, 5)
            text += " " if g.space_before else ""
            item: PageGlyph = {
                "x": g.x,
                "y": g.y,
                "w": g.w,
                "h": g.h,
                "line": r,
                "space_before": g.space_before,
                "offset": len(text),
                "text": candidates[0]["label"],
                "confidence": candidates[0]["probability"],
                "candidates": candidates,
                "unsure": bool(doubted[k]),
            }
            out_glyphs.append(item)
            text += item["text"]
            total += item["confidence"]
            k += 1
        x0, y0 = min(g.x for g in row), min(g.y for g in row)
        x1, y1 = max(g.x + g.w for g in row), max(g.y + g.h for g in row)
        lines.append({"text": text, "x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0, "confidence": total / len(row)})
    return out_glyphs, lines


DRAWING_PAPER = 4  # a drawing is read on paper this many times its size: the page's lighting model


def read_drawing(
    data: bytes,
    registry: Registry,
    alphabet: str = "digit",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
    personal: Path | None = None,
    pieces: int | None = None,
) -> PageReading | None:
    """A drawing whose ink stands in several pieces side by side ("12", "A7") read as a short
    sequence through the page path, boxes in the drawing's pixels; None when it is one glyph.
    ``alphabet`` is a page's (``PAGE_ALPHABETS``); ``pieces``: the drawing's glyph's, when the
    caller has it already."""
    if pieces is None:
        pieces = glyph_from_gray(to_gray(decode(data, max_pixels))).pieces
    if pieces < 2:
        return None
    drawing = load_image(data, max_pixels, draft=None).convert("RGBA")  # full scale: boxes come in its pixels
    paper, offset = on_paper(drawing)
    try:
        reading = read_page(paper, registry, alphabet, "cnn", max_pixels, threshold, personal)
    except BlankImage:  # TooManyPieces too: not a short sequence
        return None
    r = reading.result
    if not 2 <= len(r["glyphs"]) <= MAX_SEQUENCE:
        return None
    scale = drawing.width * DRAWING_PAPER / r["image"]["width"]  # the page path reads at most PAGE_SIDE pixels
    for g, seen in zip(r["glyphs"], reading.glyph_pixels, strict=True):
        g.update(drawing_box(g, scale, offset), input_28x28=png_data_url(seen))
    result: SequenceAnswer = {
        "task": page_alphabet(alphabet)[0],
        "sequence": True,
        "alphabet": alphabet,
        "text": r["text"],
        "confidence": min(g["confidence"] for g in r["glyphs"]),
        "unsure": any(g["unsure"] for g in r["glyphs"]),
        "glyphs": r["glyphs"],
        "candidates": [],
        "lookalikes": [],
        "image": {"width": drawing.width, "height": drawing.height},
        "model": r["model"],
    }
    return PageReading(result, reading.glyph_inputs, reading.glyph_pixels)


def on_paper(drawing: Image.Image) -> tuple[bytes, tuple[int, int]]:
    """(PNG of ``drawing`` centred on white paper ``DRAWING_PAPER`` times its size, where its
    top-left corner lies on the paper)."""
    paper = Image.new("RGB", (drawing.width * DRAWING_PAPER, drawing.height * DRAWING_PAPER), "white")
    dx, dy = drawing.width * (DRAWING_PAPER - 1) // 2, drawing.height * (DRAWING_PAPER - 1) // 2
    paper.paste(drawing, (dx, dy), drawing)
    return to_png(paper), (dx, dy)


def drawing_box(glyph: Box, scale: float, offset: tuple[int, int]) -> Box:
    """A glyph's box on the page path's (scaled) paper, in the drawing's own pixels."""
    dx, dy = offset
    x0, y0 = round(glyph["x"] * scale) - dx, round(glyph["y"] * scale) - dy
    x1, y1 = round((glyph["x"] + glyph["w"]) * scale) - dx, round((glyph["y"] + glyph["h"]) * scale) - dy
    return {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}


MAX_SEQUENCE = 12  # more glyphs than this in one drawing is not a short sequence: "not sure" stays


def read_canvas(
    data: bytes,
    task: str,
    registry: Registry,
    alphabet: str,
    hint: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    threshold: float | None = None,
    personal: Path | None = None,
) -> Reading | PageReading:
    """A canvas drawing: one glyph (``recognize``), or several side by side read as a short
    sequence (``read_drawing``, with ``alphabet`` a page's). The drawing goes through the glyph
    path once, for both."""
    gray = read_gray(data, max_pixels)
    glyph = glyph_from_gray(gray)
    if glyph.pieces > 1:
        sequence = read_drawing(data, registry, alphabet, max_pixels, threshold, personal, glyph.pieces)
        if sequence is not None:
            return sequence
    return recognize(data, task, registry, max_pixels, threshold, personal, hint, prepared=(gray, glyph))


def in_upload_pixels(result: PageAnswer | LinesAnswer, size: tuple[int, int]) -> PageAnswer | LinesAnswer:
    """A page's or a line answer with its boxes (``glyphs``, ``lines``, ``dropped``) in the pixels of
    the uploaded image of ``size``: ``image`` becomes that size, and ``read`` says the size of the
    page as read (the annotated picture's) and its ``scale`` (read pixels per uploaded pixel)."""
    read_w, read_h = result["image"]["width"], result["image"]["height"]
    sx, sy = size[0] / read_w, size[1] / read_h

    def scaled(box: Box) -> Box:
        x0, y0 = round(box["x"] * sx), round(box["y"] * sy)
        x1, y1 = round((box["x"] + box["w"]) * sx), round((box["y"] + box["h"]) * sy)
        return box | {"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0}

    out = dict(result)
    for key in ("glyphs", "lines", "dropped"):
        if key in out:
            out[key] = [scaled(box) for box in out[key]]
    out["image"] = {"width": size[0], "height": size[1]}
    out["read"] = {"width": read_w, "height": read_h, "scale": round(read_w / size[0], 6)}
    return out


_FONTS = threading.local()  # each thread's fonts by size: a FreeType face is not shared between threads


def _font(size: float) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """The default font at ``size`` pixels (at least 8), loaded once per size and thread: loading it
    decodes the font file again each time, 9 ms of an A4 page's 200 labels."""
    px = max(8, int(size))
    fonts = getattr(_FONTS, "by_size", None)
    if fonts is None:
        fonts = _FONTS.by_size = {}
    if px not in fonts:
        if len(fonts) >= 64:  # a page's labels take a few sizes; pages of other sizes replace them
            fonts.clear()
        try:
            fonts[px] = ImageFont.load_default(size=px)
        except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
            fonts[px] = ImageFont.load_default()
    return fonts[px]


GRAYS = 254  # gray levels of the page in an annotated picture; the palette's last two entries draw the boxes
ANNOTATION_PALETTE = [round(i * 255 / (GRAYS - 1)) for i in range(GRAYS) for _ in range(3)] + [230, 120, 0, 30, 90, 220]
UNSURE_INK, READ_INK = GRAYS, GRAYS + 1  # orange, blue


def annotate(gray: np.ndarray, glyphs: Sequence[LabelledBox]) -> Image.Image:
    """The input with each glyph's box and label drawn (orange where the engine was unsure). A
    palette picture (254 grays and the two colours): an A4 page encodes as PNG in a third of the
    time of the RGB picture it was (53 against 164 ms) and is 17% smaller; the labels are drawn
    without anti-aliasing."""
    img = Image.fromarray(np.round(np.clip(gray, 0, 1) * (GRAYS - 1)).astype(np.uint8))
    img.putpalette(ANNOTATION_PALETTE)  # L becomes P: each gray level is its own palette entry
    draw = ImageDraw.Draw(img)
    for g in glyphs:
        colour = UNSURE_INK if g["unsure"] else READ_INK
        draw.rectangle([g["x"] - 2, g["y"] - 2, g["x"] + g["w"] + 2, g["y"] + g["h"] + 2], outline=colour, width=2)
        font = _font(max(10, g["h"] * 0.45))
        draw.text((g["x"], g["y"] - 4), g["text"], fill=colour, font=font, anchor="lb")
    return img


def render(page: Page, glyphs: Sequence[LabelledBox]) -> Image.Image:
    """The recognised text drawn in place of the handwriting, on white."""
    img = Image.new("L", page.size, 255)  # black on white: a gray picture is a third of the bytes of RGB
    draw = ImageDraw.Draw(img)
    for g in glyphs:
        font = _font(g["h"] * 0.95)
        draw.text((g["x"] + g["w"] / 2, g["y"] + g["h"]), g["text"], fill=0, font=font, anchor="ms")
    return img
