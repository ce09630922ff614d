"""Train the handwriting filter that keeps printed form text, dotted rules and cut-off lines out of
line answers: ``python -m training.train_line_filter --data-dir ../shared/data``.

It reads one line strip (``models.preprocessing.line_from_gray``, the path every line takes) and
says whether it is handwriting (``models.architectures.build_line_filter``).

- Handwriting: IAM-OnDB training lines rendered with varied pens and paper
  (``training.data.lines.render``), and the lines of the scanned names 1-640 that read as the name.
- Not handwriting: the other lines that ``models.segmentation.lines.split_lines`` finds on those scans (printed
  labels such as NOM / PRENOM, the dotted rules and the halves of lines the crop cut off, labelled
  by reading them with the shipped line model against the name); printed words in the fonts that
  ship with matplotlib, with paper, blur, noise and JPEG; rows of dots, dashes and underscores;
  the top or bottom strip of a handwritten line, as a crop cuts it.
- Validation (threshold and figures): the scanned names 641-800 (lines labelled the same way), the
  400 IAM-OnDB ``val1`` lines that chose the line model's epoch (plain and varied renderings) and
  synthetic negatives of other seeds. The threshold keeps 99.5% of the validation handwriting.
  The held-out names 801-1000 and ``testset_f`` are not used.

Writes ``models/weights/line-filter/`` (``model.keras`` + ``meta.json`` with the threshold and the
validation figures). Resumable: the run's state is kept under ``training/.checkpoints/``.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from models.architectures import build_line_filter
from models.decoding.ctc import beam_search, edit_distance
from models.errors import PreprocessError
from models.loading import filter_windows, load_line_model
from models.preprocessing import line_from_gray
from models.registry import WEIGHTS_DIR
from models.segmentation.lines import split_lines
from training.data.lines import NAMES_TRAIN, Lines, load_iam_ondb, load_names_words, render, strips, validation_lines
from training.lib.keras_to_onnx import export_onnx
from training.lib.loop import CHECKPOINTS
from training.provenance import config_record, publish_meta

KEEP_HANDWRITING = 0.995  # the threshold keeps this share of the validation handwriting
NAMES_FIT = 640  # scanned names 1-640 train the filter, 641-800 validate it


def fonts() -> list[Path]:
    """The TrueType fonts matplotlib ships (DejaVu, STIX, Computer Modern): printed text to refuse."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return sorted(f for f in folder.glob("*.ttf") if not f.name.startswith(("STIXSiz", "cmex", "cmsy", "LastResort")))


def _photo(img: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """Paper, blur, noise and JPEG as a scan or a phone photo gives them; grayscale, 1 = paper."""
    if rng.random() < 0.6:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.0)))
    gray = np.asarray(img, np.float32) / 255 * rng.uniform(0.8, 1.0)
    gray = np.clip(gray + rng.normal(0, rng.uniform(0, 0.04), gray.shape), 0, 1)
    buf = io.BytesIO()
    Image.fromarray(np.round(gray * 255).astype(np.uint8)).save(buf, format="JPEG", quality=int(rng.integers(40, 95)))
    return np.asarray(Image.open(buf), np.float32) / 255


def printed(rng: np.random.Generator, words: list[str], font_files: list[Path]) -> np.ndarray:
    """One to four printed words (sometimes capitals, sometimes a form label with a colon)."""
    text = " ".join(rng.choice(words, int(rng.integers(1, 5))))
    text = text.upper() if rng.random() < 0.5 else text
    text += " :" if rng.random() < 0.2 else (":" if rng.random() < 0.2 else "")
    font = ImageFont.truetype(str(font_files[int(rng.integers(len(font_files)))]), int(rng.integers(10, 48)))
    left, top, right, bottom = font.getbbox(text)
    pad = int(rng.integers(4, 20))
    img = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 255)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, fill=int(rng.integers(0, 90)), font=font)
    return _photo(img, rng)


