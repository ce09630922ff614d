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


class Box(TypedDict):
    """A rectangle in an answer's pixels (``image``): left, top, width, height."""

    x: int
    y: int
    w: int
    h: int


class LabelledBox(Box):
    """A box with the text drawn at it (``models.reading.page.annotate`` and ``render``)."""

    text: str
    unsure: bool  # drawn in orange


class PageGlyph(LabelledBox):
    """One mark on a page, in working-image pixels (``PageAnswer.image``)."""

    line: int
    space_before: bool
    offset: int  # where ``text`` starts in its line's ``PageLine.text``: a correction is spliced in there
    confidence: float
    candidates: list[Candidate]
    input_28x28: NotRequired[str]  # a drawing's glyph (``SequenceAnswer``): data URL of what the model saw
    prediction_id: NotRequired[str | None]


class PageLine(Box):
    text: str
    confidence: float  # the mean of its glyphs' ``confidence``, summed in reading order and not rounded


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


class SequenceAnswer(TypedDict):
    """Several glyphs drawn side by side, read through the page path
    (``models.reading.page.read_drawing``); the boxes are in the drawing's pixels."""

    task: str  # the glyph task: "digit" or "character"
    sequence: bool  # True
    alphabet: str
    text: str
    confidence: float  # the least sure glyph's
    unsure: bool  # any glyph is
    glyphs: list[PageGlyph]  # each with its ``input_28x28``
    candidates: list[Candidate]  # empty: a sequence has no alternatives as a whole
    lookalikes: list[str]  # empty
    image: ImageSize
    model: ModelId


class WordChange(TypedDict):
    """A word spelling correction changed (``models.decoding.spelling.Speller.correct``)."""

    raw: str
    corrected: str
    word: int  # index of the word in the line


class Correction(WordChange):
    """A change as a line answer lists it (``models.decoding.spelling.Speller.answer``)."""

    start: int  # where ``corrected`` starts in the line's ``text`` (``LineText.text``)
    end: int  # where it ends there (exclusive): ``text[start:end] == corrected``


class LineText(TypedDict):
    """What one line's strip reads as (``models.reading.lines._read_line``), before its box."""

    text: str  # corrected when correction is on
    raw_text: str
    corrections: list[Correction]
    confidence: float


class LineRead(LineText, Box):
    """One handwritten line of a line answer."""

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
