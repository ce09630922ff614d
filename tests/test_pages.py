"""Pages through the real API and CLI: composed pages of held-out real digits over ruling, squares
and tables (tests/resources/pages, ground truth in truth.json), reading order, slant, both
engines, the two downloadable images, per-glyph feedback, and bad pages."""

from __future__ import annotations

import base64
import functools
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from app import recognize_command
from models.segmentation.page import segment
from tests.helpers import RESOURCES, png_bytes
from training.evaluate_pages import score_page

PAGES = RESOURCES / "pages"
TRUTH = json.loads((PAGES / "truth.json").read_text())


def upload_page(client, data: bytes, name: str = "page.jpg", **fields) -> tuple[int, dict]:
    form = {"file": (io.BytesIO(data), name), "task": "page"} | fields
    resp = client.post("/upload", data=form)
    return resp.status_code, resp.get_json()


def mnist_page(rows: list[str], mnist_sample, slant_deg: float = 0.0, gap: int = 14) -> bytes:
    """Dark MNIST test digits on light paper, one text row per entry, spaces as gaps; ``gap``
    pixels between the glyphs of a number (the ink of a glyph is about 46 px tall)."""
    x, y = mnist_sample
    by_label = {str(d): [a for a, b in zip(x, y, strict=True) if b == d] for d in range(10)}
    page = Image.new("L", (900, 120 * len(rows) + 80), 235)
    for r, text in enumerate(rows):
        cx = 60
        for i, ch in enumerate(text):
            if ch == " ":
                cx += 60
                continue
            digit = by_label[ch][(r * 7 + i) % len(by_label[ch])]
            cols = np.flatnonzero(digit.max(axis=0) > 60)
            glyph = Image.fromarray(255 - digit[:, cols[0] : cols[-1] + 1])
            glyph = glyph.resize((glyph.width * 64 // 28, 64))
            box = (cx, 50 + r * 120)
            under = np.asarray(page.crop((*box, box[0] + glyph.width, box[1] + 64)))
            page.paste(Image.fromarray(np.minimum(under, np.asarray(glyph))), box)
            cx += glyph.width + gap  # handwriting keeps about the same gap between glyphs
    if slant_deg:
        page = page.rotate(slant_deg, resample=Image.BILINEAR, expand=True, fillcolor=235)
    return png_bytes(page)


def test_composed_pages_read_at_least_97_percent(client):
    totals = {"glyphs": 0, "detected": 0, "right": 0, "gaps": 0, "space_errors": 0}
    for name, truth in TRUTH.items():
        status, body = upload_page(client, (PAGES / name).read_bytes(), name)
        assert status == 200, body
        score = score_page(truth, body)
        for k in totals:
            totals[k] += score[k]
    assert totals["glyphs"] > 500
    assert totals["detected"] / totals["glyphs"] >= 0.98  # detection recall
    assert totals["right"] / totals["glyphs"] >= 0.97  # end to end, the target
    assert totals["gaps"] > 500 and totals["space_errors"] <= 0.01 * totals["gaps"]  # numbers apart, digits together


def test_the_hog_engine_reads_the_same_pages(client):
    name = "page_04_table.jpg"
    status, body = upload_page(client, (PAGES / name).read_bytes(), name, engine="hog")
    assert status == 200 and body["engine"] == "hog" and body["model"]["name"] == "hog-digit"
    score = score_page(TRUTH[name], body)
    assert score["right"] / score["glyphs"] >= 0.9


def test_response_shape_and_reading_order(client, mnist_sample):
    status, body = upload_page(client, mnist_page(["12 3", "456", "7 89"], mnist_sample), "p.png")
    assert status == 200, body
    assert body["text"] == "12 3\n456\n7 89"
    assert [line["text"] for line in body["lines"]] == ["12 3", "456", "7 89"]
    assert len(body["glyphs"]) == 9
    g = body["glyphs"][0]
    assert {"x", "y", "w", "h", "text", "confidence", "candidates", "prediction_id", "line"} <= set(g)
    assert g["text"] == "1" and len(g["candidates"]) == 5 and g["line"] == 0
    for key in ("annotated_png", "rendering_png"):
        assert body[key].startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(body[key].split(",", 1)[1])))
        assert img.size == (body["read"]["width"], body["read"]["height"])  # the page as read


