"""Profiles: a person's own handwriting, taught from single samples or from a whole sheet.

A profile is a folder ``<PERSONAL_DIR>/<name>/`` holding
- ``profile.json``: the owner token's hash, when it was made, and per task what was taught
  (labels, version, whether the adapted model was promoted, its measurements);
- ``<task>/model/``: the recogniser adapted to this person (``model.keras`` + ``meta.json``);
- ``<task>/writer/``: the writer classifier, "yours" / "standard" / "other";
- ``<task>/samples.npz``, ``<task>/samples/``, ``<task>/pictures/<ord(label)>/*.png``: the taught
  samples, their variants and VAE samples, and the figures of each teach (``training.teach``);
- from a handwriting sheet (``models.handwriting_sheets``, ``training.lib.sheet_profile``): ``meta.json``,
  ``cnn/``, ``hog/``.

Answers with a profile come from its adapted model and carry the writer verdict.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import shutil
import threading
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import numpy as np

from models.errors import ProfileError, UnknownProfile, WeightsError, quoted
from models.files import read_json, write_json
from models.loading import read_meta
from models.preprocessing import decode, glyph_from_gray, to_gray
from models.timestamps import utc_stamp

log = logging.getLogger(__name__)

NAME = re.compile(r"[a-z0-9_-]{1,40}")


WRITER_CLASSES = ("yours", "standard", "other")


MAX_GUARD_DROP = 0.001  # an adapted model may read the base test sample at most 0.1 point worse


BASE_DATA_DIR = "personal-base"  # under the weights folder: replay and guard samples per task


PROFILE_FILE = "profile.json"


# the figures each teach draws into <task>/pictures/<ord(label)>/<name>.png (training.lib.teach_pictures)
PICTURES = ("variants", "vae_samples", "reconstruction", "latent_map", "feature_maps")


class TaughtTask(TypedDict):
    """What a profile was taught for one task (``GET /personal/profiles``)."""

    labels: list[str]
    version: int | None  # one more per teach of the task
    promoted: bool | None  # whether the adapted model passed its guard and answers


class SheetModels(TypedDict):
    """The models trained from a profile's handwriting sheet (its ``meta.json``)."""

    engines: list[str]  # "cnn", "hog"
    metrics: dict[str, Any]  # held-out accuracy


class ProfileSummary(TypedDict):
    """One profile as ``list_profiles`` lists it."""

    name: str
    tasks: dict[str, TaughtTask]
    sheet: NotRequired[SheetModels]


def sheet_models(profile: Path) -> SheetModels | None:
    """The engines and metrics of a sheet-trained profile (its ``meta.json``); None when it has none,
    or when that cannot be read (logged: one broken profile does not break a listing)."""
    if not (Path(profile) / "meta.json").exists():
        return None
    try:
        meta = read_meta(profile)
    except WeightsError as exc:
        log.warning("profile %s: its sheet models are left out: %s", Path(profile).name, exc)
        return None
    return {"engines": meta.get("engines", []), "metrics": meta.get("metrics", {})}


