"""Dataset loading for every training command, from a local ``--data-dir`` or the official source.

Every image goes through ``models.preprocessing`` before training, exactly as served input does;
the prepared arrays are cached under ``training/.cache`` keyed by the preprocessing version.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from models.errors import PreprocessError
from models.preprocessing import PREPROCESSING_VERSION, glyph_from_bytes, glyph_from_mnist

# Pool workers start as fresh interpreters, not forks: a step prepares data after TensorFlow and
# ONNX Runtime are loaded (the evaluation after training), and a fork of such a process crashed in
# its first garbage collection (a segmentation fault, tests/test_training.py on a clean clone).
WORKERS = multiprocessing.get_context("spawn")
CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache"  # training/.cache
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) as stored: uint8 images (N, H, W) or labels (N,)."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(data_dir: Path, name: str) -> Path:
    """Locate ``name`` (or its un-gzipped twin) in ``data_dir`` or one level below."""
    stems = [name, name.removesuffix(".gz")]
    for cand in [data_dir / s for s in stems] + [p for s in stems for p in sorted(data_dir.glob(f"*/{s}"))]:
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"{name} not found under {data_dir}")


def load_mnist(data_dir: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw MNIST (x_train, y_train, x_test, y_test); downloads through Keras when ``data_dir`` is None."""
    if data_dir is None:
        import keras

        (xt, yt), (xs, ys) = keras.datasets.mnist.load_data()
        return xt, yt, xs, ys
    return tuple(read_idx(_find(Path(data_dir), MNIST_FILES[k])) for k in MNIST_FILES)


def _prepare_chunk(chunk: np.ndarray) -> np.ndarray:
    """Worker: a chunk of dataset images through the glyph path."""
    return np.stack([glyph_from_mnist(a) for a in chunk])


