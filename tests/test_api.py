"""The JSON API through real HTTP requests on the Flask test client: results and every error."""

from __future__ import annotations

import base64
import io
import typing
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from models.errors import clipped, quoted
from models.reading.results import GlyphAnswer, LinesAnswer, PageAnswer
from tests.helpers import (
    ONE_PNG,
    ONE_URL,
    RESOURCES,
    SEVEN_PNG,
    SEVEN_URL,
    canvas_digit,
    data_url,
    make_app,
    png_bytes,
    upload,
)


def assert_error(resp, status: int, code: str):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]


def test_healthz(client):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and {"digit", "character", "page", "line"} <= set(body["tasks"])


def test_page_is_served(client):
    resp = client.get("/")
    assert resp.status_code == 200 and b"<canvas" in resp.data


def test_submit_answers_in_the_shared_shape(client):
    resp = client.post("/submit", json={"image": SEVEN_URL, "task": "digit"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) >= {"task", "text", "confidence", "candidates", "input_28x28", "model"}
    assert body["task"] == "digit" and body["text"] == "7"
    assert body["confidence"] == body["candidates"][0]["probability"] > 0.5
    probs = [c["probability"] for c in body["candidates"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)
    assert len({c["label"] for c in body["candidates"]}) == 5
    seen = Image.open(io.BytesIO(base64.b64decode(body["input_28x28"].split(",", 1)[1])))
    assert seen.size == (28, 28)
    assert body["model"]["name"] == "digit" and body["model"]["version"]


def test_task_defaults_to_digit(client):
    assert client.post("/submit", json={"image": ONE_URL}).get_json()["text"] == "1"


def test_upload_reads_a_real_photographed_digit(client, photo_digits):
    path, label = next((p, lab) for p, lab in photo_digits if lab == "3")
    body = upload(client, path.read_bytes(), name=path.name).get_json()
    assert body["text"] == label


def test_no_file(client):
    assert_error(client.post("/upload", data={"task": "digit"}), 400, "no_file")


def test_a_file_without_a_name_is_still_read(client):
    """Real bytes under an empty file name were answered "No file"."""
    image = SEVEN_PNG
    r = client.post("/upload", data={"file": (io.BytesIO(image), ""), "task": "digit"})
    assert r.status_code == 200 and r.get_json()["text"] == "7"


def test_empty_file(client):
    assert_error(upload(client, b""), 400, "no_file")


def test_not_an_image(client):
    assert_error(upload(client, b"%PDF-1.4 not really an image", name="notes.pdf"), 400, "not_an_image")


def test_truncated_image(client):
    assert_error(upload(client, SEVEN_PNG[: len(SEVEN_PNG) // 2]), 400, "truncated_image")


def test_over_the_size_limit(tmp_path):
    client = make_app(tmp_path, MAX_UPLOAD_BYTES=20_000).test_client()
    big = png_bytes(Image.effect_noise((300, 300), 60).convert("RGB"))
    assert len(big) > 20_000
    assert_error(upload(client, big), 413, "too_large")
    assert_error(client.post("/submit", json={"image": data_url(big)}), 413, "too_large")
    # a request far over the limit is cut off by the server before it is read
    assert_error(upload(client, big * 3), 413, "too_large")


def test_decompression_bomb(client, bomb_png):
    assert_error(upload(client, bomb_png), 413, "too_many_pixels")


def test_unknown_task(client):
    assert_error(upload(client, SEVEN_PNG, task="klingon"), 400, "unknown_task")
    assert_error(client.post("/submit", json={"image": SEVEN_URL, "task": "klingon"}), 400, "unknown_task")


def test_blank_canvas(client):
    blank = png_bytes(Image.new("RGB", (280, 280), "white"))
    resp = client.post("/submit", json={"image": data_url(blank), "task": "digit"})
    assert_error(resp, 422, "blank_image")
    assert "Nothing to read" in resp.get_json()["error"]["message"]


def test_wrong_content_types(client):
    assert_error(client.post("/submit", data={"image": SEVEN_URL}), 415, "unsupported_media_type")
    assert_error(client.post("/upload", json={"file": SEVEN_URL}), 415, "unsupported_media_type")


def test_malformed_json(client):
    resp = client.post("/submit", data="{not json", content_type="application/json")
    assert_error(resp, 400, "no_image")
    assert_error(client.post("/submit", json={"task": "digit"}), 400, "no_image")
    assert_error(client.post("/submit", json=["a", "list"]), 400, "no_image")
    assert_error(client.post("/submit", json={"image": "not a data url"}), 400, "not_an_image")


@pytest.mark.parametrize(
    ("path", "status", "code"), [("/nope", 404, "not_found"), ("/submit", 405, "method_not_allowed")]
)
def test_an_unknown_route_or_method_answers_json(client, path, status, code):
    assert_error(client.get(path), status, code)


def test_concurrent_requests_get_consistent_answers(app):
    payloads = [SEVEN_PNG, ONE_PNG] * 8

    def post(data: bytes):
        with app.test_client() as c:
            return c.post("/submit", json={"image": data_url(data)}).get_json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, payloads))
    assert [r["text"] for r in results] == ["7", "1"] * 8
    assert len({r["confidence"] for r in results[::2]}) == 1


@pytest.mark.parametrize("missing", ["WEIGHTS_DIR"])
def test_missing_weights_answer_503_not_500(tmp_path, missing):
    (tmp_path / "digit").mkdir()
    (tmp_path / "digit" / "model.keras").write_bytes(b"not a model")
    (tmp_path / "digit" / "meta.json").write_text('{"preprocessing_version": "0", "labels": []}')
    client = make_app(tmp_path, **{missing: str(tmp_path)}).test_client()
    resp = client.post("/submit", json={"image": SEVEN_URL})
    assert_error(resp, 503, "model_unavailable")
    message = resp.get_json()["error"]["message"]
    assert "training.train_digits" in message and str(tmp_path) not in message  # no server paths leak


def test_several_characters_drawn_side_by_side_are_read_as_a_sequence(app, client):
    """A drawn "12" goes through the page path: its text, a box per glyph in the drawing's pixels,
    and a prediction id per glyph that feedback can correct."""
    one = [[(0.3, 0.2), (0.3, 0.8)]]
    two = [[(0.5, 0.3), (0.62, 0.22), (0.75, 0.3), (0.72, 0.45), (0.55, 0.75), (0.8, 0.75)]]
    body = client.post("/submit", json={"image": data_url(png_bytes(canvas_digit(one + two)))}).get_json()
    assert body["sequence"] is True and body["task"] == "digit" and body["text"] == "12"
    assert [g["text"] for g in body["glyphs"]] == ["1", "2"]
    first = body["glyphs"][0]
    assert abs(first["x"] + first["w"] / 2 - 0.3 * 280) < 6 and first["h"] > 0.5 * 280  # the drawing's pixels
    fix = {"prediction_id": body["glyphs"][1]["prediction_id"], "correct": False, "label": "7"}
    assert client.post("/feedback", json=fix).status_code == 200
    row = app.extensions["feedback"].feedback("digit")[0]
    assert row.predicted == "2" and row.label == "7"


def test_one_character_in_one_piece_is_not_a_sequence(client):
    body = client.post("/submit", json={"image": ONE_URL}).get_json()
    assert "sequence" not in body and body["text"] == "1" and body["prediction_id"]


@pytest.mark.parametrize("route", ["/submit", "/feedback", "/upload"])
def test_json_nested_too_deeply_is_a_400(client, route):
    """100,000 nested brackets made Python's JSON parser raise RecursionError: a 500."""
    body = "[" * 100_000 + "]" * 100_000
    r = client.post(route, data=body, content_type="application/json")
    if route == "/upload":  # /upload takes a form: JSON is refused before it is parsed
        assert r.status_code == 415 and r.is_json
    else:
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_json"


def test_a_lone_surrogate_as_prediction_id_is_a_400(client):
    """JSON may carry "\\ud800"; binding it in SQL raised UnicodeEncodeError: a 500."""
    r = client.post("/feedback", data='{"prediction_id": "\\ud800", "correct": true}', content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_feedback"
    read = client.post("/submit", json={"image": SEVEN_URL}).get_json()
    ok = client.post("/feedback", json={"prediction_id": read["prediction_id"], "correct": True})
    assert ok.status_code == 200  # a real id still goes through


def test_errors_do_not_echo_huge_input(client):
    """A 100,000-character task name came back as a 100 KB error body, a 1 MB label as 1 MB."""
    r = client.post("/submit", json={"image": SEVEN_URL, "task": "x" * 100_000})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "unknown_task" and len(r.data) < 1000
    assert "100,000 characters" in r.get_json()["error"]["message"]
    read = client.post("/submit", json={"image": SEVEN_URL}).get_json()
    r = client.post(
        "/feedback", json={"prediction_id": read["prediction_id"], "correct": False, "label": "é" * 1_000_000}
    )
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_label" and len(r.data) < 1000
    r = client.post(
        "/submit",
        json={"image": SEVEN_URL, "alphabet": "y" * 50_000, "task": "character"},
    )
    assert r.status_code in (400, 422) and len(r.data) < 1000


def test_quoted_values_are_cut():
    assert quoted("digit") == "'digit'" and clipped("abc") == "abc"
    assert quoted("x" * 100) == repr("x" * 40) + "… (100 characters)"


def _fits(value, shape, where: str = "answer") -> None:
    """``value`` has exactly the fields the TypedDict ``shape`` declares (every required one, no
    undeclared one), recursively through nested TypedDicts and lists of them."""
    if typing.is_typeddict(shape):
        assert isinstance(value, dict), where
        hints = typing.get_type_hints(shape)
        assert shape.__required_keys__ <= set(value) <= set(hints), (where, set(value) ^ set(hints))
        for key, item in value.items():
            _fits(item, hints[key], f"{where}.{key}")
        return
    origin, args = typing.get_origin(shape), typing.get_args(shape)
    if origin is typing.NotRequired:
        _fits(value, args[0], where)
    elif origin is list:
        for i, item in enumerate(value):
            _fits(item, args[0], f"{where}[{i}]")
    elif origin is None and isinstance(shape, type):  # a plain type (a JSON number may be an int)
        assert isinstance(value, (int, float) if shape is float else shape), (where, value)
    elif value is not None:  # X | None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            _fits(value, inner[0], where)


def test_answers_have_the_fields_their_typed_records_declare(client):
    digit = client.post("/submit", json={"image": SEVEN_URL, "task": "digit"})
    _fits(digit.get_json(), GlyphAnswer)
    letter = client.post("/submit", json={"image": ONE_URL, "task": "character", "alphabet": "upper"})
    _fits(letter.get_json(), GlyphAnswer)
    page = (RESOURCES / "pages" / "page_02_lines.jpg").read_bytes()
    answer = client.post("/upload", data={"file": (io.BytesIO(page), "p.jpg"), "task": "page"}).get_json()
    assert answer["glyphs"]
    _fits(answer, PageAnswer)
    line = (RESOURCES / "lines" / "a02-086-06.png").read_bytes()
    answer = client.post("/upload", data={"file": (io.BytesIO(line), "l.png"), "task": "line"}).get_json()
    assert answer["lines"]
    _fits(answer, LinesAnswer)
