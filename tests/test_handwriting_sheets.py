"""Your own handwriting sheet: check it (rows labelled 0-9, mistakes named by row), train the
personal HOG and CNN models from it, and read a page with them; training needs the admin token."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from tests.helpers import ONE_PNG, RESOURCES, make_app, png_bytes, stop_workers, wait_for_job
from training.data.pages import compose_page, compose_sheet, glyph_sources

TOKEN = "sheet-token"


@pytest.fixture(scope="module")
def sources():
    return glyph_sources(RESOURCES / "mnist_test_first500.npz", RESOURCES / "photo_digits")


def sheet_png(sources, seed: int = 3, **kwargs) -> bytes:
    return png_bytes(compose_sheet(sources, np.random.default_rng(seed), **kwargs))


def check(client, data: bytes):
    resp = client.post("/sheet/check", data={"file": (io.BytesIO(data), "sheet.png")})
    return resp.status_code, resp.get_json()


@pytest.fixture
def sheet_app(tmp_path):
    yield make_app(tmp_path, PERSONAL_DIR=str(tmp_path / "personal"), ADMIN_TOKEN=TOKEN)
    stop_workers(tmp_path / "personal")


@dataclass
class Trained:
    """A sheet of 7 digits a row checked, then trained into profile "alice" through the API."""

    client: Any
    checked: tuple[int, dict]  # the status and answer of /sheet/check
    denied: Any  # the answer to /sheet/train without the token
    queued: Any  # the answer to /sheet/train with it
    job: dict  # the finished training job's state


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sources):
    """The sheet checked and trained once, for the tests that only read what it made."""
    tmp = tmp_path_factory.mktemp("sheet")
    app = make_app(tmp, PERSONAL_DIR=str(tmp / "personal"), ADMIN_TOKEN=TOKEN)
    client = app.test_client()
    status, body = check(client, sheet_png(sources, per_row=7))
    assert status == 200, body
    denied = client.post("/sheet/train", json={"sheet_id": body["sheet_id"], "name": "alice"})
    queued = client.post(
        "/sheet/train",
        json={"sheet_id": body["sheet_id"], "name": "alice"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert queued.status_code == 202, queued.get_json()
    yield Trained(client, (status, body), denied, queued, wait_for_job(client, queued.get_json()["status_url"]))
    stop_workers(tmp / "personal")


def test_a_sheet_is_checked_row_by_row(trained):
    status, body = trained.checked
    assert status == 200, body
    assert [r["label"] for r in body["rows"]] == list("0123456789")
    assert all(r["count"] == 7 for r in body["rows"]) and body["glyphs"] == 70
    assert body["annotated_png"].startswith("data:image/png")


def test_training_a_sheet_needs_the_token(trained):
    assert trained.denied.status_code == 403


def test_a_sheet_is_trained_in_a_worker_into_a_new_profile(trained):
    resp = trained.queued
    assert resp.status_code == 202, resp.get_json()  # queued: the training runs in a worker process
    assert resp.get_json()["profile_token"]  # the sheet made profile "alice": one concept with taught profiles
    job = trained.job
    assert job["state"] == "done" and job["kind"] == "sheet", job.get("error")


def test_the_personal_models_read_held_out_glyphs_of_the_sheet(trained):
    acc = trained.job["result"]["metrics"]["held_out_accuracy"]
    assert acc["personal cnn"] >= 0.8 and acc["personal hog"] >= 0.6


def test_the_sheet_profile_is_listed_with_its_engines(trained):
    client = trained.client
    assert client.get("/sheet/models").get_json()[0]["name"] == "alice"
    listed = client.get("/personal/profiles").get_json()["profiles"]
    assert listed[0]["name"] == "alice" and listed[0]["sheet"]["engines"] == ["cnn", "hog"]


def test_the_sheet_profile_reads_a_single_glyph(trained):
    glyph = ONE_PNG
    form = {"file": (io.BytesIO(glyph), "g.png"), "task": "digit", "profile": "alice"}
    single = trained.client.post("/upload", data=form)
    assert single.status_code == 200, single.get_json()
    assert single.get_json()["model"]["name"] == "alice-cnn"
    assert single.get_json()["writer"]["label"] in ("yours", "standard", "other")


def test_the_sheet_profile_reads_a_page_with_either_engine(trained, sources):
    page, truth = compose_page(sources, np.random.default_rng(5), "lines", 1200, 1300)
    for engine in ("cnn", "hog"):
        form = {"file": (io.BytesIO(png_bytes(page)), "p.png"), "task": "page", "engine": engine, "personal": "alice"}
        result = trained.client.post("/upload", data=form).get_json()
        assert result["model"]["name"] == f"alice-{engine}"
        right = sum(a == b for a, b in zip(result["text"], truth["text"], strict=False))
        assert right / len(truth["text"]) > 0.5  # reads, in reading order (exact figures: README)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"order": "012345678"}, "Found 9 rows"),
        ({"per_row": [6, 6, 6, 2, 6, 6, 6, 6, 6, 6]}, "row 4 (the 3s) has 2"),
        ({"order": "0123546789"}, "Row 5 should hold 4s but reads mostly as 5"),
    ],
    ids=["missing-row", "short-row", "rows-swapped"],
)
def test_sheet_mistakes_are_named_not_mislabelled(sheet_app, sources, kwargs, words):
    status, body = check(sheet_app.test_client(), sheet_png(sources, **({"per_row": 6} | kwargs)))
    assert status == 422 and body["error"]["code"] == "bad_sheet"
    assert words in body["error"]["message"]


def test_training_an_unknown_sheet_is_refused(sheet_app):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    resp = sheet_app.test_client().post("/sheet/train", json={"sheet_id": "0" * 32, "name": "bob"}, headers=auth)
    assert resp.status_code == 422 and "not known" in resp.get_json()["error"]["message"]


def test_a_profile_name_that_is_a_path_is_refused(sheet_app):
    form = {"file": (io.BytesIO(b"x"), "p.png"), "task": "page", "personal": "../etc"}
    resp = sheet_app.test_client().post("/upload", data=form)
    assert resp.status_code == 400 and "Name the profile" in resp.get_json()["error"]["message"]
    assert resp.get_json()["error"]["code"] == "bad_profile"
