"""Golden tests of the one preprocessing path: what the model sees for canvas, upload and photo."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from models import preprocessing as pp
from models.errors import BlankImage, NotAnImage, PreprocessError, TooManyPixels, TruncatedImage
from models.preprocessing.glyph import _eroded
from models.preprocessing.ink import (
    EDGE_FRACTION,
    EIGHT_NEIGHBOURS,
    SPECK_FRACTION,
    _drop_specks,
    _flat_level,
    _median_below_half,
    _paper_level,
    otsu,
)
from models.preprocessing.line import _shrink_for_search
from models.registry import shared_registry
from models.segmentation import page as segmentation
from tests.helpers import ONE, RESOURCES, SEVEN, SEVEN_PNG, canvas_digit, data_url, png_bytes


def predict(pixels: np.ndarray) -> str:
    model = shared_registry().get("digit")
    return model.labels[int(model.probabilities(pixels).argmax())]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two glyphs' pixels (1 = identical up to brightness)."""
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def photo_of(glyph_png: bytes, height: int = 420, seed: int = 0) -> bytes:
    """A phone-photo-like JPEG of a real glyph: its pen strokes enlarged onto a page under uneven
    light, with paper grain and JPEG compression."""
    gray = pp.to_gray(Image.open(io.BytesIO(glyph_png)))
    ink = np.clip(1 - gray / np.median(gray), 0, 1)  # the pen's darkness relative to its paper
    scale = height / ink.shape[0]
    size = (round(ink.shape[1] * scale), height)
    ink = np.asarray(Image.fromarray(ink.astype(np.float32), "F").resize(size, Image.Resampling.BICUBIC))
    page = np.zeros((height + 200, size[0] + 300), np.float32)
    page[100 : 100 + height, 150 : 150 + size[0]] = np.clip(ink, 0, 1)
    h, w = page.shape
    light = np.linspace(0.55, 1.0, w)[None, :] * np.linspace(0.85, 1.0, h)[:, None]
    grain = ndimage.gaussian_filter(np.random.default_rng(seed).normal(0, 0.04, page.shape), 1.5)
    photo = np.clip(0.92 * light * (1 - 0.85 * page) + grain, 0, 1)
    return png_bytes((photo * 255).astype(np.uint8), "JPEG", quality=70)


def test_canvas_and_upload_paths_give_identical_arrays(client):
    img = SEVEN_PNG
    via_url = pp.glyph_from_bytes(pp.decode_data_url(data_url(img))).pixels
    via_upload = pp.glyph_from_bytes(img).pixels
    assert np.array_equal(via_url, via_upload)
    canvas = client.post("/submit", json={"image": data_url(img), "task": "digit"}).get_json()
    upload = client.post("/upload", data={"file": (io.BytesIO(img), "seven.png"), "task": "digit"}).get_json()
    assert canvas["input_28x28"] == upload["input_28x28"] == pp.to_data_url(via_url)
    assert canvas["candidates"] == upload["candidates"]
    assert canvas["text"] == "7"


def test_output_is_mnist_shaped(mnist_sample):
    pixels = pp.glyph_from_bytes(SEVEN_PNG).pixels
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    ys, xs = np.nonzero(pixels)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 20  # longer side fitted into 20 px
    cy, cx = ndimage.center_of_mass(pixels.astype(float))
    assert abs(cy - 14) <= 0.75 and abs(cx - 14) <= 0.75  # centred by centre of mass, as MNIST
    assert pixels.max() == 255


def test_mnist_digits_pass_through_almost_unchanged(mnist_sample):
    x, _ = mnist_sample
    out = np.stack([pp.glyph_from_mnist(a) for a in x[:100]])
    assert np.mean([similarity(a, b) for a, b in zip(out, x[:100], strict=False)]) > 0.9


def test_light_on_dark_equals_dark_on_light(mnist_sample):
    x, _ = mnist_sample
    white_on_black = pp.glyph_from_bytes(png_bytes(x[0]))
    black_on_white = pp.glyph_from_bytes(png_bytes(255 - x[0]))
    assert white_on_black.inverted and not black_on_white.inverted
    assert np.array_equal(white_on_black.pixels, black_on_white.pixels)


