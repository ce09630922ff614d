"""The one preprocessing implementation: image bytes or arrays -> model input.

Canvas, upload, CLI, training, evaluation and feedback all call these functions, so a model
always sees input prepared exactly the way its training data was. The glyph path mirrors how
MNIST was made: ink cropped, longer side fitted into 20 px with the aspect kept, padded to 28x28
and centred by centre of mass. Before that, photos are cleaned: ink polarity is detected, uneven
lighting divided out, paper texture removed by a threshold that adapts to the image, and stroke
width brought into the range the models were trained on.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from models.errors import BlankImage, NotAnImage, TooManyPixels, TooNoisy, TruncatedImage

# Bump whenever the output of any function below changes: weights record the version they were
# trained with, and the registry refuses to serve weights made for another version.
PREPROCESSING_VERSION = "4"

GLYPH_SIZE = 28  # model input side, as MNIST
GLYPH_BOX = 20  # the longer side of the ink is fitted into this, as MNIST
WORK_SIDE = 640  # photos are reduced to this longer side before cleaning: a 20 px glyph needs no more
DEFAULT_MAX_PIXELS = 24_000_000  # pixels decoded for one glyph at most (a 24 MP photo); more is refused
PAGE_MAX_PIXELS = 16_000_000  # pages and lines are read at 2000 px and cost more each: a lower budget
NOISE_EDGES = 0.3  # this share of neighbouring pixels differing by a quarter of the range is noise
NOISE_MIN_SIDE = 64  # smaller images are not judged: a few thick strokes are mostly edges
MIN_CONTRAST = 0.2  # ink must be at least 20% darker than the paper around it, or there is nothing to read
STROKE_RANGE = (1.6, 3.6)  # stroke width in output pixels that MNIST digits mostly have
MIN_INK_PIXELS = 9  # fewer clearly inked pixels than this (a 3x3 dot) is no writing at all
SPECK_FRACTION = 0.02  # components with less ink than this share of the largest are noise
EDGE_FRACTION = 0.25  # smaller pieces touching the border are neighbours cut off by the crop

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG includes MPO, which many phones write
Image.init()  # register every decoder plugin, so FORMATS can name them


def _quiet_libtiff() -> bool:
    """Stop libtiff writing its own warnings and errors to standard error: a corrupt TIFF put lines
    such as "ZIPDecode: Decoding error at scanline 0" in the server's log, one per upload, outside
    the JSON log lines. The failure still reaches Pillow, which raises, and the client is told
    ``truncated_image``. Pillow has no setting for it, so the handlers of the libtiff it loaded are
    cleared (Linux; elsewhere nothing changes). True when they were."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libtiff" in line.rsplit("/", 1)[-1]}
        for path in paths:
            lib = ctypes.CDLL(path)
            lib.TIFFSetWarningHandler.argtypes = lib.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
            lib.TIFFSetWarningHandler.restype = lib.TIFFSetErrorHandler.restype = ctypes.c_void_p
            lib.TIFFSetWarningHandler(None)
            lib.TIFFSetErrorHandler(None)
        return bool(paths)
    except (OSError, AttributeError):
        return False


LIBTIFF_QUIET = _quiet_libtiff()
# Pillow's own remarks on a damaged file ("Tag data larger than file", "Corrupt EXIF data") are
# not news either: the upload is refused or read, and said so, like any other
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # the pixel budgets guard, and say so
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEEP_PNG_BYTES = 64 * 1024  # a canvas PNG is ~10 KB; a bigger upload is not kept byte for byte
STORE_SIDE = 320  # a glyph's input is kept at most this large for retraining (its ink box is 20 px)
STORE_LINE_HEIGHT = 128  # a line's crop is kept at most this tall (the model reads 48 px)
EIGHT_NEIGHBOURS = np.ones((3, 3), bool)
_DATA_URL = re.compile(r"^data:(?P<mime>[\w/+.-]*)(?:;[\w=.-]+)*?(?P<b64>;base64)?,", re.I)


@dataclass(frozen=True)
class Glyph:
    """A glyph ready for a classifier, with what was learned on the way."""

    pixels: np.ndarray  # (28, 28) uint8, white ink on black, as the models expect
    ink_box: tuple[int, int, int, int]  # x, y, w, h of the ink in the (reduced) working image
    inverted: bool  # True when the input was light ink on a dark background
    pieces: int = 1  # side-by-side groups of ink as tall as a character: more than 1 is not one glyph


