"""Folders replaced in place by renames, for the steps that write a model beside the one served."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path


def swap_folder(new: Path, current: Path) -> None:
    """Put the folder ``new`` in the place of ``current`` by renames: the old folder (if any) is
    renamed aside first and removed once the new one is in place, so a reader sees the old or the
    new, never half of either."""
    old = current.parent / f".{current.name}.{uuid.uuid4().hex}.old"
    if current.exists():
        current.rename(old)
    new.rename(current)
    shutil.rmtree(old, ignore_errors=True)
