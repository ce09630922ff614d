"""Where a training step runs from and how it was called: a library every step imports, which
imports no step (so ``training/common.py`` and ``training/evaluate.py`` no longer need each other)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository


def command_line(module: str) -> str:
    """The exact command that is running, as a user would type it."""
    return " ".join(["python", "-m", module, *map(shlex.quote, sys.argv[1:])])