def decode_data_url(url: str) -> bytes:
    """Return the bytes of a ``data:`` URL (base64, or plain bytes)."""
    m = _DATA_URL.match(url.strip())
    if not m:
        raise NotAnImage("Expected a data: URL such as data:image/png;base64,....")
    payload = url.strip()[m.end() :]
    if not m.group("b64"):
        return payload.encode("latin-1", "replace")
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NotAnImage("The data: URL does not hold valid base64.") from exc
    if not data:
        raise NotAnImage("The data: URL holds no image data.")
    return data


def load_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft: int = WORK_SIDE) -> Image.Image:
    """Decode image bytes (PNG, JPEG, WebP, BMP, GIF, TIFF) with EXIF orientation applied.

    Refuses a non-image, a truncated file and an image that would decode to more than
    ``max_pixels`` pixels, the last before any pixel is decoded, so decoding never allocates more
    than the budget. JPEGs larger than ``draft`` are decoded at a reduced scale (the codec's own DCT
    scaling), which saves most of the time and memory of a phone photo: the budget counts the
    pixels decoded, so a 48 MP photo read at a quarter of its side passes.
    """
    if not data:
        raise NotAnImage("The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"The image has too many pixels (limit {max_pixels:,}).") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise NotAnImage("This file is not an image we can read (PNG, JPEG, WebP, BMP, GIF, TIFF).") from exc
    w, h = img.size
    if w < 1 or h < 1:
        raise NotAnImage("The image has no pixels.")
    try:
        if img.format in ("JPEG", "MPO") and max(w, h) > 2 * draft:
            scale = draft / max(w, h)  # the codec keeps both sides at least this large
            img.draft("L" if img.mode == "L" else "RGB", (int(w * scale) + 1, int(h * scale) + 1))
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise TruncatedImage("The image file is truncated or corrupt.") from exc
    dw, dh = img.size  # what the decoder will allocate (a JPEG's reduced scale)
    if dw * dh > max_pixels:
        raise TooManyPixels(f"The image has {w * h:,} pixels; the limit is {max_pixels:,}.")
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"The image has too many pixels (limit {max_pixels:,}).") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise TruncatedImage("The image file is truncated or corrupt.") from exc
    return img


def shrink(img: Image.Image, side: int = WORK_SIDE) -> Image.Image:
    """Bring any mode to L, LA, RGB, RGBA, I or F and shrink (area averaging) so that the longer
    side is at most ``side``: done in Pillow, before any float copy of a large image exists."""
    if img.mode in ("1", "P", "PA"):
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "L")
    elif img.mode.startswith("I;16"):
        img = img.convert("I")
    elif img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    return box_shrink(img, side / max(img.size))


def box_shrink(img: Image.Image, scale: float) -> Image.Image:
    """``img`` scaled by ``scale`` with area averaging, which aliases no thin stroke away; ``img``
    itself when ``scale`` >= 1 (nothing is ever enlarged). Every shrink on the way in is this one."""
    if scale >= 1:
        return img
    w, h = img.size
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)


def to_gray(img: Image.Image) -> np.ndarray:
    """Grayscale float32 in [0, 1] (1 = white), with transparency flattened onto white.

    A picture drawn only in the alpha channel (light strokes on a transparent canvas) would
    vanish on white, so it is flattened onto black instead.
    """
    img = shrink(img) if img.mode not in ("L", "LA", "RGB", "RGBA", "I", "F") else img
    if img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        gray = _full_scale(arr)
        if "transparency" not in img.info:
            return gray
        alpha = (arr != img.info["transparency"]).astype(np.float32)
    elif img.mode in ("LA", "RGBA"):
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    else:
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    on_white = gray * alpha + (1.0 - alpha)
    if np.ptp(on_white) < MIN_CONTRAST and np.ptp(alpha) >= MIN_CONTRAST:
        return gray * alpha
    return on_white


