"""Where a training step runs from, how it was called, and the one writer of a trained model's
``meta.json``: a library every step imports, which imports no step (so ``training/lib/loop.py`` and
``training/evaluate.py`` no longer need each other).

Every step that produces weights writes their ``meta.json`` through ``publish_meta``, which adds
the three facts a reader needs to trust the folder, in the vocabulary ``models.loading`` checks:
``trained_on`` (UTC), ``training.command`` (the command as typed) and, for a model reading the
glyph or line path, ``preprocessing`` with its ``preprocessing_version``. A step that measures a
published model adds its figures with ``measured``.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from models.loading import CURRENT, write_meta
from models.timestamps import utc_stamp

ROOT = Path(__file__).resolve().parent.parent  # the repository


def command_line(module: str) -> str:
    """The exact command that is running, as a user would type it."""
    return " ".join(["python", "-m", module, *map(shlex.quote, sys.argv[1:])])


def config_record(cfg: Any) -> dict[str, Any]:
    """A step's config dataclass as ``meta.json`` stores it whole (paths as strings)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def stamped(meta: dict[str, Any], step: str | None, preprocessing: str | None = None) -> dict[str, Any]:
    """``meta`` with the time, the command of ``step`` (``training.<module>``; None for a model the
    app trains, for a profile, where no command ran) and, for ``preprocessing`` ``"glyph"`` or
    ``"line"``, the version of that path this code runs."""
    out = dict(meta) | {"trained_on": utc_stamp()}
    if step is not None:
        out["training"] = dict(meta.get("training", {})) | {"command": command_line(step)}
    if preprocessing is not None:
        out |= {"preprocessing": preprocessing, "preprocessing_version": CURRENT[preprocessing]}
    return out


def publish_meta(folder: Path, meta: dict[str, Any], step: str | None, preprocessing: str | None = None) -> Path:
    """Write ``meta``, stamped by ``stamped``, as ``folder/meta.json`` (atomically)."""
    return write_meta(folder, stamped(meta, step, preprocessing))


def measured(
    meta: dict[str, Any], figures: dict[str, Any], command: str, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``meta`` with ``figures`` as its ``metrics``, saying which ``command`` measured them and when
    (and, when given, the measuring step's ``config``, as ``config_record`` gives it)."""
    record = figures | {"evaluated_by": command, "evaluated_on": utc_stamp()}
    return meta | {"metrics": record | ({"config": config} if config is not None else {})}
