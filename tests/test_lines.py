"""Groundwork for handwritten lines (issue 6): line preprocessing, the IAM offline loader, CTC
decoding and error rates, and the CRNN's batch independence."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app import recognize_command
from models.decoding.ctc import beam_search, edit_distance, error_rates, greedy
from models.errors import BlankImage
from models.loading import load_line_model
from models.preprocessing import (
    LINE_HEIGHT,
    estimate_skew,
    estimate_slant,
    line_from_gray,
    line_ink,
)
from models.preprocessing.lines import _affine
from models.registry import WEIGHTS_DIR
from tests.helpers import RESOURCES, SHARED_DATA, make_app, tiny_line_weights
from training.data.lines import load_iam_offline, load_names_words, render


def handwriting(shear: float = 0.0, dark_on_light: bool = True) -> np.ndarray:
    """A line of strokes (loops and verticals, like cursive), optionally slanted."""
    img = Image.new("L", (900, 160), 255 if dark_on_light else 0)
    draw = ImageDraw.Draw(img)
    ink = 0 if dark_on_light else 255
    for k in range(14):
        x = 40 + 60 * k
        draw.line([(x, 120), (x, 40)], fill=ink, width=6)
        draw.ellipse((x + 8, 70, x + 44, 120), outline=ink, width=6)
    gray = np.asarray(img, np.float32) / 255
    if shear:
        ink_map = 1 - gray if dark_on_light else gray
        sheared = _affine(ink_map, shear=shear)
        gray = 1 - sheared if dark_on_light else sheared
    return np.clip(gray, 0, 1)


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
    tilted = _affine(line_ink(handwriting()), angle_deg=angle)
    found = estimate_skew(tilted)
    assert found == pytest.approx(-angle, abs=1.0)  # the rotation that levels it again
    rows = (_affine(tilted, angle_deg=found) > 0.3).any(axis=1).sum()
    assert rows <= (line_ink(handwriting()) > 0.3).any(axis=1).sum() + 12


def test_an_empty_line_is_blank():
    with pytest.raises(BlankImage):
        line_from_gray(np.full((80, 400), 0.95, np.float32))


def test_rendered_pen_strokes_are_read_like_an_upload():
    pts = np.array([[0, 0], [0, 100], [50, 100], [80, 0], [80, 100]], np.int16)
    pen_up = np.array([0, 1, 0, 0, 1], np.uint8)
    plain, varied = render(pts, pen_up), render(pts, pen_up, np.random.default_rng(3))
    assert plain.min() < 0.2 and plain.max() == 1.0 and varied.shape != plain.shape
    assert line_from_gray(varied).shape[0] == LINE_HEIGHT


def test_iam_offline_layout_is_read(tmp_path):
    (tmp_path / "lines" / "a01" / "a01-000u").mkdir(parents=True)
    Image.new("L", (300, 60), 255).save(tmp_path / "lines" / "a01" / "a01-000u" / "a01-000u-00.png")
    (tmp_path / "lines.txt").write_text(
        "#--- comment\n"
        "a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell\n"
        "a01-000u-01 err 156 19 395 932 1850 105 from|nominating|any|more\n"
    )
    rows = list(load_iam_offline(tmp_path))
    assert rows == [(tmp_path / "lines" / "a01" / "a01-000u" / "a01-000u-00.png", "A MOVE to stop Mr. Gaitskell")]
    assert rows[0][0].exists()


def test_iam_offline_lines_become_training_strips(tmp_path):
    """The training command's ``--iam-offline`` path: real line images prepared like uploads; a
    blank image or one too narrow for its text is left out."""
    import shutil

    from tests.helpers import RESOURCES
    from training.train_lines import offline_strips

    folder = tmp_path / "lines" / "b01" / "b01-059z"
    folder.mkdir(parents=True)
    shutil.copy(RESOURCES / "lines" / "b01-059z-01.png", folder / "b01-059z-01.png")
    Image.new("L", (300, 60), 255).save(folder / "b01-059z-02.png")
    shutil.copy(RESOURCES / "lines" / "b01-059z-01.png", folder / "b01-059z-03.png")
    (tmp_path / "lines.txt").write_text(
        "b01-059z-01 ok 154 19 408 746 1661 89 That|is|not|a|ceremonial|duty,|and|the\n"
        "b01-059z-02 ok 154 19 408 746 1661 89 blank\n"
        f"b01-059z-03 ok 154 19 408 746 1661 89 {'|'.join(['far-too-long-a-text'] * 20)}\n"
    )
    xs, ys = offline_strips(tmp_path)
    assert ys == ["That is not a ceremonial duty, and the"]
    assert xs[0].shape[0] == LINE_HEIGHT and xs[0].dtype == np.uint8


def test_scanned_names_are_split_into_training_and_held_out_files(tmp_path):
    root = tmp_path / "names_words"
    (root / "images").mkdir(parents=True)
    rows = ["file,text"]
    for i in range(1003, 0, -1):  # the order of labels.csv does not matter
        rows.append(f"VALIDATION_{i:04d}.jpg,{'UNREADABLE' if i in (5, 900) else f'NAME{i}'}")
        Image.new("L", (40, 20), 255).save(root / "images" / f"VALIDATION_{i:04d}.jpg")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    train_grays, train_texts = load_names_words(tmp_path, "train")
    grays, texts = load_names_words(tmp_path, "test")
    assert len(train_texts) == 799 and train_texts[0] == "NAME1" and train_texts[-1] == "NAME800"
    assert len(texts) == 202 and texts[0] == "NAME801" and "NAME900" not in texts
    assert grays[0].shape == (20, 40) and grays[0].max() == 1.0


def ctc_probs(path: str, charset: str) -> np.ndarray:
    """One-hot-ish columns spelling ``path`` ('_' = blank)."""
    probs = np.full((len(path), len(charset) + 1), 0.01)
    for t, ch in enumerate(path):
        probs[t, len(charset) if ch == "_" else charset.index(ch)] = 1.0
    return probs / probs.sum(axis=1, keepdims=True)


def test_ctc_decoding_collapses_repeats_and_keeps_doubled_letters():
    charset = " ehlo"
    probs = ctc_probs("hh_e_ll_l_oo", charset)
    assert greedy(probs, charset) == "hello"
    assert beam_search(probs, charset) == "hello"


def test_beam_search_sums_alignments():
    """Greedy picks the best path; beam search finds the text whose paths together are likelier."""
    charset = "ab"
    probs = np.array([[0.3, 0.0, 0.7], [0.3, 0.0, 0.7]])  # columns: a, b, blank
    assert greedy(probs, charset) == ""  # blank, blank: 0.49
    assert beam_search(probs, charset) == "a"  # a_, _a, aa: 0.21 + 0.21 + 0.09 = 0.51


def test_error_rates_are_edits_over_reference_length():
    assert edit_distance("kitten", "sitting") == 3
    rates = error_rates(["the cat sat", "on the mat"], ["the bat sat", "on mat"])
    assert rates["cer"] == pytest.approx((1 + 4) / (11 + 10))
    assert rates["wer"] == pytest.approx((1 + 1) / (3 + 3))


def test_crnn_answers_do_not_depend_on_the_batch():
    import tensorflow as tf

    from models.architectures import build_crnn

    model = build_crnn(10, width=8, lstm=16)
    line = line_from_gray(handwriting())[None, ..., None]
    filler = np.random.default_rng(0).integers(0, 255, line.shape, dtype=np.uint8)
    alone = model(line, training=False).numpy()
    together = model(tf.concat([line, filler], axis=0), training=False).numpy()[:1]
    assert alone.shape[1] == line.shape[2] // 4
    np.testing.assert_allclose(alone, together, atol=1e-5)


@pytest.fixture(scope="module")
def line_weights(tmp_path_factory):
    """A tiny CRNN saved like the shipped line model: it exercises loading, splitting, decoding and
    the API shape (it is untrained, so no test here judges what it reads)."""
    root = tmp_path_factory.mktemp("weights")
    tiny_line_weights(root)
    return root


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
    from models.preprocessing import decode, to_gray
    from models.segmentation.lines import split_lines

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


def test_spelling_correction_weighs_candidates_by_the_writing():
    """Read "anty": without the columns the likeliest English word is "any"; the columns say the
    first letter might be a d and the second a u, and nothing there is a blank between n and y."""
    from models.decoding.ctc import alignment, text_log_likelihood
    from models.decoding.spelling import Speller

    charset = " adntuy"

    def column(**weights):
        p = np.full(len(charset) + 1, 0.002)
        for ch, w in weights.items():
            p[len(charset) if ch == "blank" else charset.index(ch)] = w
        return p / p.sum()

    probs = np.array(
        [
            column(a=0.55, d=0.45),
            column(blank=1.0),
            column(n=0.55, u=0.45),
            column(blank=1.0),
            column(t=1.0),
            column(blank=1.0),
            column(y=1.0),
        ]
    )
    speller = Speller.english()
    assert speller.line("anty") == "any"
    assert speller.line("anty", probs, charset) == "duty"
    assert text_log_likelihood(probs, "duty", charset) > text_log_likelihood(probs, "any", charset)
    assert alignment(probs, "anty", charset) == [0, 2, 4, 6]
    assert alignment(probs, "anty anty", charset) is None  # more letters than columns
    assert speller.line("anty anty", probs, charset) == "any any"  # then the words alone decide


def test_spelling_correction_keeps_case_and_punctuation():
    from models.decoding.spelling import Speller

    speller = Speller.english()
    assert speller.line("The quikc brown fox, Mr. Gaitskell said.") == "The quick brown fox, Mr. Gaitskell said."
    assert Speller(["Gaitskell", "Labour"]).line("Gaitskel and Labuor") == "Gaitskell and Labour"


@pytest.mark.skipif(not (SHARED_DATA / "iam_ondb_lines").exists(), reason="needs ../shared/data")
def test_evaluate_lines_reports_cer_and_wer(line_weights):
    from models.loading import load_line_model
    from tests.helpers import SHARED_DATA
    from training.evaluate_lines import evaluate

    r = evaluate(SHARED_DATA, load_line_model(line_weights / "line"), limit=3)
    assert r["lines"] == 3 and set(r) >= {"greedy", "beam", "greedy+spelling", "beam+spelling"}
    assert 0 <= r["beam"]["cer"] and 0 <= r["greedy"]["wer"]


def test_training_reads_iam_offline_lines_it_can_use(tmp_path):
    from training.train_lines import offline_strips

    folder = tmp_path / "lines" / "a01" / "a01-000u"
    folder.mkdir(parents=True)
    Image.fromarray(np.round(handwriting() * 255).astype(np.uint8)).save(folder / "a01-000u-00.png")
    Image.new("L", (300, 60), 255).save(folder / "a01-000u-01.png")  # blank: skipped
    (tmp_path / "lines.txt").write_text(
        "a01-000u-00 ok 154 19 408 746 1661 89 loops|and|lines\na01-000u-01 ok 154 19 408 746 1661 89 blank\n"
    )
    xs, ys = offline_strips(tmp_path)
    assert ys == ["loops and lines"] and xs[0].shape[0] == LINE_HEIGHT


@pytest.mark.skipif(
    not (WEIGHTS_DIR / "line" / "model.keras").exists(),
    reason="no line model installed yet (python -m training.train_lines --data-dir ../shared/data)",
)
def test_the_shipped_line_model_reads_held_out_lines(client):
    """10 lines of IAM-OnDB's writer-independent test set, uploaded as images."""

    from models.decoding.ctc import error_rates
    from tests.helpers import RESOURCES

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