def rule(rng: np.random.Generator, font_files: list[Path]) -> np.ndarray:
    """A row of dots, dashes or underscores, printed or dotted by hand, as forms rule their fields."""
    if rng.random() < 0.5:
        text = str(rng.choice([".", "_", "-", ". ", "- ", "…"])) * int(rng.integers(8, 60))
        font = ImageFont.truetype(str(font_files[int(rng.integers(len(font_files)))]), int(rng.integers(10, 40)))
        left, top, right, bottom = font.getbbox(text)
        img = Image.new("L", (right - left + 16, bottom - top + 16), 255)
        ImageDraw.Draw(img).text((8 - left, 8 - top), text, fill=int(rng.integers(0, 120)), font=font)
        return _photo(img, rng)
    n, step, r = int(rng.integers(10, 60)), rng.uniform(4, 14), rng.uniform(0.8, 3)
    img = Image.new("L", (int(n * step) + 20, 30), 255)
    draw = ImageDraw.Draw(img)
    for i in range(n):
        x, y = 10 + i * step + rng.normal(0, 0.5), 15 + rng.normal(0, 0.7)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=int(rng.integers(0, 120)))
    return _photo(img, rng)


def cut_off(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The top or the bottom strip of a handwritten line, as the edge of a crop cuts it."""
    ink_rows = np.flatnonzero((gray < 0.6).any(axis=1))
    top, bottom = (ink_rows[0], ink_rows[-1] + 1) if ink_rows.size else (0, gray.shape[0])
    keep = max(2, int((bottom - top) * rng.uniform(0.1, 0.35)))
    return gray[top : top + keep] if rng.random() < 0.5 else gray[bottom - keep : bottom]


def prepared(grays) -> list[np.ndarray]:
    out = []
    for gray in grays:
        try:
            out.append(line_from_gray(gray))
        except PreprocessError:
            continue
    return out


def names_lines(data_dir: Path, model, first: int, last: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Strips of the lines ``split_lines`` finds on scanned names ``first``..``last`` (1-based), as
    (handwriting, not handwriting): a line is the name when its reading is within 40% of the name's
    length in edits, and not when it is at least 70% away; the few between are left out."""
    grays, names = load_names_words(data_dir, "train")  # files 1-800, EMPTY / UNREADABLE left out
    hand, other = [], []
    for gray, name in list(zip(grays, names, strict=True))[first - 1 : last]:
        try:
            found = split_lines(gray)
        except PreprocessError:
            continue
        for _, crop in found:
            try:
                strip = line_from_gray(crop)
            except PreprocessError:
                continue
            read = beam_search(model.probabilities(strip), model.charset).upper().replace(" ", "")
            distance = edit_distance(read, name.upper().replace(" ", "")) / max(len(name), 1)
            if distance <= 0.4:
                hand.append(strip)
            elif distance >= 0.7:
                other.append(strip)
    return hand, other


def windows_of(strips_: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One window per strip (a random one of a long strip), as the filter trains on them."""
    out = []
    for s in strips_:
        w = filter_windows(s)
        out.append(w[int(rng.integers(len(w)))])
    return np.stack(out)


@dataclass(frozen=True)
class FilterConfig:
    """How the filter is trained; its meta.json keeps this whole (``training.config``)."""

    data_dir: Path  # folder with iam_ondb_lines/ and names_words/
    iam_lines: int = 3000  # IAM-OnDB training lines rendered as handwriting
    printed: int = 2500  # printed-text examples
    rules: int = 600  # dotted, dashed and underscored rows
    cut_offs: int = 1500  # cut-off halves of handwritten lines
    epochs: int = 12
    seed: int = 1
    out: Path = WEIGHTS_DIR / "line-filter"  # output folder
    run_name: str = "line-filter"  # checkpoint folder name (training/.checkpoints/<run_name>)


def parse_args(argv=None) -> FilterConfig:
    d = FilterConfig(Path("."))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder with iam_ondb_lines/ and names_words/")
    p.add_argument("--iam-lines", type=int, default=d.iam_lines, help="IAM-OnDB training lines rendered as handwriting")
    p.add_argument("--printed", type=int, default=d.printed, help="printed-text examples")
    p.add_argument("--rules", type=int, default=d.rules, help="dotted, dashed and underscored rows")
    p.add_argument("--cut-offs", type=int, default=d.cut_offs, help="cut-off halves of handwritten lines")
    p.add_argument("--epochs", type=int, default=d.epochs, help="training epochs")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")
    p.add_argument("--out", type=Path, default=d.out, help="output folder")
    p.add_argument("--run-name", default=d.run_name, help="checkpoint folder name")
    return FilterConfig(**vars(p.parse_args(argv)))


def synthetic(rng, texts: list[str], count: dict, iam: Lines) -> dict[str, list[np.ndarray]]:
    """Printed words, rules and cut-off lines, prepared like any line."""
    words = sorted({w for t in texts for w in t.split() if w.isalpha()})
    font_files = fonts()
    picks = rng.choice(len(iam.texts), count["cut_offs"], replace=True)
    return {
        "printed": prepared(printed(rng, words, font_files) for _ in range(count["printed"])),
        "rules": prepared(rule(rng, font_files) for _ in range(count["rules"])),
        "cut_offs": prepared(cut_off(render(*iam.strokes[i], rng), rng) for i in picks),
    }


@dataclass
class FilterData:
    """Training windows and labels, and the validation groups by name (strips, one list each)."""

    x: np.ndarray
    y: np.ndarray
    counts: dict[str, int]  # handwriting / other examples
    val_hand: dict[str, list[np.ndarray]]
    val_other: dict[str, list[np.ndarray]]

    def validation(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One window per validation strip, handwriting first, and its labels."""
        hand = [s for v in self.val_hand.values() for s in v]
        other = [s for v in self.val_other.values() for s in v]
        return windows_of(hand + other, rng), np.concatenate([np.ones(len(hand)), np.zeros(len(other))])


def training_set(cfg: FilterConfig, line_model, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Windows of IAM lines and the scanned names' lines (handwriting, the scans shown three times)
    against the names' other lines, printed words, rules and cut-off lines; shuffled."""
    train = load_iam_ondb(cfg.data_dir, "train")
    pick = rng.choice(len(train.texts), min(cfg.iam_lines, len(train.texts)), replace=False)
    iam = Lines([train.strokes[i] for i in pick], [train.texts[i] for i in pick], [train.ids[i] for i in pick])
    iam_strips = [s for s in strips(iam, cfg.seed) if s is not None]
    names_hand, names_other = names_lines(cfg.data_dir, line_model, 1, NAMES_FIT)
    made = synthetic(rng, train.texts, {"printed": cfg.printed, "rules": cfg.rules, "cut_offs": cfg.cut_offs}, iam)
    made_counts = ", ".join(f"{k} {len(v)}" for k, v in made.items())
    print(
        f"train: {len(iam_strips)} IAM lines, names {len(names_hand)} / {len(names_other)} lines, {made_counts}",
        flush=True,
    )
    positives = iam_strips + names_hand * 3  # the scans are few: shown three times
    negatives = names_other * 3 + [s for v in made.values() for s in v]
    x = windows_of(positives + negatives, rng)
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))]).astype(np.float32)
    order = rng.permutation(len(y))
    return x[order], y[order], {"handwriting": len(positives), "other": len(negatives)}


