"""Network builders for every recogniser, with named layers.

Each builder returns a *serving* model: uint8 pixels in, class probabilities out. Pixel scaling
lives inside the model (a ``Rescaling`` layer) so no caller can forget it or apply it twice.
Augmentation and losses belong to training code and never appear here.
"""

from __future__ import annotations

import keras
from keras import layers

from models.preprocessing import FILTER_WIDTH, LINE_HEIGHT
from models.profiles import WRITER_CLASSES

GLYPH_SHAPE = (28, 28, 1)


def _conv_bn(x, filters: int, kernel: int, name: str, strides: int = 1, padding: str = "valid"):
    """Conv2D + BatchNorm + ReLU, the repeated unit of the glyph CNNs."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_seed_cnn(num_classes: int, name: str = "seed_cnn") -> keras.Model:
    """The original design's CNN, kept for comparison (see README)."""
    inp = keras.Input(GLYPH_SHAPE, dtype="uint8", name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(32, 3, activation="relu", name="conv2")(x)
    x = layers.BatchNormalization(name="conv2_bn")(x)
    x = layers.Conv2D(32, 5, strides=2, padding="same", activation="relu", name="conv3")(x)
    x = layers.BatchNormalization(name="conv3_bn")(x)
    x = layers.Dropout(0.4, name="drop1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv4")(x)
    x = layers.BatchNormalization(name="conv4_bn")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv5", padding="same")(x)
    x = layers.BatchNormalization(name="conv5_bn")(x)
    x = layers.Conv2D(64, 5, strides=2, padding="same", activation="relu", name="conv6")(x)
    x = layers.BatchNormalization(name="conv6_bn")(x)
    x = layers.Dropout(0.4, name="drop2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.4, name="drop3")(x)
    out = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=name)


def build_glyph_cnn(num_classes: int, width: int = 32, dropout: float = 0.4, name: str = "glyph_cnn") -> keras.Model:
    """The shipped glyph CNN: the seed design without the early pooling, BN on every conv,
    and a final 4x4 conv head. ``width`` scales every block; ``dropout`` is 0.4 for digits and
    lower for 62 ambiguous classes, where 0.4 underfits."""
    w, d = width, dropout
    inp = keras.Input(GLYPH_SHAPE, dtype="uint8", name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
    x = _conv_bn(x, w, 3, "b1_conv1")
    x = _conv_bn(x, w, 3, "b1_conv2")
    x = _conv_bn(x, w, 5, "b1_down", strides=2, padding="same")
    x = layers.Dropout(d, name="b1_drop")(x)
    x = _conv_bn(x, 2 * w, 3, "b2_conv1")
    x = _conv_bn(x, 2 * w, 3, "b2_conv2")
    x = _conv_bn(x, 2 * w, 5, "b2_down", strides=2, padding="same")
    x = layers.Dropout(d, name="b2_drop")(x)
    x = _conv_bn(x, 4 * w, 4, "head_conv")
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(d, name="head_drop")(x)
    out = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=name)


BUILDERS = {"seed_cnn": build_seed_cnn, "glyph_cnn": build_glyph_cnn}


def build_crnn(
    num_chars: int, width: int = 32, lstm: int = 128, dropout: float = 0.25, name: str = "crnn"
) -> keras.Model:
    """Line recogniser: convolutions over a (48, W) strip -> W/4 feature columns -> two bidirectional
    LSTMs -> per-column probabilities over ``num_chars`` characters plus the CTC blank (last index).

    Width is variable. This is the serving graph: CTC loss lives only in ``training.train_lines``.
    Batch normalisation runs in inference mode when serving, and the app reads one line per call,
    so an answer never depends on other images.
    """

    def conv(x, filters, kernel, label, padding="same"):
        x = layers.Conv2D(filters, kernel, padding=padding, use_bias=False, name=f"{label}_conv")(x)
        x = layers.BatchNormalization(name=f"{label}_bn")(x)
        return layers.ReLU(name=f"{label}_relu")(x)

    w = width
    inp = keras.Input((LINE_HEIGHT, None, 1), dtype="uint8", name="strip")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
    x = conv(x, w, 3, "c1")
    x = layers.MaxPooling2D((2, 2), name="p1")(x)  # 24 x W/2
    x = conv(x, 2 * w, 3, "c2")
    x = layers.MaxPooling2D((2, 2), name="p2")(x)  # 12 x W/4
    x = conv(x, 4 * w, 3, "c3")
    x = conv(x, 4 * w, 3, "c4")
    x = layers.MaxPooling2D((2, 1), name="p3")(x)  # 6 x W/4
    x = conv(x, 8 * w, 3, "c5")
    x = layers.MaxPooling2D((2, 1), name="p4")(x)  # 3 x W/4
    x = conv(x, 8 * w, (3, 1), "c6", padding="valid")  # 1 x W/4
    x = layers.Reshape((-1, 8 * w), name="columns")(x)
    x = layers.Dropout(dropout, name="drop1")(x)
    x = layers.Bidirectional(layers.LSTM(lstm, return_sequences=True, dropout=dropout), name="blstm1")(x)
    x = layers.Bidirectional(layers.LSTM(lstm, return_sequences=True, dropout=dropout), name="blstm2")(x)
    out = layers.Dense(num_chars + 1, activation="softmax", name="chars")(x)
    return keras.Model(inp, out, name=name)


def build_vae(latent_dim: int = 8, name: str = "glyph_vae") -> tuple[keras.Model, keras.Model]:
    """A small convolutional VAE for 28x28 glyphs: (encoder, decoder).

    The encoder maps uint8 pixels to the mean and log-variance of a Gaussian over the latent space
    (``z_mean``, ``z_log_var``); the decoder maps a latent point back to ink in 0-1 (``ink``).
    Sampling (the reparameterisation ``z = mean + exp(log_var / 2) * eps``) and the loss
    (reconstruction + KL) belong to ``training.teach``.
    """
    inp = keras.Input(GLYPH_SHAPE, dtype="uint8", name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="enc_conv1")(x)  # 14x14
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="enc_conv2")(x)  # 7x7
    x = layers.Flatten(name="enc_flatten")(x)
    x = layers.Dense(128, activation="relu", name="enc_dense")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    encoder = keras.Model(inp, [z_mean, z_log_var], name=f"{name}_encoder")

    z = keras.Input((latent_dim,), name="z")
    y = layers.Dense(7 * 7 * 64, activation="relu", name="dec_dense")(z)
    y = layers.Reshape((7, 7, 64), name="dec_reshape")(y)
    y = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu", name="dec_up1")(y)  # 14x14
    y = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu", name="dec_up2")(y)  # 28x28
    out = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="ink")(y)
    decoder = keras.Model(z, out, name=f"{name}_decoder")
    return encoder, decoder


