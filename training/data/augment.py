"""Training-time augmentation that matches real input: small rotation, shear, scale and shift,
and stroke thickness. It lives in the tf.data pipeline only and never reaches a served model.

``one_sample_variants`` turns one taught sample into a training set of its own (teaching a
profile, ``training.teach``): each variant is redrawn and sent through the served glyph path."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFilter
from scipy import ndimage

from models.errors import PreprocessError
from models.preprocessing import GLYPH_SIZE, glyph_from_gray, glyph_from_mnist


def _affine(batch: tf.Tensor, max_deg: float, max_shear: float, scale: float, shift: float) -> tf.Tensor:
    """Random rotation/shear/scale/shift of each image about the image centre."""
    n = tf.shape(batch)[0]
    size = tf.cast(tf.shape(batch)[1], tf.float32)
    c = (size - 1) / 2
    ang = tf.random.uniform([n], -max_deg, max_deg) * math.pi / 180
    sh = tf.random.uniform([n], -max_shear, max_shear)
    s = tf.random.uniform([n], 1 - scale, 1 + scale)
    tx = tf.random.uniform([n], -shift, shift)
    ty = tf.random.uniform([n], -shift, shift)
    # inverse map: output pixel -> input pixel
    a0 = tf.cos(ang) / s
    a1 = (tf.sin(ang) + sh) / s
    b0 = -tf.sin(ang) / s
    b1 = tf.cos(ang) / s
    a2 = c - a0 * c - a1 * c + tx
    b2 = c - b0 * c - b1 * c + ty
    zeros = tf.zeros([n])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=batch,
        transforms=transforms,
        output_shape=tf.shape(batch)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def _thickness(batch: tf.Tensor, p: float) -> tf.Tensor:
    """Randomly thicken or thin strokes by one pixel (grey dilation / erosion)."""
    n = tf.shape(batch)[0]
    thick = tf.nn.max_pool2d(batch, 2, 1, "SAME")
    thin = -tf.nn.max_pool2d(-batch, 2, 1, "SAME")
    r = tf.random.uniform([n, 1, 1, 1])
    return tf.where(r < p, thick, tf.where(r > 1 - p, thin, batch))


def augment(
    batch: tf.Tensor,
    max_deg: float = 12.0,
    max_shear: float = 0.2,
    scale: float = 0.12,
    shift: float = 2.0,
    p_thickness: float = 0.2,
) -> tf.Tensor:
    """uint8 (B, 28, 28, 1) -> augmented uint8 batch of the same shape."""
    x = tf.cast(batch, tf.float32)
    x = _thickness(x, p_thickness)
    x = _affine(x, max_deg, max_shear, scale, shift)
    return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)


# ------------------------------------------------------------------------------ one-sample variants

VARIANT_SIDE = 56  # the taught sample's ink is redrawn at this size: fine enough for erosion and elastic warps
VARIANT_PAD = 16  # room around the ink for rotation, scale and translation


def sample_ink(gray: np.ndarray) -> np.ndarray:
    """A taught sample (grayscale, 1 = white) -> the ink every variant is drawn from: the 28x28
    glyph the models see (clean, stroke width normalised), redrawn at ``VARIANT_SIDE`` and padded."""

    pixels = glyph_from_gray(gray).pixels.astype(np.float32) / 255.0
    side = VARIANT_SIDE * GLYPH_SIZE // 20  # the glyph's ink fills 20 of its 28 pixels
    big = np.asarray(Image.fromarray(pixels, "F").resize((side, side), Image.Resampling.BICUBIC))
    return np.pad(np.clip(big, 0, 1), VARIANT_PAD)


def _elastic(ink: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Elastic distortion (Simard et al. 2003): a smooth random displacement field."""
    h, w = ink.shape
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma) * alpha
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma) * alpha
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return ndimage.map_coordinates(ink, [yy + dy, xx + dx], order=1, mode="constant")


def _warp(
    ink: np.ndarray,
    rng: np.random.Generator,
    max_deg: float,
    scale: tuple[float, float],
    max_shear: float,
    shift: float,
) -> np.ndarray:
    """Rotation, anisotropic scale, shear and translation about the picture's centre."""
    a = np.deg2rad(rng.uniform(-max_deg, max_deg))
    sx, sy = rng.uniform(*scale, size=2)
    sh = rng.uniform(-max_shear, max_shear)
    forward = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[sy, 0], [sh, sx]])
    inverse = np.linalg.inv(forward)  # (row, col) of the output -> (row, col) of the input
    centre = (np.array(ink.shape) - 1) / 2
    offset = centre - inverse @ (centre + rng.uniform(-shift, shift, size=2))
    return ndimage.affine_transform(ink, inverse, offset=offset, order=1, mode="constant")


