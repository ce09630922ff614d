"""The served forward passes: each shipped ONNX export answers as its Keras model does on real
fixtures, the registry refuses an export its meta.json does not record, and a server that only
serves never imports TensorFlow."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from models.errors import WeightsError
from models.loading import (
    KERAS_FILE,
    ONNX_FILE,
    OnnxForward,
    filter_windows,
    load_line_filter,
    load_line_model,
    load_recognizer,
)
from models.preprocessing import line_from_gray
from models.registry import WEIGHTS_DIR
from tests.helpers import RESOURCES, ROOT, copied_weights, edit_meta, stop_workers
from training import export_onnx
from training.lib import keras_to_onnx

TOLERANCE = 1e-5  # the bound on |ONNX - Keras|


@functools.cache
def keras_model(folder):
    import keras

    return keras.models.load_model(folder / KERAS_FILE, compile=False)


def keras_outputs(folder, batch: np.ndarray) -> np.ndarray:
    return np.asarray(keras_model(folder)(batch, training=False))


def fixture_glyphs() -> np.ndarray:
    mnist = np.load(RESOURCES / "mnist_test_first500.npz")["x"][:200]
    emnist = np.load(RESOURCES / "emnist_heldout_300.npz")["x"][:200]
    return np.concatenate([mnist, emnist])[..., None]


def fixture_strips() -> list[np.ndarray]:
    files = sorted((RESOURCES / "lines").glob("*.png"))  # two: Keras runs the LSTMs step by step
    return [line_from_gray(np.asarray(Image.open(f).convert("L"), np.float32) / 255.0) for f in files[:2]]


@pytest.mark.parametrize("name", ["digit", "character", "glyph-gate"])
def test_exported_glyph_models_give_the_keras_probabilities(name):
    glyphs = fixture_glyphs()
    served = load_recognizer(WEIGHTS_DIR / name)
    assert isinstance(served._forward, OnnxForward)
    diff = np.abs(served.probabilities(glyphs) - keras_outputs(WEIGHTS_DIR / name, glyphs)).max()
    assert diff <= TOLERANCE


def test_exported_line_model_and_filter_give_the_keras_outputs():
    strips = fixture_strips()
    line, handwriting = load_line_model(WEIGHTS_DIR / "line"), load_line_filter(WEIGHTS_DIR / "line-filter")
    assert isinstance(line._forward, OnnxForward) and isinstance(handwriting._forward, OnnxForward)
    for strip in strips:
        batch = strip[None, :, :, None]
        assert np.abs(line.probabilities(strip) - keras_outputs(WEIGHTS_DIR / "line", batch)[0]).max() <= TOLERANCE
    windows = np.concatenate([filter_windows(s) for s in strips])[..., None]
    want = keras_outputs(WEIGHTS_DIR / "line-filter", windows)
    assert np.abs(handwriting._forward(windows) - want).max() <= TOLERANCE


def test_an_export_that_is_not_the_one_recorded_is_refused(tmp_path):
    dst = copied_weights(tmp_path)
    shutil.copy(WEIGHTS_DIR / "character" / ONNX_FILE, dst / ONNX_FILE)  # another model's export
    with pytest.raises(WeightsError, match="not the export its meta.json records"):
        load_recognizer(dst, "digit")


def test_an_export_not_recorded_in_meta_json_is_refused(tmp_path):
    dst = copied_weights(tmp_path)
    edit_meta(dst, lambda meta: meta.pop("onnx"))
    with pytest.raises(WeightsError, match="training.export_onnx"):
        load_recognizer(dst, "digit")


def test_an_export_whose_outputs_differ_from_the_labels_is_refused(tmp_path):
    dst = copied_weights(tmp_path)
    edit_meta(dst, lambda meta: meta.update(labels=meta["labels"][:5]))
    with pytest.raises(WeightsError, match="10 outputs for 5 labels"):
        load_recognizer(dst, "digit")


def test_a_folder_without_an_export_is_served_through_keras_with_the_same_answers(tmp_path, mnist_sample):
    dst = copied_weights(tmp_path)
    (dst / ONNX_FILE).unlink()
    legacy, served = load_recognizer(dst, "digit"), load_recognizer(WEIGHTS_DIR / "digit", "digit")
    assert not isinstance(legacy._forward, OnnxForward)
    x = mnist_sample[0][:100]
    np.testing.assert_allclose(legacy.probabilities(x), served.probabilities(x), atol=TOLERANCE)


def test_the_export_command_writes_the_file_and_its_record(tmp_path, mnist_sample):
    dst = copied_weights(tmp_path)
    (dst / ONNX_FILE).unlink()
    edit_meta(dst, lambda meta: meta.pop("onnx"))
    export_onnx.main([str(dst)])
    record = json.loads((dst / "meta.json").read_text())["onnx"]
    assert record["file"] == ONNX_FILE and record["max_abs_diff"] <= TOLERANCE and record["opset"] >= 13
    served = load_recognizer(dst, "digit")
    assert isinstance(served._forward, OnnxForward)
    assert (served.probabilities(mnist_sample[0][:500]).argmax(1) == mnist_sample[1][:500]).mean() > 0.98


def test_an_export_that_differs_from_keras_is_not_written(tmp_path, monkeypatch):
    import keras

    monkeypatch.setattr(keras_to_onnx, "TOLERANCE", 0.0)  # any float difference at all now fails
    model = keras.models.load_model(WEIGHTS_DIR / "line-filter" / KERAS_FILE, compile=False)
    with pytest.raises(ValueError, match="differs from Keras"):
        keras_to_onnx.export_onnx(model, tmp_path)
    assert not list(tmp_path.iterdir())


SERVE_EVERY_TASK = textwrap.dedent(
    """
    import base64, io, json, sys
    from pathlib import Path
    import numpy as np
    from app import create_app
    from training.data.pages import compose_sheet, glyph_sources
    settings = {"TESTING": True, "FEEDBACK_DB": sys.argv[1], "PERSONAL_DIR": sys.argv[2], "ADMIN_TOKEN": "t"}
    app = create_app(settings | {"FEEDBACK_SYNC_BACKGROUND": False})
    client, resources = app.test_client(), Path("tests/resources")
    digit = (resources / "photo_digits").glob("*.png").__next__().read_bytes()
    line = sorted((resources / "lines").glob("*.png"))[0].read_bytes()
    page = sorted((resources / "pages").glob("*.jpg"))[0].read_bytes()
    answers = {}
    for task, data in [("digit", digit), ("character", digit), ("line", line), ("page", page)]:
        r = client.post("/upload", data={"task": task, "file": (io.BytesIO(data), "x.png")})
        answers[task] = r.status_code
    sources = glyph_sources(resources / "mnist_test_first500.npz", resources / "photo_digits")
    sheet = io.BytesIO()
    compose_sheet(sources, np.random.default_rng(4), per_row=6).save(sheet, "PNG")
    checked = client.post("/sheet/check", data={"file": (io.BytesIO(sheet.getvalue()), "s.png")}).get_json()
    body = {"sheet_id": checked["sheet_id"], "name": "sheet"}
    answers["sheet"] = client.post("/sheet/train", json=body, headers={"Authorization": "Bearer t"}).status_code
    sample = "data:image/png;base64," + base64.b64encode(digit).decode()
    body = {"image": sample, "task": "digit", "label": "7", "profile": "one"}
    answers["teach"] = client.post("/personal/teach", json=body).status_code
    print(json.dumps({"answers": answers, "tensorflow": "tensorflow" in sys.modules, "keras": "keras" in sys.modules}))
    """
)


def test_a_server_that_only_serves_never_imports_tensorflow(tmp_path):
    """It reads every task and queues a sheet's training and a teach (their workers import it)."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", SERVE_EVERY_TASK, str(tmp_path / "feedback.sqlite3"), str(tmp_path / "personal")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    finally:
        stop_workers(tmp_path / "personal")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {
        "answers": dict.fromkeys(["digit", "character", "line", "page"], 200) | {"sheet": 202, "teach": 202},
        "tensorflow": False,
        "keras": False,
    }