def test_dark_on_light_photo_matches_clean_scan(photo_digits):
    path, label = next((p, lab) for p, lab in photo_digits if lab == "4")
    clean = pp.glyph_from_bytes(path.read_bytes()).pixels
    photo = pp.glyph_from_bytes(photo_of(path.read_bytes())).pixels
    assert similarity(clean, photo) > 0.8
    assert predict(photo) == label


def test_uneven_lighting_leaves_no_shadow_as_ink(photo_digits):
    path, _ = photo_digits[0]
    glyph = pp.glyph_from_bytes(photo_of(path.read_bytes(), seed=3))
    x, y, w, h = glyph.ink_box
    # the dark side of the photo must not be cropped in as ink: the box hugs the glyph in the middle
    assert x > 50 and w < 300


def test_small_off_centre_digit_is_centred_and_read(mnist_sample):
    x, y = mnist_sample
    page = np.zeros((400, 400), np.uint8)
    page[20:48, 330:358] = x[0]  # a small digit in the top-right corner
    pixels = pp.glyph_from_bytes(png_bytes(255 - page)).pixels
    assert similarity(pixels, pp.glyph_from_mnist(x[0])) > 0.95
    assert predict(pixels) == str(y[0])


def test_thick_marker_digit_is_thinned_and_read():
    thick = canvas_digit(SEVEN, width=60)
    pixels = pp.glyph_from_bytes(png_bytes(thick)).pixels
    width = pp.stroke_width(pixels.astype(np.float32) / 255)
    assert width <= pp.STROKE_RANGE[1] + 1.0
    assert predict(pixels) == "7"


def test_hairline_digit_is_thickened_and_read():
    thin = canvas_digit(ONE, width=2, size=560)
    pixels = pp.glyph_from_bytes(png_bytes(thin)).pixels
    assert pixels.max() == 255 and (pixels > 128).sum() >= 20
    assert predict(pixels) == "1"


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (280, 280), "white"),  # an untouched canvas
        Image.new("RGBA", (280, 280), (0, 0, 0, 0)),  # a transparent canvas
        Image.new("L", (280, 280), 0),  # a black canvas
    ],
    ids=["white", "transparent", "black"],
)
def test_blank_canvas_is_nothing_to_read(image):
    with pytest.raises(BlankImage, match="Nothing to read"):
        pp.glyph_from_bytes(png_bytes(image))


def test_photo_of_empty_paper_is_nothing_to_read():
    rng = np.random.default_rng(1)
    paper = 0.9 * np.linspace(0.7, 1.0, 600)[None, :] + ndimage.gaussian_filter(rng.normal(0, 0.02, (400, 600)), 2)
    with pytest.raises(BlankImage):
        pp.glyph_from_bytes(png_bytes((np.clip(paper, 0, 1) * 255).astype(np.uint8), "JPEG", quality=80))


def test_transparent_canvas_strokes_read_like_white_canvas():
    on_white = canvas_digit(SEVEN)
    rgba = Image.new("RGBA", on_white.size, (0, 0, 0, 0))
    rgba.putalpha(Image.eval(on_white.convert("L"), lambda v: 255 - v))
    assert np.array_equal(pp.glyph_from_bytes(png_bytes(rgba)).pixels, pp.glyph_from_bytes(png_bytes(on_white)).pixels)


def test_an_opaque_rgba_canvas_reads_as_its_gray_and_any_transparency_is_still_flattened():
    """A browser's canvas PNG is RGBA with every pixel opaque: ``to_gray`` skips the flattening,
    which would change nothing, and gives the flattening recipe's values bit for bit."""
    from models.preprocessing.image import to_gray

    def flattened(img):  # the recipe for pictures with transparency
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
        return gray * alpha + (1.0 - alpha)

    canvas = canvas_digit(SEVEN).convert("RGBA")
    assert to_gray(canvas).tobytes() == flattened(canvas).tobytes()
    assert to_gray(canvas).tobytes() == to_gray(canvas.convert("L")).tobytes()
    holed = canvas.copy()
    holed.putpixel((3, 3), (0, 0, 0, 0))  # one transparent pixel: on white, not black
    assert to_gray(holed).tobytes() == flattened(holed).tobytes() and to_gray(holed)[3, 3] == 1.0


