"""Teaching a profile one sample: the augmentation, the VAE, a whole teach job through the API's
worker process, the CLI, profile tokens and deletion, and the bad-input answers."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from models.preprocessing import decode, to_gray
from models.profiles import WRITER_CLASSES
from models.reading.personal import writer_verdict
from models.registry import Registry
from tests.helpers import FAST_TEACH, canvas_digit, data_url, make_app, png_bytes, stop_workers, wait_for_job
from training.lib.one_sample import train_vae, vae_samples
from training.lib.writer_classifier import MIN_YOURS_THRESHOLD, writer_threshold

TWO = [[(0.3, 0.3), (0.45, 0.2), (0.62, 0.25), (0.65, 0.4), (0.5, 0.55), (0.3, 0.75), (0.7, 0.75)]]
SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]]


def drawn(strokes) -> bytes:
    return png_bytes(canvas_digit(strokes))


@pytest.fixture
def teach_app(tmp_path):
    app = make_app(
        tmp_path, PERSONAL_DIR=str(tmp_path / "personal"), TEACH_OPTIONS=FAST_TEACH, ADMIN_TOKEN="admin-secret"
    )
    yield app
    stop_workers(tmp_path / "personal")


def test_variants_are_many_distinct_readable_and_reproducible():
    from training.data.augment import one_sample_variants

    gray = to_gray(decode(drawn(TWO)))
    variants = one_sample_variants(gray, 100, seed=3)
    assert variants.shape == (100, 28, 28) and variants.dtype == np.uint8
    assert len({v.tobytes() for v in variants}) == 100  # every variant differs
    assert (variants.reshape(100, -1).max(axis=1) > 200).all()  # each keeps its ink
    # through the glyph path: the ink fits the 20 px box and is centred by mass, as MNIST
    ys, xs = np.nonzero(variants.sum(axis=0))
    assert ys.min() >= 1 and ys.max() <= 26 and xs.min() >= 1 and xs.max() <= 26
    assert np.array_equal(variants, one_sample_variants(gray, 100, seed=3))
    assert not np.array_equal(variants, one_sample_variants(gray, 100, seed=4))
    spread = variants.astype(float).std(axis=0).mean()
    assert spread > 20  # they really vary (rotation, scale, stroke, elastic)
    digit = Registry().get("digit")
    read = np.array(digit.labels)[digit.probabilities(variants).argmax(1)]
    assert (read == "2").mean() >= 0.9  # and they are still 2s


def test_the_vae_loss_falls_and_it_samples_new_glyphs_reproducibly():
    from training.data.augment import one_sample_variants

    gray = to_gray(decode(drawn(SEVEN)))
    variants = one_sample_variants(gray, 48, seed=1)
    encoder, decoder, history = train_vae(variants, epochs=10, seed=5)
    assert history[-1] < 0.6 * history[0]
    assert train_vae(variants, epochs=10, seed=5)[2] == history
    sample = variants[0]
    generated = vae_samples(encoder, decoder, sample, variants, 30, seed=1)
    assert generated.shape == (30, 28, 28) and generated.dtype == np.uint8
    assert len({g.tobytes() for g in generated}) == 30
    assert not any(np.array_equal(g, v) for g in generated for v in variants)  # new glyphs, not copies


@dataclass
class Taught:
    """One teach of a "2" into a new profile "alice", through the API and its worker."""

    app: Any
    client: Any
    answer: dict  # the 202 answer to the teach
    again: Any  # a second teach into alice without its token, sent while the first ran
    job: dict  # the finished job's state


def teach_alice(tmp: Path) -> Taught:
    app = make_app(tmp, PERSONAL_DIR=str(tmp / "personal"), TEACH_OPTIONS=FAST_TEACH, ADMIN_TOKEN="admin-secret")
    client = app.test_client()
    resp = client.post(
        "/personal/teach", json={"image": data_url(drawn(TWO)), "task": "digit", "label": "2", "profile": "alice"}
    )
    assert resp.status_code == 202
    again = client.post(
        "/personal/teach", json={"image": data_url(drawn(SEVEN)), "task": "digit", "label": "7", "profile": "alice"}
    )
    return Taught(app, client, resp.get_json(), again, wait_for_job(client, resp.get_json()["status_url"]))


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    """alice taught once for the tests that only read her (none of them changes her)."""
    tmp = tmp_path_factory.mktemp("taught")
    yield teach_alice(tmp)
    stop_workers(tmp / "personal")


@pytest.fixture
def deletable(tmp_path):
    """alice taught for a test of its own, which deletes her."""
    yield teach_alice(tmp_path)
    stop_workers(tmp_path / "personal")


def test_a_teach_is_queued_into_a_new_profile_with_its_token(taught):
    body = taught.answer
    assert body["profile"] == "alice" and len(body["job_id"]) == 32 and body["profile_token"]


def test_another_teach_into_a_profile_needs_its_token(taught):
    assert taught.again.status_code == 403 and taught.again.get_json()["error"]["code"] == "forbidden"


def test_the_teach_job_reports_its_steps_and_its_record(taught):
    job = taught.job
    assert job["state"] == "done", job.get("error")
    assert {"prepare", "done"} <= job["seen_steps"]
    result = job["result"]
    assert result["labels"] == ["2"] and result["version"] == 1
    assert result["metrics"]["guard"]["samples"] == 2000
    assert result["samples"]["variants"] == FAST_TEACH["variants"] and result["samples"]["vae"] > 0


def test_the_teach_pictures_are_served_as_png_and_can_be_downloaded(taught):
    pictures = taught.job["pictures"]["2"]
    assert set(pictures) == {"variants", "vae_samples", "reconstruction", "latent_map", "feature_maps"}
    for url in pictures.values():
        png = taught.client.get(url)
        assert png.status_code == 200 and png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
        assert Image.open(io.BytesIO(png.data)).size[0] > 100
    download = taught.client.get(pictures["latent_map"] + "?download=1")
    assert "attachment" in download.headers["Content-Disposition"]


def test_the_profile_is_listed_with_what_it_was_taught(taught):
    listed = taught.client.get("/personal/profiles").get_json()["profiles"]
    promoted = taught.job["result"]["promoted"]
    assert listed == [{"name": "alice", "tasks": {"digit": {"labels": ["2"], "version": 1, "promoted": promoted}}}]


@pytest.mark.parametrize("key", ["profile", "personal"])  # personal= is kept as the older name
def test_an_answer_with_the_profile_comes_from_its_model_with_the_writer_verdict(taught, key):
    answer = taught.client.post("/submit", json={"image": data_url(drawn(TWO)), "task": "digit", key: "alice"})
    assert answer.status_code == 200
    data = answer.get_json()
    assert data["model"] == {"name": "alice-digit", "version": "1", "profile": "alice"}
    assert data["writer"]["label"] in WRITER_CLASSES and 0 <= data["writer"]["probability"] <= 1
    assert 0 < data["writer"]["yours_threshold"] < 1  # calibrated at teach time on unseen base glyphs
    assert data["candidates"][0]["label"] == "2"


def test_an_upload_with_the_profile_carries_the_writer_verdict(taught):
    upload = taught.client.post(
        "/upload",
        data={"file": (io.BytesIO(drawn(TWO)), "two.png"), "task": "digit", "profile": "alice"},
        content_type="multipart/form-data",
    )
    assert upload.get_json()["writer"]["label"] in WRITER_CLASSES


def test_an_answer_without_a_profile_has_no_writer_verdict(taught):
    plain = taught.client.post("/submit", json={"image": data_url(drawn(TWO)), "task": "digit"}).get_json()
    assert "writer" not in plain and plain["model"]["name"] == "digit"


def test_a_task_the_profile_was_not_taught_is_refused(taught):
    body = {"image": data_url(drawn(TWO)), "task": "character", "profile": "alice"}
    lacking = taught.client.post("/submit", json=body)
    assert lacking.status_code == 400 and "no character model" in lacking.get_json()["error"]["message"]


def test_deleting_a_profile_needs_its_token_and_removes_every_file(deletable):
    client, token = deletable.client, deletable.answer["profile_token"]
    pictures = deletable.job["pictures"]["2"]
    assert client.delete("/personal/profiles/alice").status_code == 403
    assert client.delete("/personal/profiles/alice", headers={"X-Profile-Token": "wrong"}).status_code == 403
    gone = client.delete("/personal/profiles/alice", headers={"X-Profile-Token": token})
    assert gone.status_code == 200 and not (Path(deletable.app.config["PERSONAL_DIR"]) / "alice").exists()
    after = client.post("/submit", json={"image": data_url(drawn(TWO)), "task": "digit", "profile": "alice"})
    assert after.status_code == 404 and after.get_json()["error"]["code"] == "unknown_profile"
    assert client.get(pictures["variants"]).status_code == 404
    assert client.get("/personal/profiles").get_json() == {"profiles": []}


def test_bad_teach_requests_get_clear_errors(teach_app):
    client = teach_app.test_client()

    def teach(image: bytes, **fields):
        return client.post(
            "/personal/teach", json={"image": data_url(image), "task": "digit", "label": "2", "profile": "bob"} | fields
        )

    blank = teach(png_bytes(Image.new("RGB", (280, 280), "white")))
    assert blank.status_code == 422 and blank.get_json()["error"]["code"] == "blank_image"
    for label in ("x", "", "22", None):
        bad = teach(drawn(TWO), label=label)
        assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_label"
    for name in ("Bob", "bob smith", "", "a" * 41, "../x", "bob/x"):
        bad = teach(drawn(TWO), profile=name)
        assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_profile", name
    assert teach(drawn(TWO), task="line").status_code == 400
    assert client.post("/personal/teach", json={"task": "digit"}).status_code == 400
    assert client.post("/personal/teach", data="x", content_type="text/plain").status_code == 415
    assert client.get("/personal/jobs/" + "0" * 32).status_code == 404
    assert client.get("/personal/jobs/nope").status_code == 404
    assert client.delete("/personal/profiles/nobody").status_code == 404
    assert not any(Path(teach_app.config["PERSONAL_DIR"]).glob("bob*"))  # nothing was made of them


def test_a_teach_while_others_wait_is_refused_with_retry_after(tmp_path):
    app = make_app(tmp_path, PERSONAL_DIR=str(tmp_path / "personal"), TEACH_OPTIONS=FAST_TEACH, TEACH_MAX_WAITING=0)
    client = app.test_client()
    try:
        first = client.post("/personal/teach", json={"image": data_url(drawn(TWO)), "label": "2", "profile": "carol"})
        assert first.status_code == 202
        token = first.get_json()["profile_token"]
        seven = {"image": data_url(drawn(SEVEN)), "label": "7", "profile": "carol"}
        second = client.post("/personal/teach", json=seven, headers={"X-Profile-Token": token})
        assert second.status_code == 429 and second.get_json()["error"]["code"] == "busy"
        assert int(second.headers["Retry-After"]) >= 1
        # while it trains, everybody else is still answered
        read = client.post("/submit", json={"image": data_url(drawn(SEVEN)), "task": "digit"})
        assert read.status_code == 200 and read.get_json()["text"] == "7"
        assert wait_for_job(client, first.get_json()["status_url"])["state"] == "done"
        third = client.post("/personal/teach", json=seven, headers={"X-Profile-Token": token})
        assert third.status_code == 202  # the queue is free again
        assert wait_for_job(client, third.get_json()["status_url"])["result"]["labels"] == ["2", "7"]
    finally:
        stop_workers(tmp_path / "personal")


def test_cli_teaches_lists_reads_with_and_deletes_a_profile(teach_app, tmp_path):
    runner = teach_app.test_cli_runner()
    sample = tmp_path / "seven.png"
    sample.write_bytes(drawn(SEVEN))
    result = runner.invoke(
        args=["personal", "teach", "--task", "digit", "--label", "7", "--profile", "dave", str(sample)]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["state"] == "done" and out["profile"] == "dave" and out["profile_token"]
    assert out["result"]["labels"] == ["7"]
    assert "vae" in result.stderr and "writer" in result.stderr  # progress goes to stderr

    listed = runner.invoke(args=["personal", "list"])
    assert json.loads(listed.stdout.strip())["tasks"]["digit"]["labels"] == ["7"]

    read = runner.invoke(args=["recognize", "--task", "digit", "--profile", "dave", str(sample)])
    answer = json.loads(read.stdout.strip())
    assert answer["model"]["profile"] == "dave" and answer["writer"]["label"] in WRITER_CLASSES

    bad = runner.invoke(args=["personal", "teach", "--label", "7", "--profile", "Dave", str(sample)])
    assert bad.exit_code != 0 and "bad_profile" in bad.output
    assert runner.invoke(args=["personal", "delete", "dave"]).exit_code == 0
    assert not (Path(teach_app.config["PERSONAL_DIR"]) / "dave").exists()
    assert runner.invoke(args=["personal", "delete", "dave"]).exit_code != 0


def test_a_full_server_refuses_new_profiles(tmp_path):
    app = make_app(tmp_path, PERSONAL_DIR=str(tmp_path / "personal"), MAX_PROFILES=0)
    resp = app.test_client().post("/personal/teach", json={"image": data_url(drawn(TWO)), "label": "2", "profile": "x"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "too_many_profiles"
    assert not (tmp_path / "personal" / "x").exists()


def test_the_writer_verdict_uses_the_calibrated_yours_threshold():
    class Writer:
        labels = list(WRITER_CLASSES)

        def __init__(self, probs, meta):
            self.probs, self.meta = np.array([probs]), meta

        def probabilities(self, pixels):
            return self.probs

    glyph = np.zeros((28, 28), np.uint8)
    low_yours = [0.2, 0.7, 0.1]
    assert writer_verdict(Writer(low_yours, {}), glyph)["label"] == "standard"  # no threshold: the largest
    assert writer_verdict(Writer(low_yours, {"yours_threshold": 0.15}), glyph)["label"] == "yours"
    assert writer_verdict(Writer([0.1, 0.3, 0.6], {"yours_threshold": 0.15}), glyph)["label"] == "other"
    assert writer_verdict(None, glyph)["label"] is None


def test_the_yours_threshold_has_a_floor():
    def nobody_is_yours(x, training=False):
        import tensorflow as tf

        return tf.constant(np.tile([[0.0, 1.0, 0.0]], (len(x), 1)), tf.float32)

    assert writer_threshold(nobody_is_yours, np.zeros((50, 28, 28), np.uint8)) == MIN_YOURS_THRESHOLD
