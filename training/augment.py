"""Training-time augmentation that matches real input: small rotation, shear, scale and shift,
and stroke thickness. It lives in the tf.data pipeline only and never reaches a served model."""

from __future__ import annotations

import math

import tensorflow as tf


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
