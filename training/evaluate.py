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
from pathlib import Path

from training.glyph_metrics import EVALUATORS, evaluate_task
from training.provenance import command_line


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(EVALUATORS), default="digit", help="which model to evaluate")
    p.add_argument("--data-dir", type=Path, default=None, help="folder with the datasets (default: download)")
    p.add_argument("--weights", type=Path, default=None, help="model folder (default: the shipped one)")
    p.add_argument("--gate", type=Path, default=None, help="glyph gate folder (default: the shipped one)")
    p.add_argument("--no-write", action="store_true", help="print only; leave meta.json unchanged")
    args = p.parse_args(argv)
    evaluate_task(
        args.task, args.data_dir, args.weights, not args.no_write, args.gate, command_line("training.evaluate")
    )


if __name__ == "__main__":
    main()
