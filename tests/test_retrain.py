"""The whole feedback loop on a small scale: a writer whose 7s the digit model misreads gives
feedback in the app, ``training.retrain`` fine-tunes and promotes only a better model, the running
app serves it without a restart, and rollback brings the old one back. Admin routes need the token."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.feedback_loop import slanted_sevens
from models import versions
from models.registry import Registry
from tests.helpers import SEVEN_PNG, data_url, make_app, png_bytes, retrain_argv
from training import retrain
from training.retrain import feedback_glyphs, read_feedback

TOKEN = "s3cret-admin-token"


def writer_sevens(n: int, seed: int) -> list[bytes]:
    """The writer's 7s lie far over to the left; the shipped model reads most of them as 1."""
    return slanted_sevens(n, seed)


def read(client, png: bytes) -> dict:
    return client.post("/submit", json={"image": data_url(png), "task": "digit"}).get_json()


@pytest.fixture
def loop_app(tmp_path, monkeypatch):
    monkeypatch.setattr(Registry, "CHECK_SECONDS", 0.0)  # notice a promotion on the next request
    return make_app(tmp_path, MODELS_DIR=str(tmp_path / "models"), ADMIN_TOKEN=TOKEN)


@dataclass
class Loop:
    """One turn of the feedback loop through the app, with what each step answered: the writer's 7s
    read by the shipped model and corrected, ``training.retrain`` run, new 7s read by the promoted
    version, a rollback through the admin route and the retrained version brought back by the CLI."""

    before: list[dict]  # the shipped model's answers to 40 of the writer's 7s
    acks: list[int]  # the status of the feedback given on each of them
    fresh_before: int  # how many of 20 more 7s (never given as feedback) the shipped model read as 7
    printed: str  # what training.retrain printed
    meta: dict  # the retrained version's meta.json
    after: list[dict]  # the answers to those 20 fresh 7s once the retrained version was promoted
    mnist: dict  # the answer to MNIST's first test digit after the promotion
    rollback: Any  # the answer to the admin rollback, with the token
    after_rollback: dict  # a 7 read after the rollback
    after_cli: dict  # a 7 read after ``training.retrain --rollback --to 2``
    listed: list[dict]  # GET /admin/models' digit versions at the end


