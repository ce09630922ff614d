"""The data the training steps learn from and measure on, as libraries that import no step:
``glyphs`` (MNIST, EMNIST, the photographed characters, their splits and the glyph path over
them), ``lines`` (IAM-OnDB strokes rendered as lines, the scanned names, strips), ``augment`` (the
augmentations and the phone-photo rendering), ``negatives`` (scribbles and characters side by
side, for "not sure") and ``pages`` (pages and handwriting sheets composed from real glyphs, with
their ground truth)."""