def validation_groups(cfg: FilterConfig, line_model, vrng: np.random.Generator) -> tuple[dict, dict]:
    """(handwriting, not handwriting) of validation, by group: the line model's 400 val1 lines
    (plain and varied), the lines of the names 641-800, and synthetic negatives of other seeds."""
    val = load_iam_ondb(cfg.data_dir, "val1")
    chosen = validation_lines(val.ids, 400, np.random.default_rng(line_model.meta.get("training", {}).get("seed", 1)))
    val = Lines([val.strokes[i] for i in chosen], [val.texts[i] for i in chosen], [val.ids[i] for i in chosen])
    val_hand = {
        "iam_val1_plain": [s for s in strips(val, None) if s is not None],
        "iam_val1_varied": [s for s in strips(val, cfg.seed + 1000) if s is not None],
    }
    vh, vo = names_lines(cfg.data_dir, line_model, NAMES_FIT + 1, NAMES_TRAIN)
    val_hand["names_641_800"] = vh
    val_other = {"names_641_800": vo} | synthetic(vrng, val.texts, {"printed": 500, "rules": 200, "cut_offs": 400}, val)
    return val_hand, val_other


def fit(cfg: FilterConfig, data: FilterData, vx: np.ndarray, vy: np.ndarray):
    """``build_line_filter`` trained with class weights, resumable from ``training/.checkpoints``."""
    keras.utils.set_random_seed(cfg.seed)
    model = build_line_filter()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    ckpt = CHECKPOINTS / cfg.run_name
    ckpt.mkdir(parents=True, exist_ok=True)
    y = data.y
    weight = {0: len(y) / (2 * max(1, (y == 0).sum())), 1: len(y) / (2 * max(1, (y == 1).sum()))}
    saving = [
        keras.callbacks.BackupAndRestore(str(ckpt / "backup")),
        keras.callbacks.CSVLogger(str(ckpt / "log.csv"), append=True),
    ]
    validation = (vx[..., None], vy)
    model.fit(
        data.x[..., None],
        y,
        batch_size=64,
        epochs=cfg.epochs,
        validation_data=validation,
        class_weight=weight,
        verbose=2,
        callbacks=saving,
    )
    return model