def test_boxes_are_in_the_pixels_of_the_uploaded_image(client, mnist_sample):
    """A page uploaded at three times the size it is read at comes back with boxes three times as
    large as those of the page uploaded at the read size, and says the scale beside them."""
    small = Image.open(io.BytesIO(mnist_page(["12 3", "45"], mnist_sample)))
    big = small.resize((small.width * 3, small.height * 3), Image.BILINEAR)
    assert max(big.size) > 2000  # read downscaled
    k = 2000 / max(big.size)
    _, at_read = upload_page(client, png_bytes(big.resize((round(big.width * k), round(big.height * k)))), "r.png")
    _, body = upload_page(client, png_bytes(big), "big.png")
    assert body["image"] == {"width": big.width, "height": big.height}
    assert body["read"] == at_read["image"] | {"scale": pytest.approx(at_read["image"]["width"] / big.width, abs=1e-4)}
    for key in ("glyphs", "lines"):
        for mine, read in zip(body[key], at_read[key], strict=True):
            for side in ("x", "y", "w", "h"):
                assert mine[side] == pytest.approx(read[side] / body["read"]["scale"], abs=2)


def test_rows_whose_gaps_are_all_spaces_keep_them(client, mnist_sample):
    """Well-separated digits (a row of single digits, two numbers) come back with their spaces."""
    status, body = upload_page(client, mnist_page(["1 2", "7 5 3 0", "48 96"], mnist_sample), "s.png")
    assert status == 200 and body["text"] == "1 2\n7 5 3 0\n48 96"
    assert [g["space_before"] for g in body["glyphs"][:2]] == [False, True]


@pytest.mark.parametrize("gap", [6, 14, 24])
def test_a_number_written_with_its_own_spacing_stays_one(mnist_sample, gap):
    """Tight, ordinary or roomy spacing inside a number (up to half a glyph height) is no space."""
    picture = Image.open(io.BytesIO(mnist_page(["31415926", "2718 28"], mnist_sample, gap=gap)))
    page = segment(np.asarray(picture) / 255)
    assert [[g.space_before for g in row] for row in page.rows] == [[False] * 8, [False] * 4 + [True, False]]


def test_slanted_rows_stay_rows(client, mnist_sample):
    status, body = upload_page(client, mnist_page(["1234 567", "890 1234"], mnist_sample, slant_deg=4), "s.png")
    assert status == 200 and body["text"] == "1234 567\n890 1234"


def test_a_glyph_on_a_page_can_be_corrected(app, client, mnist_sample):
    _, body = upload_page(client, mnist_page(["12"], mnist_sample), "p.png")
    pid = body["glyphs"][1]["prediction_id"]
    ack = client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": "7"})
    assert ack.status_code == 200
    row = app.extensions["feedback"].feedback("digit")[0]
    assert row.prediction_id == pid and row.label == "7" and row.predicted == "2"
    assert Image.open(io.BytesIO(row.input_png)).size[0] > 28  # the glyph's crop of the page


def test_an_empty_page_says_so(client):
    paper = np.full((1200, 900), 230, np.uint8) + np.random.default_rng(0).integers(0, 6, (1200, 900)).astype(np.uint8)
    status, body = upload_page(client, png_bytes(paper), "empty.png")
    assert status == 422 and body["error"]["code"] == "blank_image"


def test_a_page_of_printed_text_is_flagged(client):
    img = Image.new("L", (1200, 420), 255)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(["The quick brown fox jumps", "over the lazy dog. Invoice", "Total amount due: EUR"]):
        draw.text((40, 40 + i * 120), line, fill=0, font=ImageFont.load_default(size=48))
    status, body = upload_page(client, png_bytes(img), "printed.png")
    assert status == 200 and "does not look much like handwritten digits" in body["message"]


def test_thousands_of_specks_get_a_clear_answer(client):
    rng = np.random.default_rng(1)
    img = np.full((1500, 1500), 240, np.uint8)
    ys, xs = rng.integers(0, 1500, 30_000), rng.integers(0, 1500, 30_000)
    img[ys, xs] = 0
    status, body = upload_page(client, png_bytes(img), "specks.png")
    assert status in (200, 422)
    if status == 422:
        assert body["error"]["code"] in ("too_noisy", "blank_image") and body["error"]["message"]


