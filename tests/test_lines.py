"""Reading handwritten lines: line preprocessing (models/preprocessing/line.py), splitting a
paragraph into its lines (models/segmentation/lines.py), the line task through the API and the CLI
with a tiny model, the shipped line model on real and photographed lines, and the handwriting filter
that drops printed labels, rules and cut-off lines."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from app import recognize_command
from models.decoding.ctc import error_rates
from models.errors import BlankImage
from models.preprocessing import (
    LINE_HEIGHT,
    decode,
    estimate_skew,
    estimate_slant,
    line_from_gray,
    line_ink,
    to_gray,
)
from models.preprocessing.line import affine
from models.registry import WEIGHTS_DIR
from models.segmentation.lines import split_lines
from tests.helpers import RESOURCES, handwriting, make_app, photographed_paragraph


def test_a_line_strip_has_the_model_height_and_keeps_the_aspect():
    strip = line_from_gray(handwriting())
    assert strip.dtype == np.uint8 and strip.shape[0] == LINE_HEIGHT
    assert 6 < strip.shape[1] / strip.shape[0] < 14  # 860 x 90 px of ink -> about 9.5 : 1
    assert strip[:2].max() == 0 and strip[-2:].max() == 0  # margins above and below


def test_polarity_does_not_matter():
    a, b = line_from_gray(handwriting()), line_from_gray(handwriting(dark_on_light=False))
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < 3


def test_slant_is_measured_and_removed():
    upright = line_ink(handwriting())
    assert abs(estimate_slant(upright)) <= 0.1
    slanted = line_ink(handwriting(shear=0.4))
    assert estimate_slant(slanted) == pytest.approx(-0.4, abs=0.11)  # the shear that undoes it
    assert abs(line_from_gray(handwriting(shear=0.4)).shape[1] - line_from_gray(handwriting()).shape[1]) < 20


@pytest.mark.parametrize("angle", [-6.0, 0.0, 4.0])
def test_skew_is_measured_and_undone(angle):
    tilted = affine(line_ink(handwriting()), angle_deg=angle)
    found = estimate_skew(tilted)
    assert found == pytest.approx(-angle, abs=1.0)  # the rotation that levels it again
    rows = (affine(tilted, angle_deg=found) > 0.3).any(axis=1).sum()
    assert rows <= (line_ink(handwriting()) > 0.3).any(axis=1).sum() + 12


def test_an_empty_line_is_blank():
    with pytest.raises(BlankImage):
        line_from_gray(np.full((80, 400), 0.95, np.float32))


def paragraph_png(lines: int = 3, skew: float = 2.0) -> bytes:
    img = Image.new("L", (1000, 130 * lines + 60), 255)
    draw = ImageDraw.Draw(img)
    for r in range(lines):
        for k in range(12):
            x, y = 40 + 75 * k, 60 + 130 * r
            draw.line([(x, y + 60), (x, y)], fill=0, width=5)
            draw.ellipse((x + 8, y + 25, x + 40, y + 60), outline=0, width=5)
        draw.point((40 + 75 * 3 + 20, 45 + 130 * r), fill=0)  # a stray dot above the line: no extra line
    img = img.rotate(skew, expand=True, fillcolor=255)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_a_paragraph_is_split_into_its_lines():
    parts = split_lines(to_gray(decode(paragraph_png(4), side=2000)))
    assert len(parts) == 4
    ys = [box[1] for box, _ in parts]
    assert ys == sorted(ys)


def upload_line(client, lines: int = 1, **fields):
    """``POST /upload`` of a drawn paragraph of ``lines`` lines with the line task."""
    return client.post("/upload", data={"file": (io.BytesIO(paragraph_png(lines)), "p.png"), "task": "line"} | fields)


def test_a_paragraph_upload_answers_each_line_with_its_box(tmp_path, line_weights):
    resp = upload_line(make_app(tmp_path, WEIGHTS_DIR=str(line_weights)).test_client(), 2)
    body = resp.get_json()
    assert resp.status_code == 200, body
    assert body["task"] == "line" and len(body["lines"]) == 2 and body["text"].count("\n") == 1
    assert {"text", "raw_text", "confidence", "x", "y", "w", "h"} <= set(body["lines"][0])
    assert body["decoder"] == "beam" and body["corrected"] is True and body["model"]["version"] == "0"


def test_a_line_correction_is_stored_and_one_the_model_cannot_write_is_refused(tmp_path, line_weights):
    app = make_app(tmp_path, WEIGHTS_DIR=str(line_weights))
    client = app.test_client()
    pid = upload_line(client, 2).get_json()["lines"][0]["prediction_id"]
    fix = client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": "a loop and a line"})
    assert fix.status_code == 200 and fix.get_json()["label"] == "a loop and a line"
    bad_fix = client.post("/feedback", json={"prediction_id": pid, "correct": False, "label": "déjà vu"})
    assert bad_fix.status_code == 400 and "cannot write" in bad_fix.get_json()["error"]["message"]
    (row,) = app.extensions["feedback"].feedback("line")
    assert row.source == "line" and row.model_input_png.startswith(b"\x89PNG")


def test_a_greedy_uncorrected_reading_is_the_raw_text(tmp_path, line_weights):
    client = make_app(tmp_path, WEIGHTS_DIR=str(line_weights)).test_client()
    plain = upload_line(client, decoder="greedy", correct="false").get_json()
    assert plain["text"] == plain["raw_text"] and plain["corrected"] is False


def test_an_unknown_decoder_is_refused(tmp_path, line_weights):
    bad = upload_line(make_app(tmp_path, WEIGHTS_DIR=str(line_weights)).test_client(), decoder="viterbi")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_line_request"


def test_corrections_come_from_the_configured_word_list(tmp_path, line_weights):
    (tmp_path / "words.txt").write_text("loops\nlines\n")
    constrained = make_app(tmp_path, WEIGHTS_DIR=str(line_weights), LINE_WORDS=str(tmp_path / "words.txt"))
    body = upload_line(constrained.test_client()).get_json()
    assert body["task"] == "line"
    assert set(constrained.extensions["line_speller"][1].sym.words) == {"loops", "lines"}  # the list was used


def test_the_cli_reads_a_line_without_correction(tmp_path, line_weights):
    app = make_app(tmp_path, WEIGHTS_DIR=str(line_weights))
    (tmp_path / "p.png").write_bytes(paragraph_png(1))
    result = app.test_cli_runner().invoke(
        recognize_command, ["--task", "line", "--no-correct", str(tmp_path / "p.png")]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["corrected"] is False


def test_without_a_line_model_the_task_is_refused(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "digit").symlink_to(WEIGHTS_DIR / "digit")
    client = make_app(tmp_path, WEIGHTS_DIR=str(tmp_path / "weights")).test_client()
    resp = client.post("/upload", data={"file": (io.BytesIO(paragraph_png(1)), "p.png"), "task": "line"})
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "unknown_task"


@pytest.mark.skipif(
    not (WEIGHTS_DIR / "line" / "model.keras").exists(),
    reason="no line model installed yet (python -m training.train_lines --data-dir ../shared/data)",
)
def test_the_shipped_line_model_reads_held_out_lines(client):
    """10 lines of IAM-OnDB's writer-independent test set, uploaded as images."""

    truth = json.loads((RESOURCES / "lines" / "truth.json").read_text())
    raw, corrected = [], []
    for name in truth:
        data = (RESOURCES / "lines" / name).read_bytes()
        body = client.post("/upload", data={"file": (io.BytesIO(data), name), "task": "line"}).get_json()
        assert len(body["lines"]) == 1, body
        raw.append(body["raw_text"])
        corrected.append(body["text"])
    assert error_rates(list(truth.values()), raw)["cer"] <= 0.3  # meta.json has the full test-set figure
    assert error_rates(list(truth.values()), corrected)["cer"] <= 0.3


