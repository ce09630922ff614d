"""The shapes of the answers (``Reading.result`` and friends), as the JSON API returns them.

These are ``TypedDict``s: plain dicts at run time (``jsonify`` takes them as they are), with the
field names and types written down once, for readers and type checkers. The web layer adds
``prediction_id`` (glyphs, page glyphs and lines) after the feedback store has kept the answer.
"""

from typing import NotRequired, TypedDict


class ModelId(TypedDict):
    name: str
    version: str
    profile: NotRequired[str]  # the personal profile that answered


class Candidate(TypedDict):
    label: str
    probability: float


class ImageSize(TypedDict):
    """The picture the boxes of an answer refer to."""

    width: int
    height: int


class ReadSize(ImageSize):
    """An upload's size as read (smaller than the upload), and read pixels per uploaded pixel."""

    scale: float


class WriterVerdict(TypedDict):
    label: str | None  # "yours", "standard" or "other"; None without a writer classifier
    probability: float | None
    message: NotRequired[str]


class GlyphAnswer(TypedDict):
    """One character or digit (``models.reading.glyph.glyph_result``)."""

    task: str
    text: str  # empty when "not sure"
    confidence: float
    candidates: list[Candidate]  # best first; the guesses stay here when ``text`` is empty
    lookalikes: list[str]
    unsure: bool
    input_28x28: str  # data URL of what the model saw
    model: ModelId
    alphabet: NotRequired[str]  # the hint, when not "any"
    message: NotRequired[str]  # why "not sure"
    writer: NotRequired[WriterVerdict]  # with a personal profile
    prediction_id: NotRequired[str | None]


class PageGlyph(TypedDict):
    """One mark on a page, in working-image pixels (``PageAnswer.image``)."""

    x: int
    y: int
    w: int
    h: int
    line: int
    space_before: bool
    text: str
    confidence: float
    candidates: list[Candidate]
    unsure: bool
    prediction_id: NotRequired[str | None]


class Box(TypedDict):
    x: int
    y: int
    w: int
    h: int


class PageLine(Box):
    text: str


class PageAnswer(TypedDict):
    """A page of glyphs (``models.reading.page.read_page``)."""

    task: str  # "page"
    alphabet: str
    engine: str
    text: str  # the lines, joined by newlines
    lines: list[PageLine]
    glyphs: list[PageGlyph]
    image: ImageSize
    annotated_png: str
    rendering_png: str
    model: ModelId
    read: NotRequired[ReadSize]  # an upload: ``image`` and the boxes are in its pixels
    message: NotRequired[str]


class Correction(TypedDict):
    raw: str
    corrected: str
    word: int  # index of the word in the line


class LineRead(Box):
    """One handwritten line of a line answer."""

    text: str  # corrected when correction is on
    raw_text: str
    corrections: list[Correction]
    confidence: float
    handwriting: NotRequired[float]  # p(handwriting) from the filter, when one is installed
    prediction_id: NotRequired[str | None]


class DroppedLine(Box):
    """A line found and not read: ``reason`` is "cut_off" or "not_handwriting"."""

    reason: str
    handwriting: NotRequired[float]


class LinesAnswer(TypedDict):
    """Lines of text (``models.reading.lines.read_lines``)."""

    task: str  # "line"
    text: str
    raw_text: str
    confidence: float
    lines: list[LineRead]
    decoder: str
    language_model: ModelId | None
    corrected: bool
    image: ImageSize
    model: ModelId
    dropped: NotRequired[list[DroppedLine]]
    read: NotRequired[ReadSize]  # an upload: ``image`` and the boxes are in its pixels
    message: NotRequired[str]
