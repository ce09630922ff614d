"""Shared fixtures: the app and its client, real images, PostgreSQL, the fake Google, a tiny line model,
and the staged data when present (the helpers they and the tests use are in tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.fake_google import start_fake_google  # noqa: E402
from tests.helpers import RESOURCES, make_app, png_bytes, tiny_line_weights  # noqa: E402
from tests.postgres import start_postgres  # noqa: E402

ENGINES = ["sqlite", "postgresql"]  # the feedback store's engines; store tests run on both


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server the suite starts itself (tests/postgres.py); skipped with the reason
    where PostgreSQL is not installed, except under CI, where that is a failure."""
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


@pytest.fixture
def google():
    """A fake Google (token endpoint and Sheets API) on 127.0.0.1 (tests/fake_google.py)."""
    server = start_fake_google()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def line_weights(tmp_path_factory):
    """A weights folder holding a tiny CRNN saved like the shipped line model: it exercises loading,
    splitting, decoding and the API shape (it is untrained, so no test judges what it reads)."""
    root = tmp_path_factory.mktemp("weights")
    tiny_line_weights(root)
    return root


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


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    """A 12 KB PNG that decodes to 100 million pixels."""
    return png_bytes(Image.new("1", (10_000, 10_000)))