def _full_scale(arr: np.ndarray) -> np.ndarray:
    """High-bit-depth pixels to [0, 1] by the range their values live in (1.0, 8 or 16 bits), not
    by their own min and max, so faint noise on a blank page is not stretched into ink."""
    if not np.isfinite(arr).all():
        raise NotAnImage("The image holds invalid (infinite or NaN) pixel values.")
    top = float(arr.max()) if arr.size else 1.0
    scale = next((s for s in (1.0, 255.0, 65535.0) if top <= s), top)
    return np.clip(arr / scale, 0.0, 1.0).astype(np.float32)


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
    if np.median(_border(gray)) >= 0.5 or np.median(gray) < 0.5:
        return gray
    bright = gray > _otsu(gray)
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
    return float(np.median(_border(gray))) < 0.5


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
    inverted = is_light_on_dark(gray)
    paper = 1.0 - gray if inverted else gray
    h, w = paper.shape
    k = max(preset.min_window, min(h, w) // preset.window_divisor)
    s = preset.step
    small = paper[::s, ::s] if s > 1 else paper
    closed = ndimage.grey_closing(small, size=(max(3, k // s),) * 2, mode="nearest")
    background = ndimage.uniform_filter(closed, size=max(preset.min_smooth, k // s // 2), mode="nearest")
    if s > 1:
        background = np.kron(background, np.ones((s, s), np.float32))[:h, :w]
    background = np.maximum(background, paper)  # the local paper is never darker than a pixel on it
    return np.clip(1.0 - paper / np.maximum(background, 1e-3), 0.0, 1.0), inverted


def _stretch(ink: np.ndarray, fallback_high: float) -> np.ndarray:
    """Ink fainter than half an Otsu threshold (at least ``MIN_CONTRAST``) is paper grain or light
    falloff and becomes 0; the 90th percentile of the rest becomes full ink (``fallback_high``
    when nothing is left)."""
    low = max(0.5 * _otsu(ink), MIN_CONTRAST)
    high = float(np.percentile(ink[ink > low], 90)) if np.any(ink > low) else fallback_high
    return np.clip((ink - low) / max(high - low, 1e-3), 0.0, 1.0)


def ink_map(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Ink strength in [0, 1] (1 = full ink) from a grayscale image, and whether it was inverted.

    Dark-on-light and light-on-dark both work. The paper level is estimated locally
    (``paper_ink`` with ``GLYPH_PAPER``), and everything fainter than an Otsu threshold on the
    result is treated as paper texture. Raises ``BlankImage`` when no mark is clearly darker than
    its surroundings.
    """
    ink, inverted = paper_ink(gray, GLYPH_PAPER)
    n = max(MIN_INK_PIXELS, ink.size // 50_000)
    marked = ink[ink > 0]  # the n-th largest value lies among these (selection on a sea of zeros is slow)
    strong = float(np.partition(marked, -n)[-n]) if marked.size >= n else (0.0 if ink.size > n else float(ink.max()))
    if strong < MIN_CONTRAST:
        raise BlankImage("Nothing to read: the image has no ink.")
    return _drop_specks(_stretch(ink, strong)), inverted


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1]."""
    hist, edges = np.histogram(values, bins=64, range=(0.0, 1.0))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centers)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * (1 - w0))
    between = np.nan_to_num(between)
    return float(centers[int(np.argmax(between))])


def _drop_specks(ink: np.ndarray) -> np.ndarray:
    """Remove specks (components with a tiny share of the largest one's ink) and pieces of
    neighbouring writing cut off at the image border (small components touching the edge)."""
    labels, n = ndimage.label(ink > 0, structure=EIGHT_NEIGHBOURS)  # a 1 px diagonal stroke is one piece
    if n <= 1:
        return ink
    ids = np.arange(1, n + 1)
    mass = ndimage.sum_labels(ink, labels, index=ids)
    edge = np.zeros(n + 1, bool)
    edge[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    keep = (mass >= SPECK_FRACTION * mass.max()) & ~(edge[1:] & (mass < EDGE_FRACTION * mass.max()))
    keep[np.argmax(mass)] = True
    return np.where(np.concatenate([[False], keep])[labels], ink, 0.0).astype(np.float32)


def ink_bbox(ink: np.ndarray) -> tuple[int, int, int, int]:
    """x, y, w, h of the non-zero ink; raises ``BlankImage`` when there is none."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise BlankImage("Nothing to read: the image has no ink.")
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def stroke_width(ink: np.ndarray) -> float:
    """Typical stroke width in pixels: twice the ink area over the outline length."""
    mask = ink > 0.5
    area = int(mask.sum())
    if area == 0:
        return 0.0
    edge = int((mask & ~ndimage.binary_erosion(mask)).sum())
    return 2.0 * area / max(edge, 1)


def normalise_stroke(ink: np.ndarray, scale: float) -> np.ndarray:
    """Thicken hairlines and thin marker strokes so that, after shrinking by ``scale``, the stroke
    width lands in ``STROKE_RANGE``: a model trained on MNIST pen strokes then reads both."""
    width = stroke_width(ink) * scale
    lo, hi = STROKE_RANGE
    if width <= 0 or lo <= width <= hi:
        return ink
    target = lo if width < lo else hi
    steps = int(round(abs(target - width) / scale / 2))  # a 3x3 pass changes width by 2 px
    if steps == 0:
        return ink
    op = ndimage.grey_dilation if width < lo else ndimage.grey_erosion
    out = ink
    for _ in range(min(steps, 32)):
        changed = op(out, footprint=np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
        if op is ndimage.grey_erosion and (changed > 0.5).sum() < 0.35 * (out > 0.5).sum():
            break  # stop before erosion breaks the glyph apart
        out = changed
    return out


def fit_glyph(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit the longer side into 20 px, pad to 28x28, centre by centre of mass."""
    x, y, w, h = ink_bbox(ink)
    crop = ink[y : y + h, x : x + w]
    scale = GLYPH_BOX / max(w, h)
    crop = normalise_stroke(np.pad(crop, 2 + int(np.ceil(STROKE_RANGE[0] / scale))), scale)  # room to thicken
    x2, y2, w2, h2 = ink_bbox(crop)
    crop = crop[y2 : y2 + h2, x2 : x2 + w2]
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
    cy, cx = ndimage.center_of_mass(out)
    dy = int(np.clip(round(GLYPH_SIZE / 2 - cy), -top, GLYPH_SIZE - size[1] - top))
    dx = int(np.clip(round(GLYPH_SIZE / 2 - cx), -left, GLYPH_SIZE - size[0] - left))
    out = np.roll(out, (dy, dx), axis=(0, 1))
    return np.round(out * 255).astype(np.uint8)


def side_by_side_pieces(ink: np.ndarray) -> int:
    """How many groups of ink stand side by side, separated by clear vertical gaps, each at least
    a third as tall as the whole: 1 for a character (the dot of an i sits above, not beside), 2 or
    more for several characters written in one image."""
    x, y, w, h = ink_bbox(ink)
    box = ink[y : y + h, x : x + w] > 0.5
    cols = box.any(axis=0)
    min_gap = max(2, int(round(0.08 * h)))
    pieces, start, gap = [], None, 0
    for i, filled in enumerate(np.append(cols, False)):
        if filled:
            start = i if start is None else start
            gap = 0
        elif start is not None:
            gap += 1
            if gap >= min_gap or i == len(cols):
                pieces.append((start, i - gap + 1))
                start, gap = None, 0
    rows_of = [np.flatnonzero(box[:, a:b].any(axis=1)) for a, b in pieces]
    return max(1, sum(1 for r in rows_of if r.size and r[-1] - r[0] + 1 >= h / 3))


def glyph_ink(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """Grayscale array (1 = white) -> the cleaned ink map a glyph is cut from, and whether the
    picture was light on dark. The first half of ``glyph_from_gray``; ``fit_glyph`` is the second."""
    return ink_map(crop_to_sheet(reduce(np.asarray(gray, dtype=np.float32))))


def glyph_from_gray(gray: np.ndarray) -> Glyph:
    """Grayscale array (1 = white) -> model-ready glyph. The path every glyph takes."""
    ink, inverted = glyph_ink(gray)
    return Glyph(fit_glyph(ink), ink_bbox(ink), inverted, side_by_side_pieces(ink))


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, side: int = WORK_SIDE) -> Image.Image:
    """Image file bytes -> the decoded picture every later step starts from (at most ``side``)."""
    return shrink(load_image(data, max_pixels, draft=side), side)


def edge_share(gray: np.ndarray) -> float:
    """The share of neighbouring pixel pairs (across and down) that differ by more than a quarter
    of the gray range: at most about 0.11 on the photographs, scans and drawings measured (most of
    a page is plain paper, edges are only along strokes), about 0.5 on static or speckle."""
    if gray.shape[0] < 2 or gray.shape[1] < 2:
        return 0.0
    across = np.count_nonzero(np.abs(np.diff(gray, axis=1)) > 0.25) / (gray.shape[0] * (gray.shape[1] - 1))
    down = np.count_nonzero(np.abs(np.diff(gray, axis=0)) > 0.25) / ((gray.shape[0] - 1) * gray.shape[1])
    return (across + down) / 2


def read_gray(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, side: int = WORK_SIDE) -> np.ndarray:
    """Image bytes -> grayscale of at most ``side`` pixels (``to_gray``); raises ``TooNoisy`` for a
    picture that is noise all over, before any glyph or line is looked for in it."""
    gray = to_gray(decode(data, max_pixels, side))
    if min(gray.shape) >= NOISE_MIN_SIDE and edge_share(gray) > NOISE_EDGES:
        raise TooNoisy("The image looks like noise all over, not writing on paper; send a clearer picture.")
    return gray


def glyph_from_bytes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Glyph:
    """Image file bytes -> model-ready glyph."""
    return glyph_from_gray(to_gray(decode(data, max_pixels)))


def gray_png(gray: np.ndarray, side: int | None = None, height: int | None = None) -> bytes:
    """``gray`` (1 = white) as an 8-bit PNG, reduced (area averaging) to at most ``side`` pixels on
    its longer side and ``height`` pixels tall: how inputs are kept in the feedback store."""
    img = Image.fromarray(np.round(np.clip(gray, 0, 1) * 255.0).astype(np.uint8))
    h, w = gray.shape
    img = box_shrink(img, min(side / max(w, h) if side else 1.0, height / h if height else 1.0))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)  # kept for a day at least: smaller beats faster
    return buf.getvalue()


def source_png(data: bytes, gray: np.ndarray) -> bytes:
    """The input as PNG for the feedback store: small PNG files (a canvas) as they came; any other
    format, and PNGs over ``KEEP_PNG_BYTES``, as ``gray`` (``to_gray`` of the decoded picture)
    reduced to ``STORE_SIDE``, which bounds what one answer keeps on disk. Retraining takes the
    28x28 the model saw while the preprocessing is the same, and reads this again when it is not."""
    if data.startswith(PNG_SIGNATURE) and len(data) <= KEEP_PNG_BYTES:
        return data
    return gray_png(gray, side=STORE_SIDE)


def glyph_from_mnist(pixels: np.ndarray) -> np.ndarray:
    """A dataset image (uint8, white ink on black, any size) through the same glyph path."""
    return glyph_from_gray(1.0 - np.asarray(pixels, dtype=np.float32) / 255.0).pixels


def to_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 array (the 28x28 the model saw, feedback images), with fast
    compression: these are made on every request."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def to_data_url(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a uint8 array, for JSON responses."""
    return png_data_url(to_png(pixels))


def png_data_url(picture: bytes | Image.Image) -> str:
    """``data:image/png;base64,...`` of PNG bytes already encoded, or of a picture (encoded with
    fast compression: these are for display)."""
    if isinstance(picture, Image.Image):
        buf = io.BytesIO()
        picture.save(buf, format="PNG", compress_level=3)
        picture = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(picture).decode("ascii")


# ---------------------------------------------------------------------------------------------- lines

# Line models record this version, as glyph models record PREPROCESSING_VERSION; bump on any change.
LINE_PREPROCESSING_VERSION = "2"
LINE_HEIGHT = 48  # model input height of a text line; width follows the aspect ratio
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


def _affine(ink: np.ndarray, shear: float = 0.0, angle_deg: float = 0.0) -> np.ndarray:
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
    """The rotation (degrees, as ``_affine`` takes it) that makes the row profile sharpest: text
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
    """The shear that uprights the writing (apply it with ``_affine(ink, shear=...)``): the one that
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
        ink = _crop_ink(_affine(ink, angle_deg=angle))
    shear = estimate_slant(ink)
    if shear:
        ink = _crop_ink(_affine(ink, shear=shear))
    target = LINE_HEIGHT - 2 * LINE_PAD
    scale = target / ink.shape[0]
    width = min(MAX_LINE_WIDTH, max(1, round(ink.shape[1] * scale)))
    small = np.asarray(Image.fromarray(ink, "F").resize((width, target), Image.Resampling.BOX))
    out = np.zeros((LINE_HEIGHT, width + 2 * LINE_PAD), np.float32)
    out[LINE_PAD : LINE_PAD + target, LINE_PAD : LINE_PAD + width] = np.clip(small / max(small.max(), 0.5), 0, 1)
    return np.round(out * 255).astype(np.uint8)
