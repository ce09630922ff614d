"""The one preprocessing implementation: image bytes or arrays -> model input.

Canvas, upload, CLI, training, evaluation and feedback all call these functions, so a model
always sees input prepared exactly the way its training data was. The rooms:

- ``image``: decoding within a pixel budget, shrinking, grayscale, the noise check, PNG and data
  URLs;
- ``ink``: polarity, the paper level (one estimator with glyph, line and page presets), thresholds,
  specks;
- ``glyph``: the glyph path (MNIST's recipe: crop, stroke width, 20 px box, 28x28, centre of mass),
  ``PREPROCESSING_VERSION``;
- ``line``: the line path (level, upright, trim, 48 px tall), ``LINE_PREPROCESSING_VERSION``.

What callers use is importable from here too.
"""

from models.preprocessing.glyph import (
    GLYPH_BOX,
    GLYPH_SIZE,
    PREPROCESSING_VERSION,
    STROKE_RANGE,
    Glyph,
    fit_glyph,
    glyph_from_bytes,
    glyph_from_gray,
    glyph_from_mnist,
    glyph_ink,
    normalise_stroke,
    side_by_side_pieces,
    stroke_width,
)
from models.preprocessing.image import (
    DEFAULT_MAX_PIXELS,
    EXIF_ORIENTATION,
    FORMATS,
    KEEP_PNG_BYTES,
    LIBTIFF_QUIET,
    MIN_CONTRAST,
    NOISE_EDGES,
    NOISE_MIN_SIDE,
    PAGE_MAX_PIXELS,
    PNG_SIGNATURE,
    STORE_LINE_HEIGHT,
    STORE_SIDE,
    WORK_SIDE,
    box_shrink,
    decode,
    decode_data_url,
    edge_share,
    gray_png,
    image_size,
    load_image,
    png_data_url,
    read_gray,
    shrink,
    source_png,
    to_data_url,
    to_gray,
    to_png,
)
from models.preprocessing.ink import (
    EDGE_FRACTION,
    EIGHT_NEIGHBOURS,
    GLYPH_PAPER,
    LINE_PAPER,
    MIN_INK_PIXELS,
    PAGE_PAPER,
    SPECK_FRACTION,
    PaperPreset,
    crop_to_sheet,
    ink_bbox,
    ink_map,
    is_light_on_dark,
    paper_ink,
    reduce,
)
from models.preprocessing.line import (
    FILTER_WIDTH,
    LINE_HEIGHT,
    LINE_PAD,
    LINE_PREPROCESSING_VERSION,
    MAX_LINE_WIDTH,
    MAX_SKEW_DEG,
    MAX_SLANT,
    estimate_skew,
    estimate_slant,
    line_from_gray,
    line_ink,
)
