"""Files written in one step: a reader (another process, another server, a server watching the
file's time stamp) sees the old file or the new one, never half of one. Every ``meta.json``,
``profile.json``, job ``state.json`` and ``ACTIVE`` pointer is written here; ``read_json`` reads
the JSON ones back (a ``meta.json`` through ``models.loading.read_meta``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

MODE = 0o644  # as a plain write would leave it (mkstemp's own 0600 would hide it from other users)


def write_atomically(path: Path, text: str, durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` in one step, its folder made if needed; ``durable``: on
    disk (fsync) before it replaces the old file, as a pointer that must survive a crash is."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)  # one temp file per writer
    try:
        os.fchmod(fd, MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data: object) -> Path:
    """Write ``data`` as indented JSON (UTF-8, ending in a newline) to ``path`` in one step."""
    return write_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    """The JSON in ``path`` (UTF-8); ``OSError`` when it cannot be read, ``ValueError`` when it is not JSON."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
