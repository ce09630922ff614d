"""Measure teaching from one sample on writers it never saw:
``python -m training.evaluate_personal --data-dir ../shared/data``.

The writer-consistent set. ``handwritten_chars62`` has no writer ids, but its files come in runs:
within a class, consecutive file indices share paper, lighting, pen and hand (look at
``DIGIT_1_1.png`` ... ``DIGIT_1_10.png``: one person's European 1s with a long flag; a run of
crossed 7s further on). We take each block of 10 consecutive indices of a class as one writer's
samples of that character. This is an assumption about the dataset, stated here and in the README.

For each group, the first sample is taught (a fresh profile each time) and the group's other
samples are read through ``models.reading.glyph.recognize`` (the function behind the API and the CLI)
with and without the profile. Digits: all nine others are new to every model (the digit model
trained on MNIST only). Characters: only those in the chars62 validation and test parts count,
since the character model trained on the rest.

It reports, over groups: base vs personal accuracy on the writer's other samples; the same with the
VAE left out (augmentation alone); the writer classifier's verdict on the writer's held-out
samples ("yours"), on base test samples of the same character ("standard") and of other
characters ("other"); and the adapted digit models on the whole official MNIST test split.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.profiles import base_data, create_profile
from models.reading.glyph import recognize
from models.reading.personal import writer_verdict
from models.registry import WEIGHTS_DIR, Registry
from training.data.glyphs import CHARSET62, chars62_split, load_chars62, load_mnist, prepare
from training.lib.one_sample import TeachConfig, teach
from training.lib.writer_classifier import WRITER_EPOCHS
from training.provenance import ROOT, command_line, config_record

REPORT = ROOT / "models" / "weights" / "personal-base" / "evaluation.json"


@dataclass(frozen=True)
class PersonalEvaluation:
    """Which writers are taught and how; the report keeps this whole (``config``)."""

    data_dir: Path  # folder with handwritten_chars62/ and mnist/
    digit_blocks: tuple[int, ...] = (0, 4, 8)  # which blocks of 10 of each digit to teach (0-9)
    characters: str = "ACEGKMPRTWYbdfhkmqsu"  # character-task classes to teach
    char_blocks: tuple[int, ...] = (0,)  # which blocks of 10 of each character to teach
    out: Path = REPORT  # where the figures are written (JSON)
    limit: int = 0  # teach at most this many groups per task (0: all)
    vae_arm_only: bool = False  # skip the augmentation-alone arm (half the time)


def parse_args(argv=None) -> PersonalEvaluation:
    d = PersonalEvaluation(Path("."))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder with handwritten_chars62/ and mnist/")
    p.add_argument(
        "--digit-blocks",
        default=",".join(map(str, d.digit_blocks)),
        help="which blocks of 10 of each digit to teach (0-9)",
    )
    p.add_argument("--characters", default=d.characters, help="character-task classes to teach")
    p.add_argument(
        "--char-blocks", default=",".join(map(str, d.char_blocks)), help="which blocks of 10 of each character to teach"
    )
    p.add_argument("--out", type=Path, default=d.out, help="where the figures are written (JSON)")
    p.add_argument("--limit", type=int, default=d.limit, help="teach at most this many groups per task (0: all)")
    p.add_argument("--vae-arm-only", action="store_true", help="skip the augmentation-alone arm (half the time)")
    args = vars(p.parse_args(argv))
    blocks = {k: tuple(int(b) for b in args[k].split(",")) for k in ("digit_blocks", "char_blocks")}
    return PersonalEvaluation(**args | blocks)


def writer_groups(data_dir: Path, task: str, labels: str, blocks: list[int]) -> list[dict]:
    """[{label, files: [paths in index order]}] for the chosen blocks of 10 consecutive indices."""
    root = Path(data_dir) / "handwritten_chars62"
    by_label: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for row in csv.DictReader(open(root / "labels.csv", newline="")):
        index = int(re.search(r"_(\d+)\.png$", row["file"]).group(1))
        if row["char"] in labels:
            by_label[row["char"]].append((index, root / "png" / row["file"]))
    groups = []
    for label in labels:
        files = [f for _, f in sorted(by_label[label])]
        for b in blocks:
            if len(files[b * 10 : b * 10 + 10]) == 10:
                groups.append({"task": task, "label": label, "block": b, "files": files[b * 10 : b * 10 + 10]})
    return groups


def unseen_character_files(data_dir: Path) -> set[str]:
    """chars62 files in the character model's validation and test parts (the split of
    ``training.data.glyphs.chars62_split``): the only ones it did not train on."""
    x, _, files = load_chars62(Path(data_dir))
    idx = chars62_split(x, files)
    return {files[i] for i in np.concatenate([idx["val"], idx["test"]])}


def read(files: list[Path], task: str, registry: Registry, profile: Path | None) -> list[dict]:
    return [recognize(f.read_bytes(), task, registry, profile=profile).result for f in files]


def scores(results: list[dict], label: str, arm: str) -> dict:
    """Top-1 accuracy, answered right (the ``text`` a user sees) and the "not sure" rate."""
    return {
        arm: float(np.mean([r["candidates"][0]["label"] == label for r in results])),
        f"{arm}_answered": float(np.mean([r["text"] == label for r in results])),
        f"{arm}_unsure": float(np.mean([r["unsure"] for r in results])),
    }


@dataclass
class Bench:
    """What every group is measured with: the served models, a folder for the profiles, the
    character files the model never trained on and the MNIST test split (prepared)."""

    registry: Registry
    work: Path
    unseen: set[str]
    mnist_x: np.ndarray
    mnist_y: np.ndarray


def chosen_groups(cfg: PersonalEvaluation) -> list[dict]:
    """The digit groups, then the character groups, each cut to ``cfg.limit``."""
    digits = writer_groups(cfg.data_dir, "digit", "0123456789", list(cfg.digit_blocks))
    chars = writer_groups(cfg.data_dir, "character", cfg.characters, list(cfg.char_blocks))
    if cfg.limit:
        digits, chars = digits[: cfg.limit], chars[: cfg.limit]
    return digits + chars


def evaluate_group(cfg: PersonalEvaluation, bench: Bench, n: int, g: dict) -> dict | None:
    """Teach the group's first sample (with the VAE and, unless ``vae_arm_only``, without), read
    its held-out samples with and without each profile; None when none is held out."""
    task, label = g["task"], g["label"]
    held = g["files"][1:] if task == "digit" else [f for f in g["files"][1:] if f.name in bench.unseen]
    if not held:
        return None
    row = {"task": task, "label": label, "block": g["block"], "taught": g["files"][0].name, "held_out": len(held)}
    row |= scores(read(held, task, bench.registry, None), label, "base")
    for arm, use_vae in (("personal", True), ("augmentation_only", False))[: 1 if cfg.vae_arm_only else 2]:
        folder, _ = create_profile(bench.work, f"g{n}-{arm.replace('_', '-')}")
        config = TeachConfig(use_vae=use_vae, pictures=False, writer_epochs=WRITER_EPOCHS if use_vae else 1)
        record = teach(g["files"][0].read_bytes(), task, label, folder, config=config)  # writer: VAE arm only
        answers = read(held, task, bench.registry, folder)
        row |= scores(answers, label, arm) | {f"{arm}_promoted": record["promoted"]}
        if use_vae:
            row |= vae_arm_figures(bench, task, label, folder, record, answers)
        shutil.rmtree(folder)
    return row


def vae_arm_figures(bench: Bench, task: str, label: str, folder: Path, record: dict, answers: list[dict]) -> dict:
    """The time a teach took, the writer classifier's verdicts and (digits) the adapted model on
    the whole MNIST test split."""
    out = {"seconds": record["seconds"]}
    out["writer_yours"] = float(np.mean([r["writer"]["label"] == "yours" for r in answers]))
    out |= writer_on_base(task, label, bench.registry, folder)
    if task == "digit":
        out["mnist_test"] = mnist_accuracy(bench.registry.personal(folder / task, "model"), bench)
    return out


def mnist_accuracy(model, bench: Bench) -> float:
    """Top-1 accuracy of ``model`` on the official MNIST test split."""
    x = bench.mnist_x
    probs = np.concatenate([model.probabilities(x[i : i + 1000]) for i in range(0, len(x), 1000)])
    return float((probs.argmax(1) == bench.mnist_y).mean())


def load_bench(cfg: PersonalEvaluation) -> Bench:
    """The served models, a fresh folder for the profiles, the unseen character files and the
    official MNIST test split."""
    _, _, mnist_x, mnist_y = load_mnist(cfg.data_dir)
    work = Path(tempfile.mkdtemp(prefix="hwr-eval-personal-"))
    return Bench(Registry(WEIGHTS_DIR), work, unseen_character_files(cfg.data_dir), prepare(mnist_x), mnist_y)


def evaluate_groups(cfg: PersonalEvaluation, bench: Bench) -> list[dict]:
    """The row of every chosen group with samples held out, each printed as it comes."""
    rows = []
    for n, group in enumerate(chosen_groups(cfg)):
        row = evaluate_group(cfg, bench, n, group)
        if row is not None:
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def publish(cfg: PersonalEvaluation, summary: dict, rows: list[dict], minutes: float) -> None:
    """The report (``summary``, the command, ``cfg`` whole, the time, every group's row) to
    ``cfg.out``; everything but the rows printed."""
    report = summary | {"command": command_line("training.evaluate_personal"), "config": config_record(cfg)}
    report |= {"minutes": minutes, "groups": rows}
    cfg.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "groups"}, indent=2))


def main(argv=None) -> None:
    cfg = parse_args(argv)
    bench = load_bench(cfg)
    started = time.monotonic()
    rows = evaluate_groups(cfg, bench)
    summary = summarise(rows, bench)
    publish(cfg, summary, rows, round((time.monotonic() - started) / 60, 1))
    shutil.rmtree(bench.work, ignore_errors=True)


def writer_on_base(task: str, label: str, registry: Registry, folder: Path) -> dict:
    """The writer classifier on base *test* samples: of the same character (should say "standard")
    and of other characters ("other"), from the shipped guard sample of the test split."""
    _, _, gx, gy = base_data(task, registry.weights_dir)
    writer = registry.personal(folder / task, "writer")
    target = (CHARSET62 if task == "character" else "0123456789").index(label)
    out = {}
    for name, mask, want in (("writer_standard", gy == target, "standard"), ("writer_other", gy != target, "other")):
        verdicts = [writer_verdict(writer, g)["label"] for g in gx[mask][:300]]  # the rule answers use
        out[name] = float(np.mean(np.array(verdicts) == want))
    return out


def summarise(rows: list[dict], bench: Bench) -> dict:
    """Means over groups, and the spread (min, max), per task; the base digit model's MNIST test."""
    out = {"mnist_test_base": mnist_accuracy(bench.registry.get("digit"), bench), "tasks": {}}
    for task in ("digit", "character"):
        part = [r for r in rows if r["task"] == task]
        if part:
            out["tasks"][task] = task_summary(part)
    return out


SUMMED = [f"{arm}{k}" for arm in ("base", "personal", "augmentation_only") for k in ("", "_answered", "_unsure")]
SUMMED += ["writer_yours", "writer_standard", "writer_other", "mnist_test", "seconds"]


def task_summary(part: list[dict]) -> dict:
    """One task's groups: each figure's mean, min and max; the groups the base model misread; promotions."""
    summary = {"groups": len(part), "held_out_samples": int(sum(r["held_out"] for r in part))}
    for k in SUMMED:
        values = [r[k] for r in part if k in r]
        if values:
            summary[k] = {
                name: round(float(f(values)), 4) for name, f in (("mean", np.mean), ("min", np.min), ("max", np.max))
            }
    hard = [r for r in part if r["base"] < 1.0]
    summary["groups_base_misreads"] = {"groups": len(hard)} | {
        k: round(float(np.mean([r[k] for r in hard])), 4)
        for k in ("base", "personal", "augmentation_only")
        if hard and all(k in r for r in hard)
    }
    summary["promoted"] = int(sum(r["personal_promoted"] for r in part))
    return summary


if __name__ == "__main__":
    main()
