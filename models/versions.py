"""Model versions made by retraining: where they live, which one is active, promotion and rollback.

The shipped weights (``models/weights/<task>/``) are version 1 and never change. Every retrained
candidate is kept in ``<versions dir>/<task>/v<N>/`` (``model.keras`` + ``meta.json`` with its
parent, data and metrics), promoted or not. ``<versions dir>/<task>/ACTIVE`` names the version
being served (absent: the shipped one); it is replaced atomically, and a running app notices the
change and swaps models between requests.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from models.errors import WeightsError
from models.files import write_atomically
from models.loading import read_meta

log = logging.getLogger(__name__)

SHIPPED = "shipped"  # what ACTIVE says when the shipped weights are served


class ModelVersion(TypedDict):
    """One version of a task's model, as ``list_versions`` lists it (``GET /admin/models``)."""

    name: str  # the folder: ``SHIPPED`` or "v<N>"
    version: str
    parent: str | None  # the version it was retrained from; None for the shipped one
    promoted: NotRequired[bool | None]  # a retrained version: whether it passed its checks
    metrics: NotRequired[dict[str, Any] | None]  # a retrained version: its measurements
    active: bool  # whether it is served


def task_dir(versions_dir: Path, task: str) -> Path:
    return Path(versions_dir) / task


def active_name(versions_dir: Path | None, task: str) -> str:
    """The active version's folder name, or ``SHIPPED``."""
    if versions_dir is None:
        return SHIPPED
    path = task_dir(versions_dir, task) / "ACTIVE"
    try:
        name = path.read_text().strip()
    except OSError:
        return SHIPPED
    return name if name and (task_dir(versions_dir, task) / name / "model.keras").exists() else SHIPPED


def active_dir(versions_dir: Path | None, shipped_dir: Path, task: str) -> Path:
    """The folder of the model to serve for ``task``."""
    name = active_name(versions_dir, task)
    return shipped_dir if name == SHIPPED else task_dir(versions_dir, task) / name


def set_active(versions_dir: Path, task: str, name: str) -> None:
    """Make ``name`` (a version folder, or ``SHIPPED``) the served model, atomically."""
    folder = task_dir(versions_dir, task)
    if name != SHIPPED and not (folder / name / "model.keras").exists():
        raise FileNotFoundError(f"There is no {task} model version {name!r} in {folder}.")
    write_atomically(folder / "ACTIVE", name + "\n", durable=True)  # on disk before it replaces the old pointer


def new_version_dir(versions_dir: Path, task: str, shipped_version: str) -> tuple[str, Path]:
    """The next version number (after the shipped one and every kept one) and its empty folder."""
    folder = task_dir(versions_dir, task)
    taken = [int(p.name[1:]) for p in folder.glob("v*") if p.name[1:].isdigit()] if folder.exists() else []
    number = max([int(shipped_version) if shipped_version.isdigit() else 1, *taken]) + 1
    out = folder / f"v{number}"
    out.mkdir(parents=True)
    return str(number), out


def list_versions(versions_dir: Path, shipped_dir: Path, task: str) -> list[ModelVersion]:
    """Every version of ``task``, shipped first, with its parent, metrics and whether it is served;
    a kept version whose ``meta.json`` cannot be read is left out (and logged). ``WeightsError``
    when the shipped model's cannot."""
    active = active_name(versions_dir, task)
    meta = read_meta(shipped_dir)
    out: list[ModelVersion] = [
        {"name": SHIPPED, "version": str(meta.get("version", "1")), "parent": None, "active": active == SHIPPED}
    ]
    folder = task_dir(versions_dir, task)
    for path in sorted(folder.glob("v*"), key=lambda p: int(p.name[1:]) if p.name[1:].isdigit() else 0):
        if (path / "meta.json").exists():
            try:
                m = read_meta(path)
            except WeightsError as exc:
                log.warning("%s model version %s left out of the list: %s", task, path.name, exc)
                continue
            retrain = m.get("retraining", {})
            out.append(
                {
                    "name": path.name,
                    "version": str(m.get("version")),
                    "parent": retrain.get("parent"),
                    "promoted": retrain.get("promoted"),
                    "metrics": retrain.get("metrics"),
                    "active": active == path.name,
                }
            )
    return out


def rollback(versions_dir: Path, shipped_dir: Path, task: str, to: str | None = None) -> str:
    """Serve ``to`` (a folder name or version number), or the active version's parent; returns it."""
    versions = list_versions(versions_dir, shipped_dir, task)
    current = next((v for v in versions if v["active"]), None)
    if to is None:
        if current is None:
            raise ValueError(f"The {task} model in use has no readable meta.json; name the version to roll back to.")
        if current["name"] == SHIPPED:
            raise ValueError(f"The {task} model in use is the shipped one; there is nothing to roll back to.")
        parent = current["parent"]
        target = next((v for v in versions if v["version"] == parent), versions[0])
    else:
        target = next((v for v in versions if to in (v["name"], v["version"])), None)
        if target is None:
            raise ValueError(f"There is no {task} model version {to!r}.")
    set_active(versions_dir, task, target["name"])
    return target["name"]
