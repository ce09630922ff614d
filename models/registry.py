"""Which models exist and which version of each is served, caching what ``models.loading`` loads.

Loading and checking a weights folder (its ``meta.json``, its export) is ``models.loading``'s work:
a model whose metadata does not match this code is refused there, with a message naming the command
to run. The registry loads each model once, keeps it, swaps in the version retraining made active
(``models.versions``) and remembers a folder that failed, so a broken model is not reloaded per request.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from models import versions
from models.decoding.charlm import LineLM
from models.errors import WeightsError
from models.loading import (
    KERAS_FILE,
    HogRecognizer,
    Recognizer,
    load_hog,
    load_line_filter,
    load_line_lm,
    load_line_model,
    load_recognizer,
)

log = logging.getLogger(__name__)


WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


TASK_WEIGHTS = {"digit": "digit", "character": "character"}  # task -> weights folder

Loaded = TypeVar("Loaded")  # whatever a loader returns: a model, or None when none is installed


class Registry:
    """Keeps each task's model, loaded (``models.loading``) once per process on first use, safely
    under concurrent requests.

    With a ``versions_dir`` it serves the version retraining made active (``models.versions``) and
    checks about once a second whether that changed: the new model is loaded while the old one
    keeps answering, then swapped in, so a promotion or rollback loses no request.
    """

    CHECK_SECONDS = 1.0

    def __init__(self, weights_dir: Path | str = WEIGHTS_DIR, versions_dir: Path | str | None = None):
        self.weights_dir = Path(weights_dir)
        self.versions_dir = Path(versions_dir) if versions_dir else None
        self._models: dict[str, Recognizer] = {}
        self._failures: dict[tuple[str, Path], WeightsError] = {}  # a broken model is not reloaded per request
        self._checked: dict[str, float] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._personal_stamps: dict[str, int] = {}
        self._tasks: tuple[float, list[str]] | None = None  # (when, tasks) of the last look
        self._present: dict[Path, tuple[float, bool]] = {}  # file -> (when, whether it was there)
        self._lock = threading.Lock()  # guards the dicts only, never held while a model loads

    def source(self, task: str) -> Path:
        """The folder ``task``'s model is served from now."""
        return versions.active_dir(self.versions_dir, self.weights_dir / TASK_WEIGHTS[task], task)

    def tasks(self) -> list[str]:
        """Tasks whose weights are present (looked up again at most once a ``CHECK_SECONDS``: every
        request asks, and the answer changes only when weights are installed or promoted)."""
        now = time.monotonic()
        cached = self._tasks
        if cached is None or now - cached[0] >= self.CHECK_SECONDS:
            cached = self._tasks = (now, [t for t in TASK_WEIGHTS if (self.source(t) / KERAS_FILE).exists()])
        return list(cached[1])

    def _loader_lock(self, key: str) -> threading.Lock:
        """One lock per model being loaded: loading one model never blocks the others (or /healthz)."""
        with self._lock:
            return self._loading.setdefault(key, threading.Lock())

    def _once(self, key: str, load: Callable[[], Loaded]) -> Loaded:
        """The model cached as ``key``, made by ``load()`` on first use under ``key``'s lock. A None
        (nothing installed) is cached as well; a ``load`` that raises caches nothing, so it runs again."""
        with self._loader_lock(key):
            if key not in self._models:
                model = load()
                with self._lock:
                    self._models[key] = model
            return self._models[key]

    def get(self, task: str) -> Recognizer:
        """The recognizer for ``task``; raises ``KeyError`` for an unknown task."""
        if task not in TASK_WEIGHTS:
            raise KeyError(task)
        model = self._models.get(task)
        now = time.monotonic()
        if model is not None and (self.versions_dir is None or now - self._checked.get(task, 0) < self.CHECK_SECONDS):
            return model
        self._checked[task] = now
        want = self.source(task)
        if model is not None and model.path == want:
            return model
        with self._loader_lock(task):  # other threads keep answering with ``model`` meanwhile
            model = self._models.get(task)
            if model is not None and model.path == want:
                return model
            key = (task, want)
            if key in self._failures:
                if model is not None:
                    return model  # keep serving what works
                raise self._failures[key]
            try:
                fresh = load_recognizer(want, task)
            except WeightsError as exc:
                self._failures[key] = exc
                if model is not None:
                    log.error("kept %s model %s: the new one cannot be loaded: %s", task, model.version, exc)
                    return model
                raise
            if model is not None:
                log.info("now serving %s model version %s (was %s)", task, fresh.version, model.version)
            with self._lock:
                self._models[task] = fresh
            return fresh

    def hog(self, alphabet: str) -> HogRecognizer:
        """The classical HOG engine for ``alphabet`` (``models/weights/hog-<alphabet>``), loaded once."""
        key = f"hog-{alphabet}"
        return self._once(key, lambda: load_hog(self.weights_dir / key))

    MAX_PERSONAL = 32  # personal models kept loaded; the least recently loaded goes first

    def personal(self, folder: Path, engine: str) -> Recognizer | HogRecognizer:
        """A personal model in ``folder/engine``: a sheet's ``cnn`` or ``hog`` (``models.handwriting_sheets``) or a
        taught profile's ``model`` or ``writer`` (``models.reading.personal``), reloaded when retrained."""
        path = Path(folder) / engine
        meta = path / "meta.json"
        if not meta.exists():
            raise WeightsError(f"There is no personal {engine} model in {Path(folder).name!r}.")
        key = f"personal:{path.resolve()}"  # one cached model per folder: a retrain replaces it
        stamp = meta.stat().st_mtime_ns
        with self._loader_lock(key):
            cached = self._personal_stamps.get(key)
            if cached != stamp or key not in self._models:
                model = (
                    load_hog(path) if engine == "hog" else load_recognizer(path, "digit" if engine == "cnn" else None)
                )
                with self._lock:
                    self._models.pop(key, None)
                    self._models[key] = model
                    self._personal_stamps[key] = stamp
                    personal = [k for k in self._models if k.startswith("personal:")]
                    for old in personal[: max(0, len(personal) - self.MAX_PERSONAL)]:
                        self._models.pop(old, None)
                        self._personal_stamps.pop(old, None)
            return self._models[key]

    def forget(self, folder: Path) -> None:
        """Drop the cached personal models under ``folder`` (a deleted profile)."""
        prefix = f"personal:{Path(folder).resolve()}"
        with self._lock:
            for key in [k for k in self._models if k.startswith(prefix + os.sep)]:
                self._models.pop(key, None)
                self._personal_stamps.pop(key, None)

    def line(self):
        """The handwritten-line model (``models/weights/line``), loaded once."""
        return self._once("line", lambda: load_line_model(self.weights_dir / "line"))

    def glyph_gate(self) -> Recognizer | None:
        """The glyph gate ("one character, or not": ``models/weights/glyph-gate``) or None when none
        is installed, loaded once."""
        path = self.weights_dir / "glyph-gate"
        return self._once("glyph-gate", lambda: load_recognizer(path) if (path / "model.keras").exists() else None)

    def line_filter(self):
        """The handwriting filter of line answers (``models/weights/line-filter``) or None when none
        is installed, loaded once."""
        return self._once("line-filter", lambda: load_line_filter(self.weights_dir / "line-filter"))

    def line_lm(self) -> LineLM | None:
        """The language model of the line decoder (``models/weights/line-lm``) or None when none is
        installed, loaded once."""
        return self._once("line-lm", lambda: load_line_lm(self.weights_dir / "line-lm"))

    def _installed(self, path: Path) -> bool:
        """Whether ``path`` exists, looked up again at most once a ``CHECK_SECONDS`` (as ``tasks``)."""
        now = time.monotonic()
        cached = self._present.get(path)
        if cached is None or now - cached[0] >= self.CHECK_SECONDS:
            cached = self._present[path] = (now, path.exists())
        return cached[1]

    def has_line(self) -> bool:
        """Whether a line model is installed."""
        return self._installed(self.weights_dir / "line" / "model.keras")

    def has_hog(self, alphabet: str) -> bool:
        """Whether a HOG engine for ``alphabet`` is installed."""
        return self._installed(self.weights_dir / f"hog-{alphabet}" / "model.joblib")

    def loaded(self) -> dict[str, str]:
        """name -> version of the models loaded so far."""
        with self._lock:
            return {t: m.version for t, m in self._models.items() if m is not None}


_REGISTRIES: dict[tuple[Path, Path | None], Registry] = {}


_REGISTRIES_LOCK = threading.Lock()


def shared_registry(weights_dir: Path | str = WEIGHTS_DIR, versions_dir: Path | str | None = None) -> Registry:
    """One registry per weights (and versions) folder per process, so apps in a process share models."""
    key = (Path(weights_dir).resolve(), Path(versions_dir).resolve() if versions_dir else None)
    with _REGISTRIES_LOCK:
        return _REGISTRIES.setdefault(key, Registry(*key))