def test_exif_orientation_is_applied():
    upright = canvas_digit(SEVEN).convert("L")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # camera stored it sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    jpeg = png_bytes(stored, "JPEG", quality=95, exif=exif)
    expected = pp.glyph_from_bytes(png_bytes(upright, "JPEG", quality=95)).pixels
    assert similarity(pp.glyph_from_bytes(jpeg).pixels, expected) > 0.97


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"])
def test_every_format_reads_the_same_digit(fmt):
    img = canvas_digit(SEVEN)
    data = png_bytes(img if fmt != "GIF" else img.convert("P"), fmt)
    assert predict(pp.glyph_from_bytes(data).pixels) == "7"


def test_not_an_image():
    with pytest.raises(NotAnImage):
        pp.glyph_from_bytes(b"hello, this is a text file\n")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image(fmt):
    data = png_bytes(canvas_digit(SEVEN), fmt)
    with pytest.raises(TruncatedImage):
        pp.glyph_from_bytes(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding(bomb_png):
    with pytest.raises(TooManyPixels, match="pixels"):
        pp.glyph_from_bytes(bomb_png)


def test_bad_data_urls():
    with pytest.raises(NotAnImage):
        pp.decode_data_url("https://example.com/x.png")
    with pytest.raises(NotAnImage, match="valid base64"):
        pp.decode_data_url("data:image/png;base64,!!!notbase64")
    with pytest.raises(NotAnImage, match="no image data"):
        pp.decode_data_url("data:image/png;base64,")


def test_one_pixel_diagonal_strokes_are_kept():
    """An MS-Paint pencil 7: its 1 px diagonal must not be dropped as specks."""
    img = Image.new("1", (300, 300), 1)
    draw = ImageDraw.Draw(img)
    draw.line([(40, 40), (260, 40)], fill=0)
    draw.line([(260, 40), (60, 240)], fill=0)
    pixels = pp.glyph_from_bytes(png_bytes(img)).pixels
    assert pixels[14:, :].sum() > 0.25 * pixels.sum()  # the leg is there, not just the bar
    assert predict(pixels) == "7"


def test_white_sheet_photographed_on_a_dark_desk():
    desk = Image.new("L", (400, 400), 40)
    sheet = Image.new("L", (300, 300), 235)
    ImageDraw.Draw(sheet).line([(80, 70), (220, 70), (130, 240)], fill=20, width=14)
    desk.paste(sheet, (50, 50))
    glyph = pp.glyph_from_bytes(png_bytes(desk))
    assert not glyph.inverted
    assert predict(glyph.pixels) == "7"


def test_sixteen_bit_images_keep_their_real_contrast():
    page = (60000 + np.random.default_rng(0).normal(0, 40, (300, 300))).astype(np.uint16)
    with pytest.raises(BlankImage):  # faint noise on a blank 16-bit page is not ink
        pp.glyph_from_bytes(png_bytes(Image.fromarray(page)))
    seven = np.asarray(canvas_digit(SEVEN).convert("L"), np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(seven).save(buf, "PNG", transparency=123)  # tRNS on a 16-bit grey PNG
    assert predict(pp.glyph_from_bytes(buf.getvalue()).pixels) == "7"


def test_float_image_with_infinite_values_is_refused():
    arr = np.ones((50, 50), np.float32)
    arr[0, 0] = np.inf
    with pytest.raises(NotAnImage, match="invalid"):
        pp.glyph_from_bytes(png_bytes(Image.fromarray(arr, "F"), "TIFF"))


def test_only_the_documented_formats_are_decoded():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(NotAnImage):
        pp.glyph_from_bytes(eps)
    with pytest.raises(NotAnImage):
        pp.glyph_from_bytes(png_bytes(canvas_digit(SEVEN), "ICO"))


def test_large_photo_is_decoded_small():
    big = Image.new("L", (6000, 4500), 230)
    ImageDraw.Draw(big).line([(2000, 1200), (4000, 1200), (2800, 3800)], fill=20, width=200)
    jpeg = png_bytes(big, "JPEG", quality=85)
    assert max(pp.load_image(jpeg).size) <= 2 * pp.WORK_SIDE  # decoded at reduced scale
    assert predict(pp.glyph_from_bytes(jpeg).pixels) == "7"


# ------------------------------------------------------------- one ink recipe, bit for bit


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def _recipe_outputs(path) -> dict[str, str]:
    """What each ink and shrink recipe makes of one fixture image, as digests."""
    img = pp.decode(path.read_bytes(), side=2000)
    gray = pp.to_gray(img)
    out = {
        "shrink": _digest(np.asarray(pp.shrink(img, 300))),
        "reduce": _digest(pp.reduce(gray, 300)),
        "search": _digest(_shrink_for_search(gray, 32)),
    }
    recipes = {
        "ink_map": lambda g: pp.ink_map(g)[0],
        "glyph": lambda g: pp.glyph_from_gray(g).pixels,
        "line_ink": pp.line_ink,
        "page_ink": lambda g: np.stack(segmentation.page_ink(g)),
    }
    for name, recipe in recipes.items():
        try:
            out[name] = _digest(recipe(gray))
        except PreprocessError as exc:
            out[name] = type(exc).__name__
    return out


def test_merged_ink_recipes_give_the_same_pixels_as_the_three_before():
    """``paper_ink`` (one paper-level estimator with glyph, line and page presets) and
    ``box_shrink`` replaced three copies of each; these digests were taken from the copies."""
    golden = json.loads((RESOURCES / "golden_ink.json").read_text())["outputs"]
    assert len(golden) > 100
    changed = {name: _recipe_outputs(RESOURCES / name) for name in golden}
    changed = {name: got for name, got in changed.items() if got != golden[name]}
    assert not changed, sorted(changed)[:5]


def _paper_inputs() -> list[tuple[str, np.ndarray]]:
    """Canvas drawings, clean and lit scans, a flooded blob and a speck of paper: plain paper
    (where the paper level's shortcut applies) and not."""
    rng = np.random.default_rng(7)
    out = []
    for size, width in ((280, 18), (280, 4), (96, 3), (1000, 40), (37, 2)):
        img = canvas_digit([[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]], width=width, size=size)
        out.append((f"canvas {size} pen {width}", np.asarray(img.convert("L"), np.float32) / 255))
    seven = out[0][1]
    out.append(("grey paper", 0.1 + 0.77 * seven))  # a scan whose paper is 0.87, not white
    out.append(("lit", seven * np.linspace(0.6, 1.0, 280, dtype=np.float32)[None, :]))
    out.append(("grain", np.clip(seven - rng.uniform(0, 0.05, seven.shape).astype(np.float32), 0, 1)))
    blob = seven.copy()
    blob[40:240, 40:240] = 0.0  # a filled square wider than the glyph window
    out.append(("blob", blob))
    out.append(("strip", np.ascontiguousarray(seven[100:150])))  # as short as a line
    speck = np.full((280, 280), 0.3, np.float32)
    speck[3, 159] = 1.0
    out.append(("one paper pixel", speck))
    return out


@pytest.mark.parametrize("window,smooth", [(70, 35), (3, 1), (24, 12), (9, 3), (4, 3), (500, 250)])
def test_paper_level_shortcut_is_bit_identical_to_the_closing(window, smooth):
    """Plain paper skips the grey closing and box filter (``_flat_level``); where it does, the level
    is the same to the bit as the filters give, and where it does not (lit, grainy, a blob) the
    filters run."""
    took = {}
    for name, paper in _paper_inputs():
        closed = ndimage.grey_closing(paper, size=(window, window), mode="nearest")
        slow = ndimage.uniform_filter(closed, size=smooth, mode="nearest")
        fast = _paper_level(paper, window, smooth)
        assert fast.dtype == slow.dtype and np.array_equal(fast, slow), name
        took[name] = _flat_level(paper, window) is not None
    assert not took["lit"] and not took["grain"] and not took["one paper pixel"]
    if window >= 70:  # the glyph preset's window on a 280 px canvas: plain paper takes the shortcut
        assert took["canvas 280 pen 18"] and took["grey paper"] and took["canvas 96 pen 3"]


def _reference_drop_specks(ink: np.ndarray) -> np.ndarray:
    """``_drop_specks`` as it was, labelling the whole image (the reference of the test below)."""
    labels, n = ndimage.label(ink > 0, structure=EIGHT_NEIGHBOURS)
    if n <= 1:
        return ink
    mass = ndimage.sum_labels(ink, labels, index=np.arange(1, n + 1))
    edge = np.zeros(n + 1, bool)
    edge[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    keep = (mass >= SPECK_FRACTION * mass.max()) & ~(edge[1:] & (mass < EDGE_FRACTION * mass.max()))
    keep[np.argmax(mass)] = True
    return np.where(np.concatenate([[False], keep])[labels], ink, 0.0).astype(np.float32)


def test_specks_and_stroke_width_match_the_whole_image_scipy_recipes():
    """``_drop_specks`` labels inside the ink's box and ``stroke_width`` erodes by slicing; on
    specks, strokes cut by every border and none, both give what the whole-image scipy calls gave."""
    rng = np.random.default_rng(3)
    for trial in range(60):
        h, w = rng.integers(8, 120, 2)
        ink = np.zeros((h, w), np.float32)
        for _ in range(rng.integers(1, 8)):  # blobs of any size, some over a border
            y, x = rng.integers(-5, h), rng.integers(-5, w)
            dy, dx = rng.integers(1, max(2, h // 2)), rng.integers(1, max(2, w // 2))
            ink[max(0, y) : y + dy, max(0, x) : x + dx] = rng.uniform(0.1, 1.0)
        if trial % 3 == 0:
            ink = np.pad(ink[2:-2, 2:-2], 2)  # nothing at the border
        assert np.array_equal(_drop_specks(ink), _reference_drop_specks(ink)), trial
        mask = ink > 0.5
        assert np.array_equal(_eroded(mask), ndimage.binary_erosion(mask)), trial


def _reference_ink_map(gray: np.ndarray) -> np.ndarray:
    """``ink_map`` over the whole picture, as it was before the glyph path kept only the window
    that holds the ink (the reference of the test below)."""
    inverted = pp.is_light_on_dark(gray)
    paper = 1.0 - gray if inverted else gray
    k = max(3, min(paper.shape) // 4)
    background = np.maximum(_paper_level(paper, max(3, k), max(1, k // 2)), paper)
    ink = np.clip(1.0 - paper / np.maximum(background, 1e-3), 0.0, 1.0)
    n = max(9, ink.size // 50_000)
    marked = ink[ink > 0]
    strong = float(np.partition(marked, -n)[-n]) if marked.size >= n else (0.0 if ink.size > n else float(ink.max()))
    if strong < pp.MIN_CONTRAST:
        raise BlankImage("no ink")
    low = max(0.5 * otsu(ink), pp.MIN_CONTRAST)
    high = float(np.percentile(ink[ink > low], 90)) if np.any(ink > low) else strong
    return _reference_drop_specks(np.clip((ink - low) / max(high - low, 1e-3), 0.0, 1.0))


def test_glyph_path_in_the_ink_window_is_bit_identical_to_the_whole_picture():
    """On plain paper the glyph path computes only the window round the darker pixels
    (``paper_ink_window``); the ink map, the glyph, its ink box and its pieces are the same to the
    bit as computed over the whole picture, with the ink anywhere (at a border or not), light on
    dark, on grey paper, with a speck, and on lit paper (where the whole picture is computed)."""
    rng = np.random.default_rng(5)
    pictures = [paper for _, paper in _paper_inputs() if paper.shape[0] > 40]
    for trial in range(24):
        size, width = int(rng.integers(60, 400)), int(rng.integers(2, 30))
        strokes = [[tuple(rng.uniform(-0.1, 1.1, 2)) for _ in range(3)] for _ in range(int(rng.integers(1, 3)))]
        gray = np.asarray(canvas_digit(strokes, width=width, size=size).convert("L"), np.float32) / 255
        if trial % 4 == 1:
            gray = 1.0 - gray  # light on dark
        elif trial % 4 == 2:
            gray = gray.copy()
            gray[rng.integers(0, size), rng.integers(0, size)] = 0.0  # a speck anywhere
        pictures.append(gray)
    for i, gray in enumerate(pictures):
        gray = pp.crop_to_sheet(pp.reduce(gray))  # the working picture of the glyph path
        try:
            reference = _reference_ink_map(gray)
        except BlankImage:  # no ink at all: the path says so too
            with pytest.raises(BlankImage):
                pp.ink_map(gray)
            continue
        ink, _ = pp.ink_map(gray)
        assert ink.dtype == reference.dtype and np.array_equal(ink, reference), i
        glyph, box = pp.glyph_from_gray(gray), pp.ink_bbox(reference)
        assert glyph.ink_box == box, i
        assert np.array_equal(glyph.pixels, pp.fit_glyph(reference, box)), i
        assert glyph.pieces == pp.side_by_side_pieces(reference, box), i


def test_median_below_half_is_numpys_median_test():
    """``_median_below_half`` counts instead of sorting; it answers as ``np.median(v) < 0.5`` does,
    the middle pair straddling one half (the only case counting cannot settle) included."""
    rng = np.random.default_rng(11)
    cases = [np.array([0.4, 0.6], np.float32), np.array([0.3, 0.6], np.float32), np.array([0.5], np.float32)]
    cases += [np.array([0.2, 0.49, 0.5, 0.9], np.float32), np.array([0.0, 0.49, 0.51, 1.0], np.float32)]
    for _ in range(300):
        n = int(rng.integers(1, 40))
        values = rng.choice(np.float32([0.0, 0.25, 0.4, 0.49, 0.5, 0.51, 0.6, 1.0]), n)
        cases.append(values.reshape(1, n) if n % 3 == 0 else values)
    for values in cases:
        assert _median_below_half(values) == bool(np.median(values) < 0.5), values


def _reference_fit_glyph(ink: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """``fit_glyph`` as it was, padding every crop before the stroke width is set (the reference
    of the test below)."""
    x, y, w, h = box or pp.ink_bbox(ink)
    crop = ink[y : y + h, x : x + w]
    scale = 20 / max(w, h)
    crop = pp.normalise_stroke(np.pad(crop, 2 + int(np.ceil(1.6 / scale))), scale)
    x2, y2, w2, h2 = pp.ink_bbox(crop)
    crop = crop[y2 : y2 + h2, x2 : x2 + w2]
    scale = 20 / max(w2, h2)
    size = (max(1, round(w2 * scale)), max(1, round(h2 * scale)))
    small = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0.0, 1.0)
    small = np.clip(small / max(float(small.max()), 0.5), 0.0, 1.0)
    out = np.zeros((28, 28), np.float32)
    top, left = (28 - size[1]) // 2, (28 - size[0]) // 2
    out[top : top + size[1], left : left + size[0]] = small
    cy, cx = ndimage.center_of_mass(out)
    dy = int(np.clip(round(14 - cy), -top, 28 - size[1] - top))
    dx = int(np.clip(round(14 - cx), -left, 28 - size[0] - left))
    return np.round(np.roll(out, (dy, dx), axis=(0, 1)) * 255).astype(np.uint8)


def _reference_pieces(ink: np.ndarray) -> int:
    """``side_by_side_pieces`` as it was, a loop over the columns (the reference of the test below)."""
    x, y, w, h = pp.ink_bbox(ink)
    inked = ink[y : y + h, x : x + w] > 0
    cols = inked.any(axis=0)
    min_gap = max(3, int(round(0.08 * h)))
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
    rows_of = [np.flatnonzero(inked[:, a:b].any(axis=1)) for a, b in pieces]
    return max(1, sum(1 for r in rows_of if r.size and r[-1] - r[0] + 1 >= h / 3))


def test_fit_glyph_and_pieces_match_the_recipes_they_replace():
    """``fit_glyph`` pads a crop only when its stroke is thickened or thinned, and
    ``side_by_side_pieces`` finds the gaps without a loop; hairlines, markers, strokes in range,
    loose and exact boxes, and characters side by side give what the recipes before gave."""
    rng = np.random.default_rng(13)
    changed = 0
    for trial in range(60):
        size, width = int(rng.integers(40, 400)), int(rng.choice([1, 2, 4, 8, 16, 30, 60]))
        strokes = [[tuple(rng.uniform(0.0, 1.0, 2)) for _ in range(3)] for _ in range(int(rng.integers(1, 4)))]
        ink = 1.0 - np.asarray(canvas_digit(strokes, width=width, size=size).convert("L"), np.float32) / 255
        if not ink.any():
            continue
        x, y, w, h = pp.ink_bbox(ink)
        scale = 20 / max(w, h)
        changed += pp.normalise_stroke(ink[y : y + h, x : x + w], scale) is not ink[y : y + h, x : x + w]
        loose = (max(0, x - 3), max(0, y - 2), w + 4, h + 3) if trial % 3 == 0 else None
        assert np.array_equal(pp.fit_glyph(ink, loose), _reference_fit_glyph(ink, loose)), trial
        assert pp.side_by_side_pieces(ink) == _reference_pieces(ink), trial
        gap = max(3, round(0.08 * h)) + trial % 3 - 1  # two of it side by side, about the smallest gap apart
        pair = np.concatenate([ink, np.zeros((ink.shape[0], gap), np.float32), ink], axis=1)
        assert pp.side_by_side_pieces(pair) == _reference_pieces(pair), trial
    assert changed >= 10  # the padded path (thickened or thinned strokes) was taken too


def test_small_gray_arrays_are_written_as_valid_png_with_the_same_pixels():
    """``to_png`` writes small gray arrays itself (``_small_gray_png``); Pillow reads them back
    exactly and finds every chunk's CRC right, at every size up to the limit and past it."""
    import io as _io

    from models.preprocessing.image import SMALL_PNG_PIXELS, to_png

    rng = np.random.default_rng(5)
    for shape in [(1, 1), (28, 28), (64, 64), (3, 200), (1, SMALL_PNG_PIXELS), (65, 64)]:
        pixels = rng.integers(0, 256, shape).astype(np.uint8)
        for level in (1, 6):
            data = to_png(pixels, compress_level=level)
            Image.open(_io.BytesIO(data)).verify()  # signature, chunk order and CRCs
            back = Image.open(_io.BytesIO(data))
            assert back.mode == "L" and np.array_equal(np.asarray(back), pixels), shape
    glyph = np.zeros((28, 28), np.float64)
    glyph[5:20, 10:14] = 255.0
    assert np.array_equal(np.asarray(Image.open(_io.BytesIO(to_png(glyph)))), glyph.astype(np.uint8))


def test_a_turned_png_size_is_read_from_its_header_only_without_metadata():
    """``image_size`` of a PNG as shown reads the header when no chunk can hold an orientation, and
    otherwise asks Pillow (which decodes the picture to find it): the same size either way."""
    import io as _io

    from PIL import PngImagePlugin

    from models.preprocessing import image as img_mod

    def pillow_size(data: bytes) -> tuple[int, int]:  # the recipe the header read stands in for
        with Image.open(_io.BytesIO(data)) as im:
            w, h = im.size
            turn = im.getexif().get(img_mod.EXIF_ORIENTATION, 1)
        return (h, w) if turn in (5, 6, 7, 8) else (w, h)

    turned = Image.Exif()
    turned[img_mod.EXIF_ORIENTATION] = 6
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "a note")
    cases = {"plain": {}, "exif": {"exif": turned.tobytes()}, "text": {"pnginfo": text}}
    for name, extra in cases.items():
        buf = _io.BytesIO()
        Image.new("L", (503, 125), 255).save(buf, format="PNG", **extra)
        data = buf.getvalue()
        assert img_mod._png_without_metadata(data) == (name == "plain"), name
        assert img_mod.image_size(data) == pillow_size(data), name
    buf = _io.BytesIO()
    Image.new("L", (50, 20), 255).save(buf, format="PNG", exif=turned.tobytes())
    assert img_mod.image_size(buf.getvalue()) == (20, 50)  # shown turned
    cut = buf.getvalue()[:40]  # cut short: not read from the header, Pillow says what is wrong
    assert not img_mod._png_without_metadata(cut)


def test_a_png_size_is_read_from_its_header_as_pillow_reads_it():
    import io as _io

    from models.preprocessing.image import image_size

    for w, h in [(1, 1), (280, 280), (503, 125), (4000, 3)]:
        buf = _io.BytesIO()
        Image.new("RGBA" if w % 2 else "L", (w, h), 255).save(buf, format="PNG")
        assert image_size(buf.getvalue(), turned=False) == image_size(buf.getvalue()) == (w, h)
    with pytest.raises(OSError):  # not a PNG Pillow can open: what Pillow raises, as before
        image_size(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, turned=False)


def test_edge_share_by_bands_is_the_whole_picture_share():
    """``edge_share`` counts in bands of rows (small temporaries); the share is the whole-picture
    recipe's, to the bit, for pictures of one band, many bands, a last band of one row, and bands
    of one row each."""
    from models.preprocessing.image import EDGE_CHUNK, edge_share

    def whole(gray: np.ndarray) -> float:
        if gray.shape[0] < 2 or gray.shape[1] < 2:
            return 0.0
        across = np.count_nonzero(np.abs(np.diff(gray, axis=1)) > 0.25) / (gray.shape[0] * (gray.shape[1] - 1))
        down = np.count_nonzero(np.abs(np.diff(gray, axis=0)) > 0.25) / ((gray.shape[0] - 1) * gray.shape[1])
        return (across + down) / 2

    rng = np.random.default_rng(4)
    w = 1409
    shapes = [(1, 5), (5, 1), (2, 2), (280, 280), (2 * (EDGE_CHUNK // w) + 1, w), (700, 1414), (9, EDGE_CHUNK + 3)]
    for shape in shapes:
        for speckle in (False, True):
            gray = rng.random(shape).astype(np.float32)
            if speckle:
                gray = np.where(gray > 0.9, 0.2, 0.9).astype(np.float32)
            assert edge_share(gray) == whole(gray), shape


def test_page_paper_level_is_divided_out_in_place_as_by_the_plain_recipe():
    """On a page (``PAGE_PAPER``, estimated at a quarter size), the ink is computed in the
    upsampled paper level's own array; it is the plain recipe's, to the bit, for float32 and
    float64 pictures, sides that are and are not multiples of the step, and either polarity."""
    from models.preprocessing import ink as ink_mod

    def plain(gray: np.ndarray) -> np.ndarray:
        preset = ink_mod.PAGE_PAPER
        inverted = ink_mod.is_light_on_dark(gray)
        paper = 1.0 - gray if inverted else gray
        h, w = paper.shape
        k = max(preset.min_window, min(h, w) // preset.window_divisor)
        s = preset.step
        window, smooth = max(3, k // s), max(preset.min_smooth, k // s // 2)
        background = ink_mod._paper_level(paper[::s, ::s], window, smooth)
        background = np.kron(background, np.ones((s, s), background.dtype))[:h, :w]
        background = np.maximum(background, paper)
        return np.clip(1.0 - paper / np.maximum(background, 1e-3), 0.0, 1.0)

    rng = np.random.default_rng(9)
    cases = [(400, 283, np.float32, False), (401, 300, np.float64, False), (240, 323, np.float32, True)]
    for h, w, dtype, dark in cases:
        yy, xx = np.mgrid[0:h, 0:w]
        gray = (0.9 - 0.3 * xx / w - 0.1 * yy / h + 0.02 * rng.standard_normal((h, w))).astype(dtype)
        gray[h // 3 : h // 3 + 6, 20 : w - 20] = 0.15  # a stroke
        gray[1::4, 2::4] += 0.08  # paper brighter than the quarter-size estimate saw (off its grid)
        gray = np.clip(gray, 0, 1)
        if dark:
            gray = 1.0 - gray
        ink, corner, _ = ink_mod.paper_ink_window(gray, ink_mod.PAGE_PAPER)
        assert corner == (0, 0) and ink.dtype == plain(gray).dtype
        assert np.array_equal(ink, plain(gray)), (h, w, dtype)
