"""Training commands on a small real sample: data loading, weights + meta.json, and resuming."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.loading import CURRENT, read_meta
from tests.helpers import RESOURCES, ROOT, write_idx
from training.data.glyphs import load_mnist, read_idx, split_indices
from training.provenance import config_record, publish_meta


def mnist_dir(root: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """A --data-dir holding a small MNIST in the official file layout."""
    d = root / "mnist"
    d.mkdir(parents=True)
    write_idx(d / "train-images-idx3-ubyte.gz", x[:400])
    write_idx(d / "train-labels-idx1-ubyte.gz", y[:400])
    write_idx(d / "t10k-images-idx3-ubyte.gz", x[400:])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", y[400:])
    return root


def test_idx_loader_round_trip(tmp_path, mnist_sample):
    x, y = mnist_sample
    mnist_dir(tmp_path, x, y)
    assert np.array_equal(read_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz"), x[:400])
    xt, yt, xs, ys = load_mnist(tmp_path)
    assert np.array_equal(xt, x[:400]) and np.array_equal(yt, y[:400]) and np.array_equal(ys, y[400:])


def test_stratified_split_keeps_every_class_and_never_overlaps(mnist_sample):
    _, y = mnist_sample
    keep, held = split_indices(y, 0.2, seed=3)
    assert not set(keep) & set(held) and len(keep) + len(held) == len(y)
    assert set(y[held]) == set(y)


def train(data: Path, tmp: Path, epochs: int, **popen) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "training.train_digits",
        "--data-dir",
        str(data),
        "--epochs",
        str(epochs),
        "--out",
        str(tmp / "out"),
        "--checkpoint-dir",
        str(tmp / "ckpt"),
        "--run-name",
        "smoke",
        "--batch-size",
        "64",
    ]
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def logged_epochs(tmp: Path) -> list[int]:
    path = tmp / "ckpt" / "smoke" / "log.csv"
    if not path.exists():
        return []
    return [int(r[0]) for r in csv.reader(path.open()) if r and r[0].isdigit()]


EPOCHS = 12  # the first run is killed after its second epoch: far from the end, and quick to finish


def test_training_writes_weights_with_meta_and_resumes_after_a_kill(tmp_path, mnist_sample):
    x, y = mnist_sample
    data = mnist_dir(tmp_path / "data", x, y)
    first = train(data, tmp_path, epochs=EPOCHS)
    deadline = time.time() + 240
    while len(logged_epochs(tmp_path)) < 2 and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = max(logged_epochs(tmp_path))
    assert 0 < killed_at < EPOCHS - 1, "the run should have been killed part way"
    second = train(data, tmp_path, epochs=EPOCHS)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    epochs = logged_epochs(tmp_path)
    resumed = epochs[epochs.index(killed_at) + 1 :]
    assert resumed and resumed[0] >= killed_at, "the second run must continue, not start again at epoch 0"
    assert max(epochs) == EPOCHS - 1
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["labels"] == list("0123456789") and meta["input_shape"] == [28, 28, 1]
    assert f"--epochs {EPOCHS}" in meta["training"]["command"]
    assert meta["metrics"]["mnist_test"]["samples"] == 100
    assert (tmp_path / "out" / "model.keras").stat().st_size > 100_000


def test_character_training_end_to_end_on_a_small_sample(tmp_path, mnist_sample):
    """train_characters on 300 EMNIST-format glyphs + MNIST: weights, meta, figures by case, "not sure"."""
    x, y = mnist_sample
    data = mnist_dir(tmp_path / "data", x, y)
    (data / "emnist").mkdir()
    d = np.load(RESOURCES / "emnist_heldout_300.npz")
    np.savez(data / "emnist" / "emnist_byclass_test_split.npz", x=d["x"], y=d["y"])
    cmd = [
        sys.executable,
        "-m",
        "training.train_characters",
        "--data-dir",
        str(data),
        "--epochs",
        "2",
        "--outliers",
        "30",
        "--mnist-extra",
        "200",
        "--out",
        str(tmp_path / "out"),
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["labels"] == list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    assert meta["training"]["outliers"] == 30 and meta["training"]["data"]["emnist"]["test"] > 0
    assert {"accuracy_case_insensitive", "letters_accuracy"} <= set(meta["metrics"]["emnist_test"])
    assert 0 <= meta["unsure"]["threshold"] <= 1 and meta["unsure"]["samples"]["scribbles"] == 300


def test_outliers_are_trained_towards_a_uniform_answer(mnist_sample):
    """``with_outliers``: class ids stay sparse targets without outliers; with them every target is
    a probability row, the outliers' uniform, and the loss is categorical."""
    from training.lib.loop import with_outliers  # TensorFlow: imported only by the test that needs it

    x, y = mnist_sample
    data = {"x_train": x[:20], "y_train": y[:20], "y_val": y[20:30]}
    same = with_outliers(data, None, 10)
    assert same[0] is data["x_train"] and same[1] is data["y_train"] and same[3] == "sparse_categorical_crossentropy"
    xs, ys, yv, loss = with_outliers(data, x[30:35], 10)
    assert (
        xs.shape == (25, 28, 28)
        and ys.shape == (25, 10)
        and yv.shape == (10, 10)
        and loss == "categorical_crossentropy"
    )
    assert np.array_equal(ys[:20].argmax(1), y[:20]) and np.allclose(ys[20:], 0.1) and np.allclose(ys.sum(1), 1)


def test_published_meta_says_when_by_which_command_and_for_which_preprocessing(tmp_path, monkeypatch):
    @dataclass(frozen=True)
    class Config:
        data_dir: Path = Path("../shared/data")
        epochs: int = 3

    monkeypatch.setattr(sys, "argv", ["train_lines.py", "--epochs", "3"])
    meta = {"name": "line", "training": {"epochs": 3, "config": config_record(Config())}}
    publish_meta(tmp_path, meta, "training.train_lines", "line")
    written = read_meta(tmp_path)
    assert written["training"]["command"] == "python -m training.train_lines --epochs 3"
    assert written["training"]["config"] == {"data_dir": "../shared/data", "epochs": 3}
    assert (written["preprocessing"], written["preprocessing_version"]) == ("line", CURRENT["line"])
    assert written["trained_on"].endswith("Z") and written["name"] == "line"


def test_a_model_the_app_trains_records_no_command(tmp_path):
    publish_meta(tmp_path, {"name": "alice-hog"}, None, "glyph")
    written = read_meta(tmp_path)
    assert "training" not in written and written["preprocessing"] == "glyph" and written["trained_on"]
