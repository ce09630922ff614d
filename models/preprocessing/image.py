"""Image files in and out: decoding within a pixel budget (formats, EXIF turn, truncated and
hostile files), sizes from the header, shrinking, grayscale, the noise check, and PNG / data-URL
encoding of what is kept or shown."""

from __future__ import annotations

import base64
import binascii
import ctypes
import io
import re
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models.errors import NotAnImage, TooManyPixels, TooNoisy, TruncatedImage

WORK_SIDE = 640  # photos are reduced to this longer side before cleaning: a 20 px glyph needs no more


DEFAULT_MAX_PIXELS = 24_000_000  # pixels decoded for one glyph at most (a 24 MP photo); more is refused


PAGE_MAX_PIXELS = 16_000_000  # pages and lines are read at 2000 px and cost more each: a lower budget


NOISE_EDGES = 0.3  # this share of neighbouring pixels differing by a quarter of the range is noise


MIN_CONTRAST = 0.2  # ink must be at least 20% darker than the paper around it, or there is nothing to read
NOISE_MIN_SIDE = 64  # smaller images are not judged: a few thick strokes are mostly edges


FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG includes MPO, which many phones write


Image.init()  # register every decoder plugin, so FORMATS can name them


def _quiet_libtiff() -> bool:
    """Stop libtiff writing its own warnings and errors to standard error: a corrupt TIFF put lines
    such as "ZIPDecode: Decoding error at scanline 0" in the server's log, one per upload, outside
    the JSON log lines. The failure still reaches Pillow, which raises, and the client is told
    ``truncated_image``. Pillow has no setting for it, so the handlers of the libtiff it loaded are
    cleared (Linux; elsewhere nothing changes). True when they were."""
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


_DATA_URL = re.compile(r"^data:(?P<mime>[\w/+.-]*)(?:;[\w=.-]+)*?(?P<b64>;base64)?,", re.I)


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


def load_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft: int | None = WORK_SIDE) -> Image.Image:
    """Decode image bytes (PNG, JPEG, WebP, BMP, GIF, TIFF) with EXIF orientation applied.

    Refuses a non-image, a truncated file and an image that would decode to more than
    ``max_pixels`` pixels, the last before any pixel is decoded, so decoding never allocates more
    than the budget. JPEGs larger than ``draft`` are decoded at a reduced scale (the codec's own DCT
    scaling), which saves most of the time and memory of a phone photo: the budget counts the
    pixels decoded, so a 48 MP photo read at a quarter of its side passes. ``draft=None``: every
    pixel, as the file holds it.
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
        if draft is not None and img.format in ("JPEG", "MPO") and max(w, h) > 2 * draft:
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


EXIF_ORIENTATION = 0x0112  # the EXIF tag saying how the picture is turned; 5 to 8 swap its sides


def image_size(data: bytes, turned: bool = True) -> tuple[int, int]:
    """(width, height) of an image file from its header, no pixel decoded; ``turned``: as it is
    shown, after its EXIF orientation. Raises what Pillow raises for a file it cannot open.
    A PNG's size unturned is read from its IHDR chunk directly (what Pillow reads; opening it
    took 0.09 ms of each canvas answer), and turned too when no chunk can hold an orientation
    (Pillow decoded the whole picture looking for one: 0.47 ms of a typical line upload)."""
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        if width and height and (not turned or _png_without_metadata(data)):
            return width, height
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        orientation = img.getexif().get(EXIF_ORIENTATION, 1) if turned else 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


# the PNG chunks where Pillow finds an EXIF orientation: eXIf, or a text chunk ("Raw profile type
# exif", or XMP's tiff:Orientation)
_PNG_METADATA = frozenset((b"eXIf", b"tEXt", b"zTXt", b"iTXt"))


def _png_without_metadata(data: bytes) -> bool:
    """Whether a PNG's chunks, walked up to IEND by their lengths, include none that could hold an
    orientation (False too for a file cut short: Pillow then says what is wrong)."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind in _PNG_METADATA:
            return False
        if kind == b"IEND":
            return True
        pos += 12 + length
    return False


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
        opacity = img.getchannel("A")
        gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        if opacity.getextrema() == (255, 255):  # opaque, as a browser's canvas PNG: flattening changes nothing
            return gray
        alpha = np.asarray(opacity, dtype=np.float32) / 255.0
    else:
        return np.asarray(img if img.mode == "L" else img.convert("L"), dtype=np.float32) / 255.0
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


def decode(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, side: int = WORK_SIDE) -> Image.Image:
    """Image file bytes -> the decoded picture every later step starts from (at most ``side``)."""
    return shrink(load_image(data, max_pixels, draft=side), side)


