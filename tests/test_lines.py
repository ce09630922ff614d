"""Groundwork for handwritten lines (issue 6): line preprocessing, the IAM offline loader, CTC
decoding and error rates, and the CRNN's batch independence."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.ctc import beam_search, edit_distance, error_rates, greedy
from models.preprocessing import LINE_HEIGHT, BlankImage, _affine, estimate_slant, line_from_gray, line_ink
from training.lines_data import load_iam_offline, render


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
