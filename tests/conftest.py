"""Shared fixtures: the app and its client, real images, and the staged data when present."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from app import create_app  # noqa: E402

RESOURCES = Path(__file__).resolve().parent / "resources"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_app(tmp_path: Path, **config):
    """An app for tests: its feedback database in ``tmp_path``, no background sync, no rate limits
    (tests that read hundreds of images would hit them; tests/test_limits.py turns them on, and the
    real servers of test_server.py and test_gunicorn.py run with the defaults), ``config`` on top."""
    base = {"TESTING": True, "FEEDBACK_DB": str(tmp_path / "feedback.sqlite3"), "DATABASE_URL": None,
            "FEEDBACK_SYNC_BACKGROUND": False, "RATELIMIT_ENABLED": False}  # fmt: skip
    return create_app(base | config)


ENGINES = ["sqlite", "postgresql"]  # the feedback store's engines; store tests run on both


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server the suite starts itself (tests/postgres.py); skipped with the reason
    where PostgreSQL is not installed, except under CI, where that is a failure."""
    from tests.postgres import start_postgres

    try:
        server = start_postgres()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(f"no PostgreSQL server for the store tests: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres):
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    url = postgres.create_database()
    yield url
    postgres.drop_database(url)


@pytest.fixture(params=ENGINES)
def store_target(request, tmp_path) -> str:
    """Where a fresh feedback store lives: a SQLite file, or a new PostgreSQL database's URL."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "feedback.sqlite3")


def app_on(tmp_path: Path, target: str, **config):
    """``make_app`` with its feedback store at ``target`` (a SQLite file or a postgresql:// URL)."""
    from feedback.store import is_database_url

    where = {"DATABASE_URL": target} if is_database_url(target) else {"FEEDBACK_DB": target}
    return make_app(tmp_path, **where, **config)


@pytest.fixture
def app(tmp_path):
    """A fresh app with a fresh feedback database in a temporary directory."""
    return make_app(tmp_path)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """The first 500 official MNIST test digits (white on black), shipped in tests/resources."""
    d = np.load(RESOURCES / "mnist_test_first500.npz")
    return d["x"], d["y"]


@pytest.fixture(scope="session")
def photo_digits() -> list[tuple[Path, str]]:
    """Real photographed pen-on-paper digits (PNG files) with their labels, from the file names."""
    files = sorted((RESOURCES / "photo_digits").glob("*.png"))
    return [(f, f.name.split("_")[1]) for f in files]


def png_bytes(img: Image.Image | np.ndarray, fmt: str = "PNG", **save) -> bytes:
    """Encode an image (PIL or uint8 array) to file bytes."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


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


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    """A 12 KB PNG that decodes to 100 million pixels."""
    return png_bytes(Image.new("1", (10_000, 10_000)))