def sample_glyph(data: bytes, max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(grayscale picture, 28x28 glyph) of a taught sample's image bytes, through the glyph path
    every answer takes; raises ``BlankImage`` on no ink."""
    gray = to_gray(decode(data, max_pixels) if max_pixels else decode(data))
    return gray, glyph_from_gray(gray).pixels


def check_name(name: str) -> str:
    """``name`` when it is a valid profile name; raises ``ProfileError`` otherwise."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ProfileError("Name the profile with 1 to 40 lower-case letters, digits, - or _ (for example alice).")
    return name


def profile_dir(root: Path, name: str) -> Path:
    """The folder of profile ``name`` under ``root`` (which need not exist yet)."""
    return Path(root) / check_name(name)


def existing_profile(root: Path, name: str) -> Path:
    """The folder of an existing profile; raises ``UnknownProfile``."""
    folder = profile_dir(root, name)
    if not folder.is_dir():
        raise UnknownProfile(f"There is no profile named {quoted(name)}: teach it a sample first.")
    return folder


def profile_task_dir(profile: Path, task: str) -> Path:
    """Where a task's taught models and samples live in a profile."""
    return Path(profile) / task


def read_profile(profile: Path) -> dict:
    """The profile's ``profile.json`` (empty when it has none yet)."""
    try:
        return read_json(Path(profile) / PROFILE_FILE)
    except (OSError, ValueError):
        return {}


_PROFILE_LOCK = threading.Lock()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_profile(root: Path, name: str) -> tuple[Path, str | None]:
    """The profile's folder and, when this call created it, its new owner token (shown once; only
    its hash is kept). An existing profile gives ``None``."""

    folder = profile_dir(root, name)
    with _PROFILE_LOCK:
        if (folder / PROFILE_FILE).exists():
            return folder, None
        token = secrets.token_urlsafe(24)
        created = utc_stamp()
        write_json(
            folder / PROFILE_FILE,
            read_profile(folder) | {"name": name, "created": created, "token_sha256": _token_hash(token)},
        )
        return folder, token


def token_matches(profile: Path, token: str | None) -> bool:
    """Whether ``token`` is the profile's owner token."""
    expected = read_profile(profile).get("token_sha256")
    return bool(token and expected and hmac.compare_digest(_token_hash(str(token)), expected))


def write_profile(profile: Path, task: str, record: dict) -> None:
    """Keep a task's teach record (without the bulky parts) in ``profile.json``."""
    keep = ("version", "base", "promoted", "labels", "last_taught", "taught_at", "metrics", "seconds", "evaluation")
    with _PROFILE_LOCK:
        data = read_profile(profile)
        data.setdefault("tasks", {})[task] = {k: record[k] for k in keep if k in record}
        write_json(Path(profile) / PROFILE_FILE, data)


def taught_tasks(profile: Path) -> dict[str, dict]:
    """task -> its summary in ``profile.json``, for the tasks whose models are on disk."""
    tasks = read_profile(profile).get("tasks", {})
    return {t: v for t, v in tasks.items() if (profile_task_dir(profile, t) / "model" / "model.keras").exists()}


def list_profiles(root: Path) -> list[ProfileSummary]:
    """Every profile: its taught characters per task and its sheet-trained engines."""
    out = []
    for folder in sorted(p for p in Path(root).glob("*") if p.is_dir() and NAME.fullmatch(p.name)):
        item: ProfileSummary = {"name": folder.name, "tasks": {}}
        for task, info in taught_tasks(folder).items():
            item["tasks"][task] = {
                "labels": info.get("labels", []),
                "version": info.get("version"),
                "promoted": info.get("promoted"),
            }
        sheet = sheet_models(folder)
        if sheet is not None:
            item["sheet"] = sheet
        if item["tasks"] or "sheet" in item:
            out.append(item)
    return out


def delete_profile(root: Path, name: str) -> None:
    """Remove every file of the profile (renamed aside first, so no reader finds half of it)."""
    folder = existing_profile(root, name)
    trash = folder.parent / f".{folder.name}.{secrets.token_hex(8)}.deleted"
    folder.rename(trash)
    shutil.rmtree(trash)


_BASE: dict[Path, tuple] = {}


def base_data(task: str, weights_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(replay_x, replay_y, guard_x, guard_y) of ``task`` from ``<weights>/personal-base/<task>.npz``
    (made by ``python -m training.personal_data``), loaded once per process."""
    path = Path(weights_dir) / BASE_DATA_DIR / f"{task}.npz"
    if path not in _BASE:
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: run `python -m training.personal_data --data-dir ../shared/data`."
            )
        d = np.load(path)
        _BASE[path] = (d["replay_x"], d["replay_y"].astype(np.int64), d["guard_x"], d["guard_y"].astype(np.int64))
    return _BASE[path]