def test_a_photographed_paragraph_comes_back_line_by_line(client):
    truth = json.loads((RESOURCES / "lines" / "truth.json").read_text())
    names = ["b01-059z-01.png", "d09-612z-08.png", "n05-541z-06.png", "n09-202z-05.png"]
    data = photographed_paragraph(names)
    body = client.post("/upload", data={"file": (io.BytesIO(data), "paragraph.jpg"), "task": "line"}).get_json()
    assert len(body["lines"]) == 4, body
    assert [line["y"] for line in body["lines"]] == sorted(line["y"] for line in body["lines"])
    assert body["raw_text"].split("\n") == [line["raw_text"] for line in body["lines"]]
    assert error_rates([truth[n] for n in names], [line["raw_text"] for line in body["lines"]])["cer"] <= 0.3


def test_lines_whose_tails_touch_are_still_told_apart(client):
    """No empty row separates these lines: the line pitch comes from the row profile, and every
    stroke stays whole with its own line."""

    truth = json.loads((RESOURCES / "lines" / "truth.json").read_text())
    names = ["d09-612z-08.png", "a05-297z-03.png", "n05-541z-06.png"]
    data = photographed_paragraph(names, skew=0.0, gap=-40)
    gray = to_gray(decode(data, side=4000))
    parts = split_lines(gray)
    assert len(parts) == 3
    body = client.post("/upload", data={"file": (io.BytesIO(data), "touching.jpg"), "task": "line"}).get_json()
    assert len(body["lines"]) == 3
    assert error_rates([truth[n] for n in names], [line["raw_text"] for line in body["lines"]])["cer"] <= 0.3


