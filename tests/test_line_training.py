"""Training the line model (training/train_lines.py) and its data (training/data/lines.py): the IAM
offline and scanned-name loaders, rendered pen strokes, the CRNN's batch independence, growing the
charset, keeping and averaging epochs, the evaluation (training/evaluate_lines.py), and a whole tiny
run that publishes an ONNX export. TensorFlow is imported only inside the tests that build a model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import training.data.lines
from models.loading import OnnxForward, load_line_model
from models.preprocessing import LINE_HEIGHT, line_from_gray
from tests.helpers import RESOURCES, SHARED_DATA, handwriting
from training.data.lines import load_iam_offline, load_names_words, render
from training.evaluate_lines import evaluate


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


@pytest.mark.skipif(not (SHARED_DATA / "iam_ondb_lines").exists(), reason="needs ../shared/data")
def test_evaluate_lines_reports_cer_and_wer(line_weights):
    r = evaluate(SHARED_DATA, load_line_model(line_weights / "line"), limit=3)
    assert r["lines"] == 3 and set(r) >= {"greedy", "beam", "greedy+spelling", "beam+spelling"}
    assert 0 <= r["beam"]["cer"] and 0 <= r["greedy"]["wer"]


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
    import training.train_lines as train_lines

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