def measure(model, data: FilterData) -> tuple[float, dict, dict]:
    """The threshold that keeps ``KEEP_HANDWRITING`` of the validation handwriting, what it keeps
    and refuses per group, and the groups' sizes."""

    def p_hand(group: list[np.ndarray]) -> np.ndarray:
        return np.array([float(model.predict(filter_windows(s)[..., None], verbose=0).mean()) for s in group])

    hand_p = {k: p_hand(v) for k, v in data.val_hand.items()}
    threshold = round(float(np.quantile(np.concatenate(list(hand_p.values())), 1 - KEEP_HANDWRITING)), 4)
    figures = {f"handwriting_kept_{k}": round(float((p >= threshold).mean()), 4) for k, p in hand_p.items()}
    figures |= {f"refused_{k}": round(float((p_hand(v) < threshold).mean()), 4) for k, v in data.val_other.items()}
    samples = {k: len(v) for k, v in data.val_hand.items()} | {f"not_{k}": len(v) for k, v in data.val_other.items()}
    print(json.dumps({"threshold": threshold} | figures), flush=True)
    return threshold, figures, samples


def publish(cfg: FilterConfig, model, threshold: float, figures: dict, samples: dict, data: FilterData, minutes: float):
    """``model.keras``, its ONNX export and ``meta.json`` in ``cfg.out``."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    model.save(cfg.out / "model.keras")
    exported = export_onnx(model, cfg.out)
    meta = {
        "name": "line-filter",
        "task": "line-filter",
        "version": "1",
        "architecture": "line_filter",
        "input_shape": list(model.input_shape[1:]),
        "threshold": threshold,
        "parameters": int(model.count_params()),
        "training": {
            "config": config_record(cfg),
            "epochs": cfg.epochs,
            "seed": cfg.seed,
            "examples": data.counts,
            "minutes": minutes,
        },
        "validation": {
            "chosen_as": f"keeps {KEEP_HANDWRITING:.1%} of the validation handwriting",
            "figures": figures,
            "samples": samples,
        },
    }
    publish_meta(cfg.out, meta | {"onnx": exported}, "training.train_line_filter", "line")
    print(f"saved {cfg.out}")


def main(argv=None) -> None:
    cfg = parse_args(argv)
    started = time.monotonic()
    rng = np.random.default_rng(cfg.seed)
    line_model = load_line_model(WEIGHTS_DIR / "line")
    x, y, counts = training_set(cfg, line_model, rng)
    vrng = np.random.default_rng(cfg.seed + 7)
    data = FilterData(x, y, counts, *validation_groups(cfg, line_model, vrng))
    model = fit(cfg, data, *data.validation(vrng))
    threshold, figures, samples = measure(model, data)
    publish(cfg, model, threshold, figures, samples, data, round((time.monotonic() - started) / 60, 1))


if __name__ == "__main__":
    main()
