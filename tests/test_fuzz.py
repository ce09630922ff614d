"""Property-based fuzzing (hypothesis) of the JSON API and the image decoders (issue 15).

Whatever arrives, the answer is never a 5xx, never takes over 5 s, and an error always has the
JSON error body. Bounded for CI: a fixed number of examples per property, derandomized (the same
examples on every run, so a failure reproduces) and no example database written into the tree.
"""

from __future__ import annotations

import base64
import io
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from tests.helpers import SEVEN_URL, data_url, make_app, png_bytes

FUZZ = settings(
    max_examples=80,
    deadline=None,  # each answer's time is asserted below, against the 5 s of the issue
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LIMIT_S = 5.0


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("fuzz"), PRELOAD_MODELS=True).test_client()  # no first-load wait


def check(resp, started: float) -> None:
    took = time.perf_counter() - started
    assert resp.status_code < 500, resp.data[:300]
    assert took < LIMIT_S, f"{took:.1f} s"
    if resp.status_code >= 400:
        body = resp.get_json(silent=True)
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), resp.data[:300]
        assert body["error"]["code"] and body["error"]["message"] and body["error"]["request_id"]
        assert len(resp.data) < 4096  # errors never echo a large input back


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
tasks = st.sampled_from(["digit", "character", "page", "line", "", "Digit", "x" * 300]) | st.text(max_size=12)
images = (
    st.sampled_from([SEVEN_URL, "data:image/png;base64,", "data:,", "data:image/png"])
    | st.binary(max_size=300).map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode())
    | st.text(max_size=60)
    | json_values
)


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {"image": images, "task": tasks | json_values},
        optional={"alphabet": json_values, "profile": json_values, "decoder": json_values, "correct": json_values},
    )
    | json_values
)
def test_submit_never_fails_on_any_json(fuzz_client, body):
    started = time.perf_counter()
    check(fuzz_client.post("/submit", json=body), started)


@FUZZ
@given(
    body=st.fixed_dictionaries(
        {"prediction_id": st.text(max_size=40) | json_values, "correct": json_values},
        optional={"label": st.text(max_size=40) | json_values},
    )
    | json_values,
    raw=st.binary(max_size=200),
)
def test_feedback_never_fails_on_any_body(fuzz_client, body, raw):
    started = time.perf_counter()
    check(fuzz_client.post("/feedback", json=body), started)
    started = time.perf_counter()
    check(fuzz_client.post("/feedback", data=raw, content_type="application/json"), started)


def _seeds() -> dict[str, bytes]:
    """A small drawing of a 7 in every format the decoders take, each encoding's own way."""
    img = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(img).line([(20, 18), (76, 18), (44, 82)], fill="black", width=9)
    return {
        "png": png_bytes(img),
        "jpeg": png_bytes(img, "JPEG", quality=85),
        "gif": png_bytes(img.convert("P"), "GIF"),
        "tiff": png_bytes(img, "TIFF", compression="tiff_deflate"),
        "tiff_g4": png_bytes(img.convert("1"), "TIFF", compression="group4"),
        "webp": png_bytes(img, "WEBP", quality=80),
        "bmp": png_bytes(img, "BMP"),
    }


SEEDS = _seeds()


@st.composite
def mutated_images(draw):
    """One seed file with a few bytes replaced, a run inserted or deleted, or its tail cut off."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[max(8, at) :]
    return bytes(data)


@settings(FUZZ, max_examples=200)
@given(data=mutated_images(), task=st.sampled_from(["digit", "character", "page", "line"]))
def test_mutated_image_files_never_fail(fuzz_client, capfd, data, task):
    started = time.perf_counter()
    resp = fuzz_client.post("/upload", data={"file": (io.BytesIO(data), "f.img"), "task": task})
    check(resp, started)
    started = time.perf_counter()
    check(fuzz_client.post("/submit", json={"image": data_url(data), "task": task}), started)
    _, err = capfd.readouterr()
    assert "Decode" not in err and "TIFF" not in err, err[-500:]  # libtiff no longer writes to stderr
