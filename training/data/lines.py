"""Handwritten text lines for the CRNN: IAM-OnDB pen strokes rendered to images with varied pen,
scale, slant, skew, blur, noise and paper, then prepared by ``models.preprocessing.line_from_gray``
exactly as an upload is. Also reads the IAM offline layout (``lines.txt`` + ``lines/``).

Rendered strips are cached under ``training/.cache`` (keyed by the line preprocessing version and
the rendering seed), so epochs after the first cost no rendering.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from models.errors import PreprocessError
from models.preprocessing import LINE_PREPROCESSING_VERSION, line_from_gray
from training.data.glyphs import CACHE_DIR, WORKERS

IAM_ONDB = Path("iam_ondb_lines") / "iam_ondb_lines.npz"
RENDER_VERSION = "2"  # bump when ``render`` changes, so cached renderings are made again
NAMES = Path("names_words")
NAMES_TRAIN = 800  # names_words files 1-800 train; 801-1000 are held out for evaluation


@dataclass
class Lines:
    """Pen strokes and transcriptions of one split."""

    strokes: list[tuple[np.ndarray, np.ndarray]]  # (points (n, 2) x right / y down, pen-up flags)
    texts: list[str]
    ids: list[str]


def load_iam_ondb(data_dir: Path, split: str) -> Lines:
    """One split of the staged IAM-OnDB lines: ``train``, ``val1`` or ``test_f``."""
    d = np.load(Path(data_dir) / IAM_ONDB)
    off, keep = d["offsets"], np.flatnonzero(d["split"] == split)
    xy, end, text, ids = d["xy"], d["end"], d["text"], d["line_id"]  # each npz access reads the file again
    strokes = [(xy[off[i] : off[i + 1]], end[off[i] : off[i + 1]]) for i in keep]
    return Lines(strokes, [str(text[i]) for i in keep], [str(ids[i]) for i in keep])


def render(points: np.ndarray, pen_up: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """A line drawn from pen strokes: grayscale float32 (1 = paper). With ``rng``, pen width, size,
    aspect, slant, skew, ink, paper, blur and noise vary as in photos and scans."""
    r = rng or np.random.default_rng(0)
    vary = rng is not None
    height = int(r.integers(60, 160)) if vary else 100
    p = points.astype(np.float32)
    p = p * (height * 0.8) / max(float(p[:, 1].max()), 1.0)
    if vary:
        p[:, 0] *= r.uniform(0.8, 1.2)  # narrower or wider writing
        p[:, 0] += r.uniform(-0.35, 0.35) * (p[:, 1] - p[:, 1].mean())  # slant
        angle = np.radians(r.uniform(-4, 4))  # skew
        c, s = np.cos(angle), np.sin(angle)
        p = p @ np.array([[c, s], [-s, c]], np.float32)
    p -= p.min(axis=0)
    margin = int(height * 0.15)
    p += margin
    w, h = int(p[:, 0].max()) + 2 * margin, int(p[:, 1].max()) + 2 * margin
    paper = float(r.uniform(0.8, 1.0)) if vary else 1.0
    ink = float(r.uniform(0.0, 0.35)) if vary else 0.0
    img = Image.new("L", (w, h), int(paper * 255))
    draw = ImageDraw.Draw(img)
    # Most pens are fine (2-6% of the line's height); one line in four is a marker or a thick
    # brush on a canvas (up to 13%), whose loops nearly close.
    share = (r.uniform(0.06, 0.13) if r.random() < 0.25 else r.uniform(0.02, 0.06)) if vary else 0.035
    pen = max(2, int(round(height * share)))
    for stroke in np.split(p, np.flatnonzero(pen_up)[:-1] + 1):
        if len(stroke) > 1:
            draw.line([tuple(q) for q in stroke], fill=int(ink * 255), width=pen, joint="curve")
        else:
            x, y = stroke[0]
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=int(ink * 255))
    if vary and r.random() < 0.7:
        img = img.filter(ImageFilter.GaussianBlur(r.uniform(0.3, min(1.5, 0.45 * pen))))  # never wipes the stroke
    gray = np.asarray(img, np.float32) / 255.0
    if vary:
        yy, xx = np.mgrid[0:h, 0:w]
        gray = gray * (1 - r.uniform(0, 0.25) * xx / max(w, 1)) * (1 - r.uniform(0, 0.15) * yy / max(h, 1))
        gray = gray + r.normal(0, r.uniform(0, 0.025), gray.shape)
    return np.clip(gray, 0, 1).astype(np.float32)


SUPERSAMPLE = 4  # renderings of a set pen width are drawn this much larger, then shrunk (fractional pens)


def render_as(
    points: np.ndarray, pen_up: np.ndarray, ink_height: float, pen: float, photo: bool = False, seed: int = 0
) -> Image.Image:
    """A line drawn as a user makes it: ink ``ink_height`` px tall with a round pen ``pen`` px wide,
    black on white (``photo``: on uneven, noisy paper, a little blurred, as a phone photo), as an
    8-bit grayscale image."""
    k = SUPERSAMPLE
    p = points.astype(np.float32)
    p = (p - p.min(axis=0)) * (ink_height * k) / max(float(np.ptp(p[:, 1])), 1.0)
    margin = int(max(ink_height * 0.3, 6) * k)
    p += margin
    w, h = int(p[:, 0].max()) + 2 * margin, int(p[:, 1].max()) + 2 * margin
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    width = max(1, int(round(pen * k)))
    for stroke in np.split(p, np.flatnonzero(pen_up)[:-1] + 1):
        if len(stroke) > 1:
            draw.line([tuple(q) for q in stroke], fill=0, width=width, joint="curve")
        for x, y in stroke[[0, -1]]:  # round caps, as a canvas pen draws them
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=0)
    img = img.resize((max(1, w // k), max(1, h // k)), Image.Resampling.BOX)
    if not photo:
        return img
    r = np.random.default_rng(seed)
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    gray = np.asarray(img, np.float32) / 255.0
    yy, xx = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
    paper = 0.85 - 0.2 * xx / max(gray.shape[1], 1) - 0.1 * yy / max(gray.shape[0], 1)  # a shadow across
    ink = 0.15
    gray = paper - (paper - ink) * (1 - gray) + r.normal(0, 0.03, gray.shape)
    return Image.fromarray(np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8))


def _prepare_one(args: tuple) -> np.ndarray | None:
    points, pen_up, seed = args
    try:
        return line_from_gray(render(points, pen_up, np.random.default_rng(seed) if seed is not None else None))
    except PreprocessError:
        return None


def strips(lines: Lines, seed: int | None, workers: int = 2) -> list[np.ndarray | None]:
    """Every line rendered (augmented with ``seed``; plain with None) and prepared; cached."""
    salt = f"|{seed}" + (f"|r{RENDER_VERSION}" if seed is not None else "")  # plain renderings never changed
    key = hashlib.sha1(("|".join(lines.ids) + salt).encode()).hexdigest()[:16]
    path = CACHE_DIR / f"lines-{key}-l{LINE_PREPROCESSING_VERSION}.npz"
    if path.exists():
        d = np.load(path)
        return [d[f"s{i}"] if f"s{i}" in d else None for i in range(len(lines.ids))]
    jobs = [(p, e, None if seed is None else seed * 100_003 + i) for i, (p, e) in enumerate(lines.strokes)]
    with ProcessPoolExecutor(workers, mp_context=WORKERS) as pool:
        out = list(pool.map(_prepare_one, jobs, chunksize=32))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{f"s{i}": s for i, s in enumerate(out) if s is not None})
    return out


def load_names_words(data_dir: Path, part: str) -> tuple[list[np.ndarray], list[str]]:
    """Real scanned handwritten names (block capitals cut from forms, ``names_words/``): grayscale
    images (1 = paper) and their text. ``part`` is ``train`` (the first 800 files) or ``test`` (the
    last 200, never trained on). Rows labelled EMPTY or UNREADABLE are left out."""
    root = Path(data_dir) / NAMES
    with open(root / "labels.csv", newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["file"])
    rows = rows[:NAMES_TRAIN] if part == "train" else rows[NAMES_TRAIN:]
    grays, texts = [], []
    for r in rows:
        if r["text"] in ("EMPTY", "UNREADABLE") or not r["text"].strip():
            continue
        grays.append(np.asarray(Image.open(root / "images" / r["file"]).convert("L"), np.float32) / 255.0)
        texts.append(r["text"].strip())
    return grays, texts


def load_iam_offline(root: Path) -> Iterator[tuple[Path, str]]:
    """(image path, transcription) of every line of the IAM offline database layout: ``lines.txt``
    (``a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell``) and
    ``lines/a01/a01-000u/a01-000u-00.png``. Lines marked ``err`` are skipped."""
    root = Path(root)
    for raw in (root / "lines.txt").read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.split(" ")
        if len(parts) < 9 or parts[1] != "ok":
            continue
        line_id = parts[0]
        form = "-".join(line_id.split("-")[:2])
        path = root / "lines" / line_id.split("-")[0] / form / f"{line_id}.png"
        yield path, " ".join(parts[8:]).replace("|", " ")


def validation_lines(ids: list[str], count: int, rng: np.random.Generator) -> list[int]:
    """Indices of about ``count`` lines made of whole forms (a form is one writer's page), so the
    lines that train beside them share no page with them. The data names no writers, so one
    writer's other pages may still train: the figures that matter come from testset_f."""
    forms = sorted({line_id.rsplit("-", 1)[0] for line_id in ids})
    chosen: set[str] = set()
    total = 0
    for form in rng.permutation(forms):
        if total >= count:
            break
        chosen.add(str(form))
        total += sum(line_id.rsplit("-", 1)[0] == form for line_id in ids)
    return [i for i, line_id in enumerate(ids) if line_id.rsplit("-", 1)[0] in chosen]


def column_probs(model, prepared: list) -> list:
    """The line model's column probabilities of each prepared strip (None stays None)."""
    return [None if s is None else model.probabilities(s) for s in prepared]


def gray_strips(grays: list[np.ndarray]) -> list:
    """Each picture (a scanned name's crop, say) prepared as a line strip; None where it has no ink."""
    out = []
    for gray in grays:
        try:
            out.append(line_from_gray(gray))
        except PreprocessError:
            out.append(None)
    return out
