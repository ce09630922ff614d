"""Dataset loading for every training command, from a local ``--data-dir`` or the official source.

Every image goes through ``models.preprocessing`` before training, exactly as served input does;
the prepared arrays are cached under ``training/.cache`` keyed by the preprocessing version.
"""

from __future__ import annotations

import gzip
import hashlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from models.preprocessing import PREPROCESSING_VERSION, glyph_from_mnist

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
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
    with ProcessPoolExecutor(workers) as pool:
        out = np.concatenate(list(pool.map(_prepare_chunk, chunks)))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


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
