"""Loading models (models/loading/): the shipped digit model's metadata and its accuracy through the
served path, the refusal to load weights that do not match the code, the model protocol every loaded
model offers, and meta.json's one vocabulary."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.errors import WeightsError
from models.loading import load_recognizer, read_meta, write_meta
from models.preprocessing import PREPROCESSING_VERSION, glyph_from_bytes
from models.protocols import Model
from models.registry import WEIGHTS_DIR, shared_registry
from tests.helpers import RESOURCES, SHARED_DATA, copied_weights, edit_meta, png_bytes
from training.data.glyphs import load_mnist

DIGIT_DIR = WEIGHTS_DIR / "digit"


@pytest.fixture(scope="module")
def digit_model():
    return shared_registry().get("digit")


def test_meta_records_what_a_user_needs():
    meta = json.loads((DIGIT_DIR / "meta.json").read_text())
    assert meta["labels"] == list("0123456789")
    assert meta["input_shape"] == [28, 28, 1]
    assert meta["preprocessing_version"] == PREPROCESSING_VERSION
    assert meta["training"]["command"].startswith("python -m training.train_digits")
    assert meta["metrics"]["mnist_test"]["samples"] == 10_000
    assert meta["metrics"]["mnist_test"]["accuracy"] >= 0.996


def mnist_test_images() -> tuple[np.ndarray, np.ndarray]:
    """3,000 official test digits from the staged data when present, else the shipped 500."""
    if (SHARED_DATA / "mnist").exists():
        _, _, x, y = load_mnist(SHARED_DATA)
        idx = np.random.default_rng(0).choice(len(x), 3000, replace=False)
        return x[idx], y[idx]
    d = np.load(RESOURCES / "mnist_test_first500.npz")
    return d["x"], d["y"]


def test_mnist_accuracy_through_the_upload_path(digit_model):
    x, y = mnist_test_images()
    glyphs = np.stack([glyph_from_bytes(png_bytes(a)).pixels for a in x])
    pred = digit_model.probabilities(glyphs).argmax(1)
    assert (pred == y).mean() >= 0.99


def test_reads_real_photographed_digits(digit_model, photo_digits):
    glyphs = np.stack([glyph_from_bytes(p.read_bytes()).pixels for p, _ in photo_digits])
    pred = [digit_model.labels[i] for i in digit_model.probabilities(glyphs).argmax(1)]
    right = sum(p == lab for p, (_, lab) in zip(pred, photo_digits, strict=False))
    assert right / len(photo_digits) >= 0.9


def test_one_image_gets_the_same_answer_alone_or_in_a_batch(digit_model, mnist_sample):
    x, _ = mnist_sample
    alone = digit_model.probabilities(x[:1])
    batched = digit_model.probabilities(x[:64])[:1]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


def test_refuses_weights_from_another_preprocessing_version(tmp_path):
    dst = copied_weights(tmp_path)
    edit_meta(dst, lambda meta: meta.update(preprocessing_version="0"))
    with pytest.raises(WeightsError, match="training.train_digits"):
        load_recognizer(dst, "digit")


def test_refuses_missing_weights(tmp_path):
    (tmp_path / "digit").mkdir()
    with pytest.raises(WeightsError, match="No trained digit model"):
        load_recognizer(tmp_path / "digit", "digit")


def test_every_loaded_model_offers_the_model_protocol():
    reg = shared_registry()
    models = [reg.get(t) for t in reg.tasks()] + [reg.hog("digit"), reg.glyph_gate()]
    models += [reg.line()] if reg.has_line() else []
    assert all(isinstance(m, Model) for m in models if m is not None)


def test_meta_json_has_one_vocabulary_and_reads_the_old_line_keys(tmp_path):
    old = {"name": "line", "version": "1", "charset": "ab ", "input_height": 48, "line_preprocessing_version": "2"}
    write_meta(tmp_path, old)
    meta = read_meta(tmp_path)
    assert meta["labels"] == ["a", "b", " "] and meta["input_shape"] == [48, None, 1]
    assert meta["preprocessing"] == "line" and meta["preprocessing_version"] == "2"
    assert not {"charset", "input_height", "line_preprocessing_version"} & set(meta)
    assert not list(tmp_path.glob("*.tmp"))  # written by a rename: no half file left behind
    for folder in sorted(DIGIT_DIR.parent.iterdir()):
        raw = json.loads((folder / "meta.json").read_text())
        assert not {"charset", "input_height", "line_preprocessing_version"} & set(raw), folder.name
    (tmp_path / "meta.json").write_text("[1, 2]")
    with pytest.raises(WeightsError, match="not a JSON object"):
        read_meta(tmp_path)