def test_training_can_add_characters_to_a_run_and_keep_what_it_learnt():
    from models.architectures import build_crnn
    from training.train_lines import grow_charset

    old, new = build_crnn(3, width=4, lstm=8), build_crnn(4, width=4, lstm=8)
    grow_charset(new, old, "abc", "aXbc")
    k_old, b_old = old.get_layer("chars").get_weights()
    k_new, b_new = new.get_layer("chars").get_weights()
    assert np.array_equal(k_new[:, [0, 2, 3, 4]], k_old) and np.array_equal(b_new[[0, 2, 3, 4]], b_old)
    assert not np.array_equal(k_new[:, 1], k_old[:, 0])  # X starts fresh
    assert all(
        np.array_equal(w1, w2)
        for a, b in zip(old.layers, new.layers, strict=True)
        if a.name != "chars"
        for w1, w2 in zip(a.get_weights(), b.get_weights(), strict=True)
    )


def photographed_paragraph(names: list[str], skew: float = 1.5, gap: int = 10) -> bytes:
    """Real test lines stacked into a paragraph (``gap`` pixels between their images; below zero,
    tails of one line reach into the next) on grey, unevenly lit paper, slightly rotated, with
    sensor noise, saved as a JPEG like a phone photo."""

    from tests.helpers import RESOURCES

    lines = [Image.open(RESOURCES / "lines" / name).convert("L") for name in names]
    width = max(im.width for im in lines) + 120
    page = Image.new("L", (width, sum(im.height + gap for im in lines) + 120), 255)
    y = 60
    for im in lines:
        page.paste(
            Image.fromarray(np.minimum(np.asarray(page.crop((60, y, 60 + im.width, y + im.height))), im)), (60, y)
        )
        y += im.height + gap
    page = page.rotate(skew, expand=True, fillcolor=255, resample=Image.Resampling.BILINEAR)
    gray = np.asarray(page, np.float32) / 255
    h, w = gray.shape
    light = 0.9 - 0.25 * np.linspace(0, 1, w)[None, :] - 0.1 * np.linspace(0, 1, h)[:, None]
    noisy = gray * light + np.random.default_rng(0).normal(0, 0.02, gray.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy * 255, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_a_photographed_paragraph_comes_back_line_by_line(client):
    from models.decoding.ctc import error_rates
    from tests.helpers import RESOURCES

    truth = json.loads((RESOURCES / "lines" / "truth.json").read_text())
    names = ["b01-059z-01.png", "d09-612z-08.png", "n05-541z-06.png", "n09-202z-05.png"]
    data = photographed_paragraph(names)
    body = client.post("/upload", data={"file": (io.BytesIO(data), "paragraph.jpg"), "task": "line"}).get_json()
    assert len(body["lines"]) == 4, body
    assert [line["y"] for line in body["lines"]] == sorted(line["y"] for line in body["lines"])
    assert body["raw_text"].split("\n") == [line["raw_text"] for line in body["lines"]]
    assert error_rates([truth[n] for n in names], [line["raw_text"] for line in body["lines"]])["cer"] <= 0.3


def test_training_keeps_the_last_epochs_and_can_average_them(tmp_path):
    import keras

    from models.architectures import build_crnn
    from training.train_lines import keep_epoch_weights, try_average

    model = build_crnn(2, width=4, lstm=8)
    for epoch in range(1, 5):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        keep_epoch_weights(model, tmp_path / "epochs", epoch, keep=3)
    assert sorted(p.name for p in (tmp_path / "epochs").iterdir()) == [f"epoch-00{e}.weights.h5" for e in (2, 3, 4)]
    strip = np.zeros((LINE_HEIGHT, 40), np.uint8)
    best = try_average(model, lambda x: model(x), tmp_path, 3, {"cer": 9.9}, ([strip], ["ab"]), "ab")
    assert best["averaged_epochs"] == [2, 3, 4] and best["epoch"] == 4
    averaged = keras.models.load_model(tmp_path / "best.keras", compile=False)
    assert all(np.allclose(w, 3.0) for w in averaged.get_weights())  # the mean of 2, 3 and 4
    assert try_average(model, lambda x: model(x), tmp_path, 3, {"cer": 0.0}, ([strip], ["ab"]), "ab") == {"cer": 0.0}


def test_lines_whose_tails_touch_are_still_told_apart(client):
    """No empty row separates these lines: the line pitch comes from the row profile, and every
    stroke stays whole with its own line."""

    from models.decoding.ctc import error_rates
    from models.preprocessing import decode, to_gray
    from models.segmentation.lines import split_lines
    from tests.helpers import RESOURCES

    truth = json.loads((RESOURCES / "lines" / "truth.json").read_text())
    names = ["d09-612z-08.png", "a05-297z-03.png", "n05-541z-06.png"]
    data = photographed_paragraph(names, skew=0.0, gap=-40)
    gray = to_gray(decode(data, side=4000))
    parts = split_lines(gray)
    assert len(parts) == 3
    body = client.post("/upload", data={"file": (io.BytesIO(data), "touching.jpg"), "task": "line"}).get_json()
    assert len(body["lines"]) == 3
    assert error_rates([truth[n] for n in names], [line["raw_text"] for line in body["lines"]])["cer"] <= 0.3


# ---------------------------------------------------------------- answers as people write them


def test_answers_have_no_space_before_punctuation():
    from models.decoding.spelling import tidy_text

    assert tidy_text("Vang lieng ,the pro-") == "Vang lieng, the pro-"
    assert tidy_text("Plain of Jars ,howeve-,") == "Plain of Jars, howeve-,"
    assert tidy_text("don 't go .Then he said :yes !") == "don't go. Then he said: yes!"
    assert tidy_text('communists " former') == 'communists " former'  # quotes as written
    assert tidy_text("e.g. 3.5 and 1,000 - well") == "e.g. 3.5 and 1,000 - well"


def test_names_are_kept_and_every_change_is_listed():
    from models.decoding.spelling import Speller, looks_like_name

    speller = Speller.english()
    text, changes = speller.correct("The quikc brown fox met KYLLIAN and Gaetan in Penh.")
    assert text == "The quick brown fox met KYLLIAN and Gaetan in Penh."  # names are not dictionary words
    assert changes == [{"raw": "quikc", "corrected": "quick", "word": 1}]
    assert looks_like_name("He met Norman.", 7, "Norman") and not looks_like_name("Norman met him.", 0, "Norman")
    assert looks_like_name("a TRIGUEL", 2, "TRIGUEL") and not looks_like_name("so. The", 4, "The")


def test_a_line_answer_lists_its_corrections(client):
    from tests.helpers import RESOURCES

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

    import matplotlib
    from PIL import ImageFont

    from tests.helpers import RESOURCES

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
    from models.decoding.ctc import error_rates
    from tests.helpers import RESOURCES

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
    from tests.helpers import RESOURCES

    names = sorted(json.loads((RESOURCES / "lines" / "truth.json").read_text()))[:4]
    body = client.post("/upload", data={"file": (io.BytesIO(photographed_paragraph(names)), "p.jpg"), "task": "line"})
    body = body.get_json()
    assert len(body["lines"]) == 4 and "dropped" not in body and "message" not in body


@LINE_FILTER_NEEDED
def test_printed_text_alone_is_read_with_a_warning(client):
    import matplotlib
    from PIL import ImageFont

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSerif.ttf"), 40)
    page = Image.new("L", (700, 120), 255)
    ImageDraw.Draw(page).text((20, 30), "Printed words, not handwriting", fill=0, font=font)
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    body = client.post("/upload", data={"file": (io.BytesIO(buf.getvalue()), "p.png"), "task": "line"}).get_json()
    assert len(body["lines"]) == 1 and "handwriting" in body["message"]


def tiny_iam_ondb(folder) -> None:
    """A staged-format IAM-OnDB file of 12 training and 4 validation lines, all the one test
    line of tests/resources/lines/strokes.json (its pen strokes, as IAM-OnDB's integer points)."""
    line = json.loads((RESOURCES / "lines" / "strokes.json").read_text())
    xy = np.concatenate([np.array(s, np.float32) * [840, 240] for s in line["strokes"]]).astype(np.int16)
    end = np.concatenate([np.eye(1, len(s), len(s) - 1, dtype=np.uint8)[0] for s in line["strokes"]])
    splits = ["train"] * 12 + ["val1"] * 4
    (folder / "iam_ondb_lines").mkdir(parents=True)
    np.savez(
        folder / "iam_ondb_lines" / "iam_ondb_lines.npz",
        xy=np.tile(xy, (len(splits), 1)),
        end=np.tile(end, len(splits)),
        offsets=np.arange(len(splits) + 1) * len(xy),
        text=np.array([line["text"]] * len(splits)),
        line_id=np.array([f"t01-000-{i:02d}" for i in range(16)]),
        split=np.array(splits),
    )


def test_line_training_runs_end_to_end_and_publishes_an_onnx_export(tmp_path, monkeypatch):
    import training.data.lines
    import training.train_lines as train_lines
    from models.inference import OnnxForward

    monkeypatch.setattr(training.data.lines, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(train_lines, "CHECKPOINTS", tmp_path / "checkpoints")
    tiny_iam_ondb(tmp_path / "data")
    out = tmp_path / "line"
    flags = ["--data-dir", str(tmp_path / "data"), "--out", str(out), "--run-name", "tiny"]
    flags += "--val-lines 4 --names-repeat 0 --average 1 --width 4 --lstm 8 --variants 1".split()
    train_lines.main([*flags, "--epochs", "1"])  # one epoch: tracing the training step is most of it
    log = (tmp_path / "checkpoints" / "tiny" / "log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in log] == ["1"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["training"]["epochs"] == 1 and meta["labels"] == sorted(set("replied Norman, with a chuckle"))
    assert meta["onnx"]["sha256"] and meta["input_shape"] == [48, None, 1]
    served = load_line_model(out)
    assert isinstance(served._forward, OnnxForward)
    assert served.probabilities(np.zeros((48, 64), np.uint8)).shape == (16, len(meta["labels"]) + 1)
