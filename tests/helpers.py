"""Helpers shared by tests (conftest.py holds only fixtures): the test app, where the fixtures and the
staged data are, real images, canvas drawings and lines of handwriting, requests made the way a user
makes them, real servers started as a user would (with ``bench.server``, which the benchmarks use
too), and reading the feedback database the way another process would."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from app import create_app  # noqa: E402
from bench.canvas import image_bytes as png_bytes  # noqa: E402 (a PIL picture or uint8 array as file bytes)
from bench.server import COMMANDS, spawn  # noqa: E402
from feedback.store import is_database_url  # noqa: E402
from models.preprocessing import LINE_HEIGHT, LINE_PREPROCESSING_VERSION  # noqa: E402
from models.preprocessing.line import affine  # noqa: E402
from models.registry import WEIGHTS_DIR  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = Path(__file__).resolve().parent / "resources"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_app(tmp_path: Path, **config):
    """An app for tests: its feedback database in ``tmp_path``, no background sync, no rate limits
    (tests that read hundreds of images would hit them; tests/test_limits.py turns them on, and the
    real servers of test_server.py and test_gunicorn.py run with the defaults), ``config`` on top."""
    base = {
        "TESTING": True,
        "FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"),
        "DATABASE_URL": None,
        "FEEDBACK_SYNC_BACKGROUND": False,
        "RATELIMIT_ENABLED": False,
    }
    return create_app(base | config)


def app_on(tmp_path: Path, target: str, **config):
    """``make_app`` with its feedback store at ``target`` (a SQLite file or a postgresql:// URL)."""
    where = {"DATABASE_URL": target} if is_database_url(target) else {"FEEDBACK_DB": target}
    return make_app(tmp_path, **where, **config)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def canvas_digit(strokes: list[list[tuple[float, float]]], width: int = 18, size: int = 280) -> Image.Image:
    """A canvas-like drawing: black round-capped strokes on white, coordinates in 0..1."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        pts = [(x * size, y * size) for x, y in stroke]
        draw.line(pts, fill="black", width=width, joint="curve")
        for x, y in (pts[0], pts[-1]):
            r = width / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill="black")
    return img


SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]
ONE = [[(0.5, 0.15), (0.5, 0.85)]]
SEVEN_PNG = png_bytes(canvas_digit(SEVEN))  # a drawn 7 as PNG bytes
SEVEN_URL = data_url(SEVEN_PNG)  # a drawn 7 as the canvas sends it
ONE_PNG = png_bytes(canvas_digit(ONE))  # a drawn 1 as PNG bytes
ONE_URL = data_url(ONE_PNG)  # a drawn 1 as the canvas sends it


def upload(client, data: bytes, task: str = "digit", name: str = "digit.png"):
    """``POST /upload`` of ``data`` as the file ``name`` with ``task``."""
    return client.post("/upload", data={"file": (io.BytesIO(data), name), "task": task})


def give(client, correct: bool = True, label: str | None = None) -> dict:
    """A drawn 7 answered through the API and feedback on it (``correct``, ``label``); the feedback's
    acknowledgement (its ``feedback_id`` and ``prediction_id``, ...)."""
    pid = client.post("/submit", json={"image": SEVEN_URL}).get_json()["prediction_id"]
    ack = client.post("/feedback", json={"prediction_id": pid, "correct": correct, "label": label})
    assert ack.status_code == 200
    return ack.get_json()


def handwriting(shear: float = 0.0, dark_on_light: bool = True) -> np.ndarray:
    """A line of strokes (loops and verticals, like cursive), optionally slanted."""
    img = Image.new("L", (900, 160), 255 if dark_on_light else 0)
    draw = ImageDraw.Draw(img)
    ink = 0 if dark_on_light else 255
    for k in range(14):
        x = 40 + 60 * k
        draw.line([(x, 120), (x, 40)], fill=ink, width=6)
        draw.ellipse((x + 8, 70, x + 44, 120), outline=ink, width=6)
    gray = np.asarray(img, np.float32) / 255
    if shear:
        ink_map = 1 - gray if dark_on_light else gray
        sheared = affine(ink_map, shear=shear)
        gray = 1 - sheared if dark_on_light else sheared
    return np.clip(gray, 0, 1)


def photographed_paragraph(names: list[str], skew: float = 1.5, gap: int = 10) -> bytes:
    """Real test lines stacked into a paragraph (``gap`` pixels between their images; below zero,
    tails of one line reach into the next) on grey, unevenly lit paper, slightly rotated, with
    sensor noise, saved as a JPEG like a phone photo."""
    lines = [Image.open(RESOURCES / "lines" / name).convert("L") for name in names]
    width = max(im.width for im in lines) + 120
    page = Image.new("L", (width, sum(im.height + gap for im in lines) + 120), 255)
    y = 60
    for im in lines:
        page.paste(
            Image.fromarray(np.minimum(np.asarray(page.crop((60, y, 60 + im.width, y + im.height))), im)), (60, y)
        )
        y += im.height + gap
    page = page.rotate(skew, expand=True, fillcolor=255, resample=Image.Resampling.BILINEAR)
    gray = np.asarray(page, np.float32) / 255
    h, w = gray.shape
    light = 0.9 - 0.25 * np.linspace(0, 1, w)[None, :] - 0.1 * np.linspace(0, 1, h)[:, None]
    noisy = gray * light + np.random.default_rng(0).normal(0, 0.02, gray.shape)
    return png_bytes(np.clip(noisy * 255, 0, 255).astype(np.uint8), "JPEG", quality=85)


def write_idx(path: Path, arr: np.ndarray) -> None:
    """Write ``arr`` (uint8) in the IDX format MNIST and EMNIST are distributed in, gzipped."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def start_server(tmp_path: Path, command: list[str], seconds: float, **env: str) -> tuple[subprocess.Popen, int, dict]:
    """``command`` (a server of this app) on a free port with its store in ``tmp_path`` and ``env``
    added (``bench.server.spawn``); waits up to ``seconds`` for ``/healthz`` and returns (process,
    port, its answer). Its output goes to ``tmp_path/server-PORT.log``, shown when it does not start."""
    server = spawn(command, tmp_path, **env)
    return server.proc, server.port, json.loads(server.wait_ready("/healthz", seconds))


def post_json(
    url: str, body: dict, headers: dict | None = None, timeout: float = 60, raise_errors: bool = False
) -> tuple[int, Message, dict]:
    """``POST`` of ``body`` as JSON to a real server: (status, headers, JSON answer), error answers
    too; ``raise_errors``: an error answer raises its ``urllib.error.HTTPError`` instead, whatever
    its body (a burst that counts refusals)."""
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"} | (headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, json.load(resp)
    except urllib.error.HTTPError as exc:
        if raise_errors:
            raise
        return exc.code, exc.headers, json.load(exc)


def start_app_py(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int, dict]:
    """``python app.py`` (the README's first command), as ``start_server``."""
    return start_server(tmp_path, COMMANDS["waitress"], 180, **env)


def start_gunicorn(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, int, dict]:
    """The README's production command (gunicorn with gunicorn.conf.py), its metrics in
    ``tmp_path``, as ``start_server``."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")} | env
    return start_server(tmp_path, COMMANDS["gunicorn"], 300, **env)


def store_target_of(app) -> str:
    """Where the app's feedback store lives: its postgresql:// URL or its SQLite file."""
    return app.config.get("DATABASE_URL") or app.config["FEEDBACK_DB"]


def read_table(where, sql: str, args: tuple = ()) -> list[dict]:
    """Rows of ``sql`` (``?`` placeholders) from an app's store or a store target (file or URL),
    read on a connection of their own, as another process would see them: only what was committed."""
    target = where if isinstance(where, str) else store_target_of(where)
    if target.startswith(("postgresql://", "postgres://")):
        import psycopg  # only for a PostgreSQL store: runs without one never load the driver
        from psycopg.rows import dict_row

        with psycopg.connect(target, row_factory=dict_row) as conn:
            return [dict(r) for r in conn.execute(sql.replace("?", "%s"), args)]
    conn = sqlite3.connect(target)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def tiny_line_weights(root: Path, charset: str = " abcdefghijklmnopqrstuvwxyz") -> Path:
    """``root/line``: a tiny untrained CRNN saved as the shipped line model is, with a meta.json in
    the older key vocabulary (``charset``, ``input_height``, ``line_preprocessing_version``) that
    the loader still reads. It exercises loading, splitting, decoding and the answer's shape."""
    import keras  # TensorFlow: imported only when a test builds a model

    from models.architectures import build_crnn

    folder = root / "line"
    folder.mkdir(parents=True)
    keras.utils.set_random_seed(0)
    build_crnn(len(charset), width=4, lstm=8).save(folder / "model.keras")
    meta = {
        "name": "line",
        "version": "0",
        "charset": charset,
        "input_height": LINE_HEIGHT,
        "line_preprocessing_version": LINE_PREPROCESSING_VERSION,
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def retrain_argv(app, tmp_path: Path, replay: int, epochs: int, *extra: str) -> list[str]:
    """``training.retrain`` arguments for the digit task on ``app``'s feedback store, with the
    replay and test glyphs saved beforehand in ``tmp_path`` (replay.npz, test.npz)."""
    flags = {
        "--task": "digit",
        "--feedback": app.config["FEEDBACK_DB"],
        "--models-dir": str(tmp_path / "models"),
        "--replay-npz": str(tmp_path / "replay.npz"),
        "--test-npz": str(tmp_path / "test.npz"),
        "--replay": str(replay),
        "--epochs": str(epochs),
    }
    return [word for flag, value in flags.items() for word in (flag, value)] + list(extra)


JOB_TIMEOUT_S = 300  # a teach worker on a busy 2-core CI machine
# small but real teach settings, so a teach takes seconds in the suite (the served default: training.teach)
FAST_TEACH = {"variants": 40, "vae_epochs": 8, "writer_epochs": 2}


def wait_for_job(client, url: str) -> dict:
    """Poll a queued job (a teach, a sheet's training) until it is done or failed; its last state,
    with ``seen_steps``."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    seen_steps = set()
    while time.monotonic() < deadline:
        state = client.get(url).get_json()
        seen_steps.add(state["step"])
        assert 0.0 <= state["progress"] <= 1.0
        if state["state"] in ("done", "failed"):
            state["seen_steps"] = seen_steps
            return state
        time.sleep(0.5)
    raise AssertionError(f"teach job {url} did not finish in {JOB_TIMEOUT_S} s")


def stop_workers(personal: Path) -> None:
    """No teach worker outlives its test."""
    for pid_file in (personal / ".jobs").glob("*/pid"):
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError, PermissionError):
            pass


def copied_weights(tmp_path: Path, name: str = "digit") -> Path:
    """A copy of the shipped ``name`` weights folder, to spoil in a test."""
    dst = tmp_path / name
    shutil.copytree(WEIGHTS_DIR / name, dst)
    return dst


def edit_meta(folder: Path, change) -> None:
    """Rewrite ``folder/meta.json`` after ``change(meta)`` has edited the dict in place."""
    meta = json.loads((folder / "meta.json").read_text())
    change(meta)
    (folder / "meta.json").write_text(json.dumps(meta))
