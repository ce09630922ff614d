"""Evaluate a shipped model on full test sets and record the figures in its ``meta.json``.

``python -m training.evaluate --task digit --data-dir ../shared/data`` measures, through the same
preprocessing and compiled forward pass the app serves with:
- the official MNIST test split (10,000 digits);
- real photographed pen-on-paper digits (``handwritten_chars62``, 1,000 PNG files read as uploads),
  which the digit model never trained on;
- "not sure" on held-out real input: the MNIST test digits as they are and as phone photos, and the
  photographed digits of the test part (file numbers 80-100, ``training.data.glyphs.chars62_split``;
  the glyph gate trains on the part below 70). Its thresholds are chosen on the validation parts:
  MNIST validation digits as they are and as phone photos, and the photographed digits 70-79.

``--gate PATH`` measures with a glyph gate other than the shipped one (a candidate).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from training.lib.glyph_metrics import EVALUATORS, evaluate_task
from training.provenance import command_line, config_record


@dataclass(frozen=True)
class Evaluation:
    """Which model is measured, on what and with which gate; its figures keep this whole
    (``metrics.config`` in the model's meta.json)."""

    task: str = "digit"  # which model: "digit" or "character"
    data_dir: Path | None = None  # folder with the datasets (None: download)
    weights: Path | None = None  # the model folder (None: the shipped one)
    gate: Path | None = None  # the glyph gate folder (None: the shipped one)
    no_write: bool = False  # print only; leave meta.json unchanged


def parse_args(argv=None) -> Evaluation:
    d = Evaluation()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(EVALUATORS), default=d.task, help="which model to evaluate")
    p.add_argument("--data-dir", type=Path, default=d.data_dir, help="folder with the datasets (default: download)")
    p.add_argument("--weights", type=Path, default=d.weights, help="model folder (default: the shipped one)")
    p.add_argument("--gate", type=Path, default=d.gate, help="glyph gate folder (default: the shipped one)")
    p.add_argument("--no-write", action="store_true", help="print only; leave meta.json unchanged")
    return Evaluation(**vars(p.parse_args(argv)))


def measure(cfg: Evaluation) -> dict:
    """Measure the model, print its figures and, unless ``no_write``, record them in its meta.json
    with this command and ``cfg``."""
    command = command_line("training.evaluate")
    return evaluate_task(cfg.task, cfg.data_dir, cfg.weights, not cfg.no_write, cfg.gate, command, config_record(cfg))


def main(argv=None) -> None:
    measure(parse_args(argv))


if __name__ == "__main__":
    main()
