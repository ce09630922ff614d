"""The figures of a teach (``training.lib.one_sample``), drawn with matplotlib's Agg backend as PNG files:

- ``variants.png``: the grid of augmented variants;
- ``vae_samples.png``: the grid of glyphs the VAE generated around the sample;
- ``reconstruction.png``: the sample and the VAE's reconstruction of it;
- ``latent_map.png``: a t-SNE map of the VAE's latent means of the sample, its variants, the VAE
  samples, base-data samples of the same character and other characters, colour-coded;
- ``feature_maps.png``: what the recogniser's first two convolution layers make of the sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAP_POINTS = 100  # points per group on the latent map: t-SNE takes seconds, not tens of them


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display, safe in a worker process
    import matplotlib.pyplot as plt

    return plt


def grid(glyphs: np.ndarray, columns: int = 10) -> np.ndarray:
    """(N, 28, 28) glyphs tiled into one image, ``columns`` wide, 2 px apart."""
    n = len(glyphs)
    rows = max(1, -(-n // columns))
    out = np.zeros((rows * 30, columns * 30), np.uint8)
    for i, g in enumerate(glyphs):
        r, c = divmod(i, columns)
        out[r * 30 + 1 : r * 30 + 29, c * 30 + 1 : c * 30 + 29] = g
    return out


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=100, bbox_inches="tight", facecolor="white")
    _pyplot().close(fig)


def draw_grid(path: Path, glyphs: np.ndarray, title: str) -> None:
    plt = _pyplot()
    image = grid(glyphs[:100])
    fig, ax = plt.subplots(figsize=(image.shape[1] / 60, image.shape[0] / 60 + 0.5))
    ax.imshow(image, cmap="gray", interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    _save(fig, path)


def draw_reconstruction(path: Path, sample: np.ndarray, reconstruction: np.ndarray) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(4, 2.3))
    for ax, img, title in zip(axes, (sample, reconstruction), ("your sample", "VAE reconstruction"), strict=True):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    _save(fig, path)


def latent_points(encoder, groups: dict[str, np.ndarray], seed: int = 1) -> dict[str, np.ndarray]:
    """Each group's latent means mapped to 2-D by t-SNE (PCA below 10 points in all)."""
    rng = np.random.default_rng(seed)
    groups = {
        k: v[rng.choice(len(v), MAP_POINTS, replace=False)] if len(v) > MAP_POINTS else v for k, v in groups.items()
    }
    means = {k: encoder(v[..., None], training=False)[0].numpy() for k, v in groups.items() if len(v)}
    stacked = np.concatenate(list(means.values()))
    if len(stacked) >= 10:
        from sklearn.manifold import TSNE

        tsne = TSNE(2, perplexity=min(30.0, len(stacked) / 4), init="pca", random_state=seed, max_iter=500)
        flat = tsne.fit_transform(stacked)
    else:
        from sklearn.decomposition import PCA

        flat = PCA(2).fit_transform(stacked) if len(stacked) > 2 else np.zeros((len(stacked), 2))
    out, k = {}, 0
    for name, m in means.items():
        out[name] = flat[k : k + len(m)]
        k += len(m)
    return out


def draw_latent_map(path: Path, points: dict[str, np.ndarray], label: str) -> None:
    plt = _pyplot()
    style = {
        "other characters": ("#bbbbbb", "o", 12),
        f"standard {label}": ("#1f77b4", "o", 14),
        "your variants": ("#ff7f0e", "o", 14),
        "VAE samples": ("#2ca02c", "^", 16),
        "your sample": ("#d62728", "*", 220),
    }
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, (colour, marker, size) in style.items():
        if name in points and len(points[name]):
            p = points[name]
            ax.scatter(p[:, 0], p[:, 1], c=colour, marker=marker, s=size, label=name, edgecolors="none")
    ax.set_title(f"VAE latent space (t-SNE) around your {label!r}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, loc="best", markerscale=1.0)
    _save(fig, path)


def first_conv_maps(model, sample: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(layer name, (H, W, C) activations) of the model's first two convolution layers (after their
    batch norm and ReLU where the network has them)."""
    import keras

    names = {layer.name for layer in model.layers}
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][:2]
    outputs = [model.get_layer(f"{n}_relu" if f"{n}_relu" in names else n).output for n in convs]
    probe = keras.Model(model.input, outputs)
    maps = probe(sample[None, ..., None], training=False)
    maps = maps if isinstance(maps, list | tuple) else [maps]
    return [(n, np.asarray(m)[0]) for n, m in zip(convs, maps, strict=True)]


def tile_maps(maps: np.ndarray, columns: int = 8) -> np.ndarray:
    """(H, W, C) activations -> one image of the C maps, each scaled to its own range, 1 px apart."""
    h, w, c = maps.shape
    rows = -(-c // columns)
    out = np.full((rows * (h + 1), columns * (w + 1)), np.nan, np.float32)
    for k in range(c):
        m = maps[..., k]
        span = float(m.max() - m.min())
        r, col = divmod(k, columns)
        out[r * (h + 1) : r * (h + 1) + h, col * (w + 1) : col * (w + 1) + w] = (m - m.min()) / span if span else 0
    return out


def draw_feature_maps(path: Path, maps: list[tuple[str, np.ndarray]]) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(maps), figsize=(5 * len(maps), 3.2))
    for ax, (name, m) in zip(np.atleast_1d(axes), maps, strict=True):
        ax.imshow(tile_maps(m), cmap="viridis", interpolation="nearest")
        ax.set_title(f"{name}: {m.shape[-1]} feature maps", fontsize=9)
        ax.axis("off")
    _save(fig, path)


def draw_all(
    folder: Path, label: str, sample, variants, generated, encoder, decoder, standard, other, model, seed: int = 1
) -> list[str]:
    """Draw every figure of one teach into ``folder``; returns the names of those drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    draw_grid(folder / "variants.png", variants, f"{min(len(variants), 100)} of {len(variants)} augmented variants")
    drawn.append("variants")
    if encoder is not None:
        draw_grid(
            folder / "vae_samples.png", generated, f"{min(len(generated), 100)} VAE samples around your {label!r}"
        )
        mean = encoder(sample[None, ..., None], training=False)[0]
        reconstruction = np.round(decoder(mean, training=False).numpy()[0, ..., 0] * 255).astype(np.uint8)
        draw_reconstruction(folder / "reconstruction.png", sample, reconstruction)
        groups = {
            "other characters": other,
            f"standard {label}": standard,
            "your variants": variants,
            "VAE samples": generated,
            "your sample": sample[None],
        }
        draw_latent_map(folder / "latent_map.png", latent_points(encoder, groups, seed), label)
        drawn += ["vae_samples", "reconstruction", "latent_map"]
    draw_feature_maps(folder / "feature_maps.png", first_conv_maps(model, sample))
    drawn.append("feature_maps")
    return drawn