def _stroke(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thicker (dilation) or thinner (erosion) strokes, or neither, a third of the time each."""
    r = rng.random()
    if r < 1 / 3:
        return ndimage.grey_dilation(ink, size=(int(rng.integers(2, 5)),) * 2)
    if r < 2 / 3:
        thin = ndimage.grey_erosion(ink, size=(2, 2))
        return thin if (thin > 0.5).sum() > 0.5 * (ink > 0.5).sum() else ink  # never erode a glyph away
    return ink


def _photograph(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink -> a grayscale picture (1 = white) with random paper brightness, ink contrast and blur."""
    paper = rng.uniform(0.7, 1.0)
    contrast = rng.uniform(0.45, 1.0)
    gray = paper * (1.0 - contrast * np.clip(ink, 0, 1))
    gray = ndimage.gaussian_filter(gray, rng.uniform(0.0, 1.5))
    return np.clip(gray + rng.normal(0, 0.015, gray.shape), 0, 1).astype(np.float32)


def one_sample_variants(gray: np.ndarray, count: int = 120, seed: int = 1) -> np.ndarray:
    """``count`` variants of one taught sample (grayscale, 1 = white) as (count, 28, 28) uint8 glyphs.

    Each variant is the sample's ink with a random stroke width (erosion or dilation), elastic
    distortion, rotation, scale, shear and translation, then photographed (paper brightness, ink
    contrast, blur, noise) and read back through ``models.preprocessing.glyph_from_gray``, the
    path every served glyph takes.
    """
    rng = np.random.default_rng(seed)
    base = sample_ink(gray)
    out: list[np.ndarray] = []
    for _ in range(count * 3):  # a variant that loses its ink is drawn again
        ink = _stroke(base, rng)
        ink = _elastic(ink, rng, alpha=rng.uniform(0, 40), sigma=rng.uniform(5, 8))
        ink = _warp(ink, rng, max_deg=15, scale=(0.8, 1.15), max_shear=0.25, shift=6)
        try:
            out.append(glyph_from_gray(_photograph(ink, rng)).pixels)
        except PreprocessError:
            continue
        if len(out) == count:
            break
    return np.stack(out)


def served_again(glyphs: np.ndarray) -> np.ndarray:
    """Each 28x28 glyph (white on black) sent back through the glyph path, as a client that uploads
    what the model saw would: a second resampling that softens edges and shifts the centre of mass.
    A model that only ever saw one pass learns that pass's texture instead of the shape."""
    out = np.array(glyphs, copy=True)
    for i, g in enumerate(glyphs):
        try:
            out[i] = glyph_from_mnist(g)
        except PreprocessError:  # too faint to find again: keep the first pass
            pass
    return out


def photographed(glyphs: np.ndarray, seed: int) -> np.ndarray:
    """Each glyph (white on black) as a phone photo of dark ink on paper, read back through
    ``glyph_from_gray`` as an upload would be (the few the glyph path cannot read are left out)."""
    return photographed_kept(glyphs, seed)[0]


def photographed_kept(glyphs: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``photographed`` and the indices of the glyphs it kept (to take their labels)."""

    rng = np.random.default_rng(seed)
    out, kept = [], []
    for i, g in enumerate(glyphs):
        side, page_side = int(rng.integers(60, 200)), 320
        ink = np.asarray(Image.fromarray(g).resize((side, side), Image.BICUBIC), np.float32) / 255
        page = np.full((page_side, page_side), rng.uniform(0.75, 0.96), np.float32)
        yy, xx = np.mgrid[0:page_side, 0:page_side] / page_side - 0.5
        page += xx * rng.uniform(-0.2, 0.2) + yy * rng.uniform(-0.2, 0.2)
        ox, oy = rng.integers(5, page_side - side - 5, size=2)
        dark = rng.uniform(0.05, 0.3)
        region = page[oy : oy + side, ox : ox + side]
        page[oy : oy + side, ox : ox + side] = region * (1 - ink) + dark * ink
        page = np.clip(page + rng.normal(0, 0.025, page.shape), 0, 1)
        img = Image.fromarray(np.round(page * 255).astype(np.uint8))
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2)))
        try:
            out.append(glyph_from_gray(np.asarray(img, np.float32) / 255).pixels)
        except PreprocessError:
            continue
        kept.append(i)
    return np.stack(out), np.array(kept, int)