def build_writer_cnn(name: str = "writer_cnn") -> keras.Model:
    """The writer classifier: is this glyph the taught person's ("yours"), a base-data sample of
    the same character ("standard"), or another character ("other")? A small CNN of its own, so
    that it can learn style, which the recognisers are trained to ignore."""
    inp = keras.Input(GLYPH_SHAPE, dtype="uint8", name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
    # no batch norm: a few hundred steps leave its running statistics far from the batch ones, and
    # served in inference mode it then answered "yours" to everything
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="w_conv1")(x)
    x = layers.MaxPooling2D(name="w_pool1")(x)  # 14x14
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="w_conv2")(x)
    x = layers.MaxPooling2D(name="w_pool2")(x)  # 7x7
    x = layers.Conv2D(64, 3, activation="relu", name="w_conv3")(x)
    x = layers.GlobalAveragePooling2D(name="w_pool3")(x)
    x = layers.Dropout(0.3, name="w_drop")(x)
    out = layers.Dense(len(WRITER_CLASSES), activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=name)


def build_line_filter(width: int = 16, name: str = "line_filter") -> keras.Model:
    """Is this line strip handwriting? A (48, 256) window of a line strip (``line_from_gray``) ->
    p(handwriting), against printed form text, dotted or dashed rules and lines cut off at the
    image's edge. Average and max pooling over the window, so width padding matters little."""
    inp = keras.Input((LINE_HEIGHT, FILTER_WIDTH, 1), dtype="uint8", name="window")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inp)
    for i, filters in enumerate((width, 2 * width, 4 * width, 4 * width)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"c{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"p{i + 1}")(x)  # 3 x 16 after four
    x = layers.Concatenate(name="pool")([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(0.3, name="drop")(x)
    x = layers.Dense(32, activation="relu", name="dense")(x)
    out = layers.Dense(1, activation="sigmoid", name="handwriting")(x)
    return keras.Model(inp, out, name=name)