def prepare(images: np.ndarray, workers: int = 2) -> np.ndarray:
    """Dataset images (white on black) -> model-ready 28x28 glyphs, cached on disk."""
    digest = hashlib.sha1(images.tobytes()).hexdigest()[:16]
    path = CACHE_DIR / f"glyphs-{digest}-p{PREPROCESSING_VERSION}.npy"
    if path.exists():
        return np.load(path)
    chunks = np.array_split(images, max(1, len(images) // 2000))
    with ProcessPoolExecutor(workers, mp_context=WORKERS) as pool:
        out = np.concatenate(list(pool.map(_prepare_chunk, chunks)))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def digit_split(labels: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of MNIST train: ``val_size`` held out, at most 10%, stratified."""
    return split_indices(labels, min(val_size / len(labels), 0.1), seed)


def split_indices(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split: (keep, held_out) index arrays, ``fraction`` of each class held out."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n = int(round(len(idx) * fraction))
        held.append(idx[:n])
        keep.append(idx[n:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


CHARSET62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # EMNIST ByClass order
EMNIST_NPZ = "emnist_byclass_test_split.npz"  # staged, already upright
# every character model is split the same way, whatever its --seed: a model trained with another seed
# (for an ensemble, a wider network) never trains on the test part the shipped model is measured on
SPLIT_SEED = 1


def emnist_upright(images: np.ndarray) -> np.ndarray:
    """EMNIST's official files store each image transposed relative to MNIST; undo that."""
    return np.ascontiguousarray(np.asarray(images).transpose(0, 2, 1))


def load_emnist_byclass(data_dir: Path | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """EMNIST ByClass as upright uint8 images (white on black) and labels 0-61, by official split.

    Looks in ``data_dir`` (and its ``emnist/`` folder) for the official gzip IDX files
    (``emnist-byclass-{train,test}-{images-idx3,labels-idx1}-ubyte.gz``) and for the staged
    ``emnist_byclass_test_split.npz``; with no ``data_dir`` it uses the ``emnist`` package, which
    downloads the official files. Returns ``{"train": (x, y), "test": (x, y)}`` for what exists.
    """
    if data_dir is None:
        try:
            import emnist  # optional: pip install emnist (needs a network on first use)
        except ImportError as exc:
            raise SystemExit(
                "EMNIST download needs `pip install emnist`, or pass --data-dir with local files."
            ) from exc

        xt, yt = emnist.extract_training_samples("byclass")
        xs, ys = emnist.extract_test_samples("byclass")
        return {"train": (emnist_upright(xt), yt.astype(np.uint8)), "test": (emnist_upright(xs), ys.astype(np.uint8))}
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "test"):
        try:
            x = read_idx(_find(Path(data_dir), f"emnist-byclass-{split}-images-idx3-ubyte.gz"))
            y = read_idx(_find(Path(data_dir), f"emnist-byclass-{split}-labels-idx1-ubyte.gz"))
            out[split] = (emnist_upright(x), y)
        except FileNotFoundError:
            pass
    if "test" not in out:
        try:
            d = np.load(_find(Path(data_dir), EMNIST_NPZ))
            out["test"] = (d["x"], d["y"])
        except FileNotFoundError:
            pass
    if not out:
        raise FileNotFoundError(f"No EMNIST ByClass files under {data_dir} (official IDX .gz or {EMNIST_NPZ}).")
    return out


def load_chars62(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The photographed characters read as uploads (PNG bytes through the glyph path):
    (glyphs, labels 0-61, file names). Cached like ``prepare``."""

    root = Path(data_dir) / "handwritten_chars62"
    rows = list(csv.DictReader(open(root / "labels.csv", newline="")))
    path = CACHE_DIR / f"chars62-{len(rows)}-p{PREPROCESSING_VERSION}.npz"
    if path.exists():
        d = np.load(path)
        return d["x"], d["y"], list(d["files"])
    glyphs, kept = [], []
    for r in rows:
        try:
            glyphs.append(glyph_from_bytes((root / "png" / r["file"]).read_bytes()).pixels)
            kept.append(r)
        except PreprocessError:
            continue  # an unreadable photo is not a training sample
    x = np.stack(glyphs)
    y = np.array([CHARSET62.index(r["char"]) for r in kept], np.uint8)
    files = [r["file"] for r in kept]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=x, y=y, files=np.array(files))
    return x, y, files


def three_way_split(labels: np.ndarray, val: float, test: float, seed: int) -> dict[str, np.ndarray]:
    """Stratified train/val/test index arrays with ``val`` and ``test`` fractions of each class."""
    rest, test_idx = split_indices(labels, test, seed)
    train_rel, val_rel = split_indices(labels[rest], val / (1 - test), seed + 1)
    return {"train": rest[train_rel], "val": rest[val_rel], "test": test_idx}


# the photographed characters come in runs: within a class, consecutive file numbers share paper,
# pen and hand (training.evaluate_personal). Parts by file number keep most writers in one part; a
# per-sample split put the same hands (and 158 pixel-identical copies) in training and in test
CHARS62_VAL_FROM, CHARS62_TEST_FROM = 70, 80  # file numbers 0-69 train, 70-79 validation, 80-100 test


def file_number(name: str) -> int:
    """The run position in a photographed character's file name (``DIGIT_7_12.png`` -> 12)."""
    return int(Path(name).stem.rsplit("_", 1)[-1])


def drop_repeats(x: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``parts`` (name -> index array into ``x``, in order) without the samples whose pixels repeat
    one of an earlier part, so no picture is measured that training saw."""
    seen: set[bytes] = set()
    out = {}
    for name, idx in parts.items():
        keys = [x[i].tobytes() for i in idx]
        out[name] = np.array([i for i, k in zip(idx, keys, strict=True) if k not in seen], int)
        seen.update(keys)
    return out


def chars62_split(x: np.ndarray, files: list[str]) -> dict[str, np.ndarray]:
    """Train/val/test index arrays of the photographed characters, by file number (writer runs),
    without repeated pictures in a later part."""
    number = np.array([file_number(f) for f in files])
    parts = {
        "train": np.flatnonzero(number < CHARS62_VAL_FROM),
        "val": np.flatnonzero((number >= CHARS62_VAL_FROM) & (number < CHARS62_TEST_FROM)),
        "test": np.flatnonzero(number >= CHARS62_TEST_FROM),
    }
    return drop_repeats(x, parts)


def character_data(data_dir: Path | None, seed: int = 1, mnist_extra: int = 20_000) -> dict[str, dict]:
    """Every source of the 62-class model, prepared and split. The split is the same for every
    ``seed`` (``SPLIT_SEED``); ``seed`` only picks the MNIST extras.

    - EMNIST ByClass: the official train/test when present; otherwise the staged test split is
      divided 80/5/15 (train/val/test), stratified by class.
    - handwritten_chars62 (photographs): by file number (writer runs, ``chars62_split``), about
      70/10/20, when present.
    - MNIST train digits: ``mnist_extra`` of them, for training only.
    Returns ``{source: {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}}``.
    """
    emnist = load_emnist_byclass(data_dir)
    out: dict[str, dict] = {}
    if "train" in emnist:
        x, y = emnist["train"]
        tr, va = split_indices(y, 0.05, SPLIT_SEED)
        xs, ys = emnist["test"]
        x = prepare(x)
        out["emnist"] = {
            "x_train": x[tr],
            "y_train": y[tr],
            "x_val": x[va],
            "y_val": y[va],
            "x_test": prepare(xs),
            "y_test": ys,
        }
    else:
        x, y = emnist["test"]
        x = prepare(x)
        idx = three_way_split(y, 0.05, 0.15, SPLIT_SEED)
        out["emnist"] = {f"{a}_{k}": arr[idx[k]] for k in idx for a, arr in (("x", x), ("y", y))}
    if data_dir is not None and (Path(data_dir) / "handwritten_chars62").exists():
        x, y, files = load_chars62(Path(data_dir))
        idx = chars62_split(x, files)
        out["chars62"] = {f"{a}_{k}": arr[idx[k]] for k in idx for a, arr in (("x", x), ("y", y))}
    if mnist_extra:
        xm, ym, _, _ = load_mnist(data_dir)
        pick = np.random.default_rng(seed).choice(len(xm), min(mnist_extra, len(xm)), replace=False)
        out["mnist"] = {"x_train": prepare(xm)[pick], "y_train": ym[pick]}
    return out