@pytest.fixture(scope="module")
def loop(tmp_path_factory, mnist_sample) -> Loop:
    """The loop run once for the tests that read what its steps answered (none of them runs more)."""
    tmp_path = tmp_path_factory.mktemp("loop")
    x, y = mnist_sample
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Registry, "CHECK_SECONDS", 0.0)  # notice a promotion on the next request
        app = make_app(tmp_path, MODELS_DIR=str(tmp_path / "models"), ADMIN_TOKEN=TOKEN)
        client = app.test_client()
        before = [read(client, png) for png in writer_sevens(40, seed=1)]
        fresh = writer_sevens(20, seed=7)  # more 7s by the same writer, never given as feedback
        fresh_before = sum(read(client, png)["candidates"][0]["label"] == "7" for png in fresh)
        acks = []
        for b in before:
            right = b["candidates"][0]["label"] == "7"
            ack = client.post("/feedback", json={"prediction_id": b["prediction_id"], "correct": right, "label": "7"})
            acks.append(ack.status_code)

        np.savez(tmp_path / "replay.npz", x=x[:300], y=y[:300])
        np.savez(tmp_path / "test.npz", x=x[300:], y=y[300:])
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            retrain.main(retrain_argv(app, tmp_path, 300, 3, "--interpolate", "1"))
        meta = json.loads((tmp_path / "models" / "digit" / "v2" / "meta.json").read_text())
        after = [read(client, png) for png in fresh]
        mnist = read(client, png_bytes(x[0]))

        rollback = client.post("/admin/models/digit/rollback", headers={"Authorization": f"Bearer {TOKEN}"})
        after_rollback = read(client, writer_sevens(1, seed=9)[0])
        retrain.main(["--task", "digit", "--models-dir", str(tmp_path / "models"), "--rollback", "--to", "2"])
        after_cli = read(client, writer_sevens(1, seed=9)[0])
        listed = client.get("/admin/models", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()["digit"]
    return Loop(
        before, acks, fresh_before, printed.getvalue(), meta, after, mnist, rollback, after_rollback, after_cli, listed
    )


def test_the_shipped_model_misreads_most_of_the_writers_sevens(loop):
    assert sum(b["candidates"][0]["label"] == "7" for b in loop.before) <= 16


def test_feedback_on_each_answer_is_saved(loop):
    for status in loop.acks:
        assert status == 200


def test_retraining_promotes_a_better_candidate_as_the_next_version(loop):
    assert "promoted: now served" in loop.printed, loop.printed
    record = loop.meta["retraining"]
    assert record["parent"] == "1" and record["promoted"] is True and loop.meta["version"] == "2"


def test_the_promotion_is_judged_on_the_test_split_and_held_out_feedback(loop):
    record = loop.meta["retraining"]
    test, held = record["metrics"]["test_split"], record["metrics"]["feedback_holdout"]
    assert test["candidate"] >= test["current"]  # MNIST test accuracy did not drop
    assert held["candidate"] >= 0.9 and held["current"] <= 0.8  # the hold-out split follows random ids
    assert record["data"]["feedback_train"] + record["data"]["feedback_holdout"] == 40


def test_the_running_app_serves_the_promoted_version_without_a_restart(loop):
    """It reads new 7s by the same writer."""
    assert {a["model"]["version"] for a in loop.after} == {"2"}
    fresh_after = sum(a["candidates"][0]["label"] == "7" for a in loop.after)  # top answer (some "not sure")
    assert fresh_after >= 14 and fresh_after >= loop.fresh_before + 8, (loop.fresh_before, fresh_after)


def test_the_promoted_version_still_reads_mnist(loop, mnist_sample):
    assert loop.mnist["text"] == str(mnist_sample[1][0])


def test_rolling_back_serves_the_shipped_version_again(loop):
    assert loop.rollback.status_code == 200 and loop.rollback.get_json()["active"] == "shipped"
    assert loop.after_rollback["model"]["version"] == "1"


def test_the_command_line_brings_the_retrained_version_back(loop):
    assert loop.after_cli["model"]["version"] == "2"
    assert [(v["name"], v["active"]) for v in loop.listed] == [("shipped", False), ("v2", True)]


def test_rolling_back_needs_the_right_token(loop_app):
    """With a token configured, a rollback without it or with another one is refused."""
    client = loop_app.test_client()
    assert client.post("/admin/models/digit/rollback").status_code == 403
    wrong = client.post("/admin/models/digit/rollback", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "forbidden"


def test_a_candidate_that_is_not_better_is_kept_but_not_promoted(loop_app, tmp_path, mnist_sample, capsys):
    """Feedback that only confirms right answers cannot make the model better on it: no promotion."""
    client = loop_app.test_client()
    x, y = mnist_sample
    for a in x[:20]:
        body = read(client, png_bytes(a))
        client.post("/feedback", json={"prediction_id": body["prediction_id"], "correct": True})
    np.savez(tmp_path / "replay.npz", x=x[300:400], y=y[300:400])
    np.savez(tmp_path / "test.npz", x=x[400:], y=y[400:])
    retrain.main(retrain_argv(loop_app, tmp_path, 100, 1))
    assert "kept, not promoted" in capsys.readouterr().out
    assert (tmp_path / "models" / "digit" / "v2" / "model.keras").exists()
    assert read(client, png_bytes(x[0]))["model"]["version"] == "1"
    with pytest.raises(SystemExit, match="shipped one"):
        retrain.main(["--task", "digit", "--models-dir", str(tmp_path / "models"), "--rollback"])


def test_admin_routes_need_the_token(tmp_path):
    open_app = make_app(tmp_path)  # no token configured: admin is off
    client = open_app.test_client()
    for method, path in [
        ("get", "/admin/feedback/export"),
        ("post", "/admin/feedback/sync"),
        ("get", "/admin/models"),
        ("post", "/admin/models/digit/rollback"),
    ]:
        resp = getattr(client, method)(path, headers={"Authorization": "Bearer "})
        assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"
    app = make_app(tmp_path, ADMIN_TOKEN=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    client = app.test_client()
    body = read(client, SEVEN_PNG)
    assert client.post("/feedback", json={"prediction_id": body["prediction_id"], "correct": True}).status_code == 200
    csv_resp = client.get("/admin/feedback/export?format=csv", headers=auth)
    assert csv_resp.status_code == 200 and body["prediction_id"] in csv_resp.get_data(as_text=True)
    zip_resp = client.get("/admin/feedback/export?format=zip", headers=auth)
    assert zip_resp.status_code == 200 and zip_resp.data[:2] == b"PK"
    assert client.post("/admin/feedback/sync", headers=auth).get_json()["error"]["code"] == "sheets_not_configured"
    assert client.get("/admin/feedback/export?format=xml", headers=auth).status_code == 400
    assert client.get("/admin/models", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200
    not_an_object = client.post("/admin/models/digit/rollback", json=[1], headers=auth)
    assert not_an_object.status_code == 400 and not_an_object.get_json()["error"]["code"] == "bad_request"
    to_shipped = client.post("/admin/models/digit/rollback", json={"to": 1}, headers=auth)
    assert to_shipped.status_code == 200 and to_shipped.get_json()["active"] == "shipped"
    assert client.post("/sheet/train", json="x", headers=auth).status_code == 400


def test_swapping_versions_under_load_loses_no_request(loop_app, tmp_path):
    """Requests keep flowing while the served version flips back and forth: every one is answered."""
    shipped = loop_app.extensions["registry"].weights_dir / "digit"
    v2 = tmp_path / "models" / "digit" / "v2"
    shutil.copytree(shipped, v2)
    meta = json.loads((v2 / "meta.json").read_text())
    (v2 / "meta.json").write_text(json.dumps(meta | {"version": "2"}))
    image = SEVEN_PNG
    answers, stop = [], threading.Event()

    def reader():
        client = loop_app.test_client()
        while not stop.is_set():
            resp = client.post("/submit", json={"image": data_url(image)})
            answers.append((resp.status_code, resp.get_json().get("model", {}).get("version")))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for name in ["v2", versions.SHIPPED, "v2", versions.SHIPPED]:
            versions.set_active(tmp_path / "models", "digit", name)
            seen, deadline = len(answers), time.time() + 120
            while len(answers) < seen + 8 and time.time() < deadline:
                time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert answers and {status for status, _ in answers} == {200}
    assert {version for _, version in answers} == {"1", "2"}


def test_retraining_reads_an_exported_zip(loop_app, tmp_path):
    """``--feedback feedback.zip`` (the export) gives retraining the same rows as the store."""
    client = loop_app.test_client()
    for png in writer_sevens(3, seed=2):
        body = read(client, png)
        right = body["candidates"][0]["label"] == "7"
        client.post("/feedback", json={"prediction_id": body["prediction_id"], "correct": right, "label": "7"})
    out = tmp_path / "fb.zip"
    assert (
        loop_app.test_cli_runner()
        .invoke(args=["feedback", "export", "--format", "zip", "--output", str(out)])
        .exit_code
        == 0
    )
    from_zip = read_feedback(out, "digit")
    from_db = read_feedback(Path(loop_app.config["FEEDBACK_DB"]), "digit")
    assert [r.prediction_id for r in from_zip] == [r.prediction_id for r in from_db] and len(from_zip) == 3
    labels = list("0123456789")
    np.testing.assert_array_equal(feedback_glyphs(from_zip, labels)[0], feedback_glyphs(from_db, labels)[0])