def edge_share(gray: np.ndarray) -> float:
    """The share of neighbouring pixel pairs (across and down) that differ by more than a quarter
    of the gray range: at most about 0.11 on the photographs, scans and drawings measured (most of
    a page is plain paper, edges are only along strokes), about 0.5 on static or speckle."""
    h, w = gray.shape
    if h < 2 or w < 2:
        return 0.0
    across = down = 0
    rows = max(1, EDGE_CHUNK // w)  # a band's temporaries stay small: reused, not page-faulted in afresh
    for top in range(0, h, rows):
        band = gray[top : top + rows + 1]  # one row more, for the differences down
        across += np.count_nonzero(np.abs(np.diff(band[:rows], axis=1)) > 0.25)
        down += np.count_nonzero(np.abs(np.diff(band, axis=0)) > 0.25)
    return (across / (h * (w - 1)) + down / ((h - 1) * w)) / 2


EDGE_CHUNK = 1 << 17  # pixels per band in ``edge_share``: a float32 band of 512 KB (an A4 page at
# 2000 px took 24 ms in whole-page temporaries in a server process, where each block over 1 MB
# has its own mmap; a canvas is one band)


def read_gray(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, side: int = WORK_SIDE) -> np.ndarray:
    """Image bytes -> grayscale of at most ``side`` pixels (``to_gray``); raises ``TooNoisy`` for a
    picture that is noise all over, before any glyph or line is looked for in it."""
    gray = to_gray(decode(data, max_pixels, side))
    if min(gray.shape) >= NOISE_MIN_SIDE and edge_share(gray) > NOISE_EDGES:
        raise TooNoisy("The image looks like noise all over, not writing on paper; send a clearer picture.")
    return gray


def gray_png(gray: np.ndarray, side: int | None = None, height: int | None = None) -> bytes:
    """``gray`` (1 = white) as an 8-bit PNG, reduced (area averaging) to at most ``side`` pixels on
    its longer side and ``height`` pixels tall: how inputs are kept in the feedback store."""
    img = Image.fromarray(np.round(np.clip(gray, 0, 1) * 255.0).astype(np.uint8))
    h, w = gray.shape
    img = box_shrink(img, min(side / max(w, h) if side else 1.0, height / h if height else 1.0))
    return to_png(img, compress_level=6)  # kept for a day at least: smaller beats faster


def source_png(data: bytes, gray: np.ndarray) -> bytes:
    """The input as PNG for the feedback store: small PNG files (a canvas) as they came; any other
    format, and PNGs over ``KEEP_PNG_BYTES``, as ``gray`` (``to_gray`` of the decoded picture)
    reduced to ``STORE_SIDE``, which bounds what one answer keeps on disk. Retraining takes the
    28x28 the model saw while the preprocessing is the same, and reads this again when it is not."""
    if data.startswith(PNG_SIGNATURE) and len(data) <= KEEP_PNG_BYTES:
        return data
    return gray_png(gray, side=STORE_SIDE)


def to_png(picture: np.ndarray | Image.Image, compress_level: int = 1) -> bytes:
    """Lossless PNG bytes of a uint8 array (the 28x28 the model saw, feedback images) or of a
    picture; every PNG made is made here. Fast compression by default: most are made on every
    request."""
    if not isinstance(picture, Image.Image):
        pixels = np.asarray(picture, dtype=np.uint8)
        if pixels.ndim == 2 and 0 < pixels.size <= SMALL_PNG_PIXELS:
            return _small_gray_png(pixels, compress_level)
        picture = Image.fromarray(pixels)
    buf = io.BytesIO()
    picture.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


SMALL_PNG_PIXELS = 64 * 64  # up to this size a gray array is written by ``_small_gray_png``


def _small_gray_png(pixels: np.ndarray, compress_level: int) -> bytes:
    """A small 8-bit gray array as PNG, written directly (signature, IHDR, one IDAT of unfiltered
    rows, IEND; the PNG specification's chunks with their CRCs). Pillow's encoder gives the same
    pixels but took 0.16 ms per answer in a request for the 28x28 glyph, three times this, most
    of it in its Python plumbing; row filters gain nothing at this size (87 bytes for a drawn 7,
    Pillow's 96). Pillow still writes every picture and every larger array."""
    h, w = pixels.shape
    rows = np.zeros((h, w + 1), np.uint8)  # each row starts with its filter type, 0: none
    rows[:, 1:] = pixels
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit gray, deflate, no interlace
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), compress_level)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def to_data_url(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a uint8 array, for JSON responses."""
    return png_data_url(to_png(pixels))


def png_data_url(picture: bytes | Image.Image) -> str:
    """``data:image/png;base64,...`` of PNG bytes already encoded, or of a picture (encoded with
    the fastest compression: these are for display, made on every answer. On an A4 page's
    annotated image, level 1 took 29 ms and 1,330 KB, level 3 50 ms and 1,290 KB)."""
    if isinstance(picture, Image.Image):
        picture = to_png(picture)
    return "data:image/png;base64," + base64.b64encode(picture).decode("ascii")