def test_a_huge_photo_is_read_downscaled(client):
    name = "page_01_none.jpg"
    big = Image.open(PAGES / name).resize((4800, 6240), Image.BILINEAR)
    status, body = upload_page(client, png_bytes(big, "JPEG", quality=85), "big.jpg")
    assert status == 200 and max(body["read"]["width"], body["read"]["height"]) <= 2000
    assert body["image"] == {"width": 4800, "height": 6240}  # the boxes' pixels: the uploaded file's
    score = score_page(TRUTH[name], body)
    assert score["right"] / score["glyphs"] >= 0.95


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"alphabet": "kanji"}, "alphabet"),
        ({"engine": "ocr"}, "engine"),
        ({"alphabet": "character", "engine": "hog"}, "HOG engine reads digit"),
    ],
)
def test_bad_alphabet_or_engine(client, fields, words):
    status, body = upload_page(client, png_bytes(Image.new("L", (50, 50), 255)), "x.png", **fields)
    assert status == 400 and body["error"]["code"] == "bad_page_request" and words in body["error"]["message"]


def test_cli_reads_a_page(runner):
    result = runner.invoke(recognize_command, ["--task", "page", "--engine", "hog", str(PAGES / "page_02_lines.jpg")])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert line["task"] == "page" and line["engine"] == "hog" and line["text"].count("\n") >= 5


def test_segmentation_splits_two_touching_digits(mnist_sample):
    """Two digits written touching are cut apart at the waist between them."""
    x, y = mnist_sample
    a, b = x[list(y).index(1)], x[list(y).index(0)]
    pair = np.zeros((28, 46), np.uint8)
    pair[:, :28] = a
    pair[:, 16:44] = np.maximum(pair[:, 16:44], b)
    row = np.full((200, 600), 1.0, np.float32)
    for k, glyph in enumerate([x[0], pair, x[1], x[2]]):
        big = np.asarray(Image.fromarray(glyph).resize((glyph.shape[1] * 3, 84)), np.float32) / 255
        row[60:144, 40 + 140 * k : 40 + 140 * k + big.shape[1]] -= big
    page = segment(np.clip(row, 0, 1))
    assert len(page.glyphs) == 5


def test_a_page_of_letters_with_an_alphabet_hint(client):
    """Photographed letters on a page: with ``alphabet=letter`` (or ``upper``) every glyph is read
    among those classes only, and the answer says which alphabet it used."""
    names = ["CAP_O", "CAP_I", "CAP_S", "CAP_Z", "CAP_E"]  # (CAP_B_98, a B with a gap, is read as two glyphs)
    crops = [Image.open(next((RESOURCES / "photo_chars").glob(f"{n}_*.png"))).convert("L") for n in names]
    crops = [c.resize((round(c.width * 90 / c.height), 90)) for c in crops]
    page = Image.new("L", (120 * len(crops) + 80, 220), 235)
    for i, c in enumerate(crops):
        page.paste(c, (60 + 120 * i, 60))
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    for hint, allowed in (("letter", str.isalpha), ("upper", str.isupper)):
        status, body = upload_page(client, buf.getvalue(), "letters.png", alphabet=hint)
        assert status == 200 and body["alphabet"] == hint and body["model"]["name"] == "character"
        assert len(body["glyphs"]) == len(names)
        assert all(allowed(c["label"]) for g in body["glyphs"] for c in g["candidates"])
    assert body["text"].replace(" ", "") == "OISZE"


def test_a_glyph_of_a_letter_page_can_be_corrected(client, mnist_sample):
    """A page read with an alphabet hint stores its glyphs under that alphabet; correcting one is
    checked against the labels of the model the alphabet names."""
    _, body = upload_page(client, mnist_page(["12"], mnist_sample), "p.png", alphabet="letter")
    glyph = body["glyphs"][0]
    label = "Q" if glyph["text"] != "Q" else "R"
    ack = client.post("/feedback", json={"prediction_id": glyph["prediction_id"], "correct": False, "label": label})
    assert ack.status_code == 200 and ack.get_json()["label"] == label