def test_a_line_answer_lists_its_corrections(client):
    for path in sorted((RESOURCES / "lines").glob("*.png"))[:5]:
        body = client.post("/upload", data={"file": (io.BytesIO(path.read_bytes()), path.name), "task": "line"})
        body = body.get_json()
        for line in body["lines"]:
            raw_words, words = re.findall(r"[A-Za-z]+", line["raw_text"]), re.findall(r"[A-Za-z]+", line["text"])
            assert len(raw_words) == len(words)
            for change in line["corrections"]:
                assert raw_words[change["word"]] == change["raw"] and words[change["word"]] == change["corrected"]
            changed = {c["word"] for c in line["corrections"]}
            assert all(raw_words[i] == words[i] for i in range(len(words)) if i not in changed)
            assert not re.search(r" [.,;:?!']", line["text"])


# ---------------------------------------------------------------- only the handwriting comes back


def form_crop(name: str, label: str = "PRENOM :", cut: bool = True) -> bytes:
    """A test line as a form field: a printed label above it, a dotted rule below and, with ``cut``,
    the bottom of the line above cut off by the top edge."""

    line = Image.open(RESOURCES / "lines" / name).convert("L")
    line = line.resize((round(line.width * 60 / line.height), 60))
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans-Bold.ttf"), 16)
    page = Image.new("L", (line.width + 60, 190), 255)
    draw = ImageDraw.Draw(page)
    if cut:
        page.paste(line, (30, -34))  # the line above, cut off by the crop
    draw.text((30, 30), label, fill=0, font=font)
    page.paste(line, (30, 60))
    for x in range(30, 30 + line.width, 8):
        draw.ellipse((x, 150, x + 3, 153), fill=40)
    buf = io.BytesIO()
    page.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


LINE_FILTER_NEEDED = pytest.mark.skipif(
    not (WEIGHTS_DIR / "line-filter" / "model.keras").exists(),
    reason="no handwriting filter (python -m training.train_line_filter --data-dir ../shared/data)",
)


@LINE_FILTER_NEEDED
def test_printed_labels_rules_and_cut_off_lines_are_dropped(client):
    truth = json.loads((RESOURCES / "lines" / "truth.json").read_text())
    name = "n05-541z-06.png"
    body = client.post("/upload", data={"file": (io.BytesIO(form_crop(name)), "form.jpg"), "task": "line"}).get_json()
    assert len(body["lines"]) == 1, body
    assert error_rates([truth[name]], [body["raw_text"]])["cer"] <= 0.3
    assert len(body["dropped"]) >= 2 and {d["reason"] for d in body["dropped"]} <= {"cut_off", "not_handwriting"}
    assert all({"x", "y", "w", "h"} <= set(d) for d in body["dropped"])
    assert body["lines"][0]["handwriting"] >= 0.5


@LINE_FILTER_NEEDED
def test_a_paragraph_keeps_every_line(client):
    names = sorted(json.loads((RESOURCES / "lines" / "truth.json").read_text()))[:4]
    body = client.post("/upload", data={"file": (io.BytesIO(photographed_paragraph(names)), "p.jpg"), "task": "line"})
    body = body.get_json()
    assert len(body["lines"]) == 4 and "dropped" not in body and "message" not in body


@LINE_FILTER_NEEDED
def test_printed_text_alone_is_read_with_a_warning(client):
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSerif.ttf"), 40)
    page = Image.new("L", (700, 120), 255)
    ImageDraw.Draw(page).text((20, 30), "Printed words, not handwriting", fill=0, font=font)
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    body = client.post("/upload", data={"file": (io.BytesIO(buf.getvalue()), "p.png"), "task": "line"}).get_json()
    assert len(body["lines"]) == 1 and "handwriting" in body["message"]


def test_each_correction_says_where_it_stands_in_its_line(client):
    """A corrected word's ``start`` and ``end`` point at it in the line's text, and putting the raw
    words back there (what a click on the page does) gives the raw reading."""
    placed = 0
    for path in sorted((RESOURCES / "lines").glob("*.png"))[:5]:
        body = client.post("/upload", data={"file": (io.BytesIO(path.read_bytes()), path.name), "task": "line"})
        for line in body.get_json()["lines"]:
            text = line["text"]
            for change in reversed(line["corrections"]):
                assert line["text"][change["start"] : change["end"]] == change["corrected"]
                text = text[: change["start"]] + change["raw"] + text[change["end"] :]
                placed += 1
            assert text == line["raw_text"]
    assert placed >= 1