def test_each_page_line_carries_its_confidence_and_each_glyph_its_place(client, mnist_sample):
    """A line's ``confidence`` is the mean of its glyphs' (the figure the page shows), and a glyph's
    ``offset`` is where its text stands in its line's: a correction is put in there."""
    _, body = upload_page(client, mnist_page(["12 3", "7 89"], mnist_sample), "p.png")
    for r, line in enumerate(body["lines"]):
        glyphs = [g for g in body["glyphs"] if g["line"] == r]
        total = 0.0
        for g in glyphs:
            total += g["confidence"]
            assert line["text"][g["offset"] : g["offset"] + len(g["text"])] == g["text"]
        assert line["confidence"] == total / len(glyphs)
    assert [g["offset"] for g in body["glyphs"]] == [0, 1, 3, 0, 2, 3]
    third = body["glyphs"][2]
    line = body["lines"][third["line"]]["text"]
    assert line[: third["offset"]] + "5" + line[third["offset"] + 1 :] == "12 5"


def test_ruling_filters_near_the_lines_match_the_whole_picture_recipes():
    """``_open_1d`` (only rows or columns long enough) and ``_near_lines`` (only bands round the
    lines) give what the filters give run over the whole picture, lines at the borders included."""
    from scipy import ndimage

    from models.segmentation import page as seg

    rng = np.random.default_rng(5)
    for trial in range(12):
        h, w = rng.integers(40, 160, size=2)
        mask = rng.random((h, w)) < 0.15  # writing-like specks
        for _ in range(3):  # ruling, a line at the border in some trials
            r = int(rng.choice([0, h - 1, rng.integers(0, h)]))
            c = int(rng.choice([0, w - 1, rng.integers(0, w)]))
            mask[r, int(rng.integers(0, w // 3)) : w - int(rng.integers(0, w // 3))] = True
            mask[int(rng.integers(0, h // 3)) : h, c] = True
        length = int(rng.integers(8, 30))
        mask[h // 2, 3 : 3 + length] = True  # a run exactly as long as the line, alone in its row
        mask[h // 2, 3 + length :] = False
        mask[h // 2, :3] = False
        for axis in (0, 1):
            m = mask.astype(np.uint8)
            eroded = ndimage.minimum_filter1d(m, length, axis=axis, mode="constant", cval=0)
            whole = ndimage.maximum_filter1d(eroded, length, axis=axis, mode="constant", cval=0).astype(bool)
            assert np.array_equal(seg._open_1d(mask, length, axis), whole), (trial, axis)
        lines = seg._open_1d(mask, length, 1)
        rows_on = lines.any(axis=1)
        grown = seg._near_lines(lambda m: seg._dilate(m, 3), lines, rows_on, 0, 1, 2)
        assert np.array_equal(grown, ndimage.maximum_filter(lines.astype(np.uint8), size=3).astype(bool))
        thick = int(rng.integers(2, 9))
        across = functools.partial(seg._close_rect, size=(thick, 3))
        closed = seg._near_lines(across, mask, grown.any(axis=1), 0, 0, thick + 1)
        assert np.array_equal(closed & grown, seg._close_rect(mask, (thick, 3)) & grown), trial
        cols = seg._open_1d(mask, length, 0)
        across = functools.partial(seg._close_rect, size=(3, thick))
        closed = seg._near_lines(across, mask, cols.any(axis=0), 1, 0, thick + 1)
        assert np.array_equal(closed & cols, seg._close_rect(mask, (3, thick)) & cols), trial
        halo = seg._near_lines(lambda m: seg._dilate(m, 5), cols, cols.any(axis=0), 1, 2, 3)
        assert np.array_equal(halo, ndimage.maximum_filter(cols.astype(np.uint8), size=5).astype(bool))


def test_label_fonts_are_loaded_once_per_size_and_thread():
    """The annotated and rendered pictures' fonts are kept per size, per thread (a FreeType face
    is not shared between threads), and the kept sizes are bounded."""
    import threading

    from models.reading import page as reading

    assert reading._font(20.4) is reading._font(20) is not reading._font(21)
    other = []
    worker = threading.Thread(target=lambda: other.append(reading._font(20)))
    worker.start()
    worker.join()
    assert other[0] is not reading._font(20)
    for size in range(8, 300):
        reading._font(size)
    assert len(reading._FONTS.by_size) <= 64
