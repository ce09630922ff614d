"""The 62-class character task: EMNIST loading, look-alikes, "not sure", and the shipped model."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

import training.data.glyphs
from app import recognize_command
from models.decoding.candidates import check_hint, group_confidence, lookalikes, restrict, top_candidates
from models.errors import BadAlphabet
from models.preprocessing import glyph_from_bytes, side_by_side_pieces
from models.reading.glyph import gate_threshold
from models.registry import WEIGHTS_DIR, shared_registry
from tests.helpers import ONE_URL, RESOURCES, SHARED_DATA, canvas_digit, data_url, make_app, png_bytes, write_idx
from training.data.glyphs import CHARSET62, character_data, emnist_upright, load_emnist_byclass, three_way_split
from training.data.negatives import scribbles, side_by_side

LABELS = list(CHARSET62)


def test_emnist_official_idx_files_are_turned_upright(tmp_path, mnist_sample):
    x, y = mnist_sample
    upright = x[:50]
    stored = upright.transpose(0, 2, 1)  # how the official EMNIST files store every image
    d = tmp_path / "emnist"
    d.mkdir()
    write_idx(d / "emnist-byclass-train-images-idx3-ubyte.gz", stored[:30])
    write_idx(d / "emnist-byclass-train-labels-idx1-ubyte.gz", y[:30])
    write_idx(d / "emnist-byclass-test-images-idx3-ubyte.gz", stored[30:])
    write_idx(d / "emnist-byclass-test-labels-idx1-ubyte.gz", y[30:50])
    data = load_emnist_byclass(tmp_path)
    assert np.array_equal(data["train"][0], upright[:30]) and np.array_equal(data["test"][0], upright[30:])
    assert np.array_equal(data["train"][1], y[:30])
    # a 7 read upright has its bar at the top: more ink in the top rows than in the left columns
    seven = data["train"][0][list(y[:30]).index(7)]
    assert seven[4:10].sum() > seven[:, 4:10].sum()


def test_staged_emnist_npz_is_already_upright(tmp_path, mnist_sample):
    x, y = mnist_sample
    (tmp_path / "emnist").mkdir()
    np.savez(tmp_path / "emnist" / "emnist_byclass_test_split.npz", x=x[:20], y=y[:20])
    data = load_emnist_byclass(tmp_path)
    assert set(data) == {"test"} and np.array_equal(data["test"][0], x[:20])
    assert np.array_equal(emnist_upright(emnist_upright(x[:5])), x[:5])


def test_lookalikes_are_always_among_the_candidates():
    probs = np.full(62, 0.001)
    probs[LABELS.index("o")] = 0.6
    for c in "abcdefgh":
        probs[LABELS.index(c)] = 0.05
    probs /= probs.sum()
    cands = [c["label"] for c in top_candidates(probs, LABELS)]
    assert cands[0] == "o" and {"O", "0"} <= set(cands) and len(cands) == 5
    assert lookalikes("o", LABELS) == ["0", "O"] and lookalikes("7", list("0123456789")) == []
    group = probs[LABELS.index("o")] + probs[LABELS.index("O")] + probs[LABELS.index("0")]
    assert group_confidence(probs, LABELS) == pytest.approx(group)


def drawn(text: str, size: int = 60) -> np.ndarray:
    """Ink (1 = ink) of ``text`` drawn as separate shapes; each char a vertical bar with a foot."""
    img = Image.new("L", (size * len(text) + 40, size + 40), 0)
    draw = ImageDraw.Draw(img)
    for i, ch in enumerate(text):
        x = 20 + i * size
        if ch == "i":
            draw.line([(x + 20, 45), (x + 20, size + 20)], fill=255, width=6)
            draw.ellipse((x + 16, 20, x + 24, 28), fill=255)
        else:
            draw.line([(x + 10, 20), (x + 10, size + 20), (x + 35, size + 20)], fill=255, width=6)
    return np.asarray(img, np.float32) / 255


def test_side_by_side_pieces():
    assert side_by_side_pieces(drawn("L")) == 1
    assert side_by_side_pieces(drawn("i")) == 1  # the dot sits above, not beside
    assert side_by_side_pieces(drawn("LL")) == 2
    assert side_by_side_pieces(drawn("LiL")) == 3


def test_several_characters_uploaded_get_not_sure(client, mnist_sample):
    """An uploaded image of several characters is "not sure" (drawn on the canvas, they are read as
    a sequence: tests/test_api.py)."""
    x, y = mnist_sample
    # written as one number: ink gaps of about 0.75 glyph heights (a gap of a whole glyph height is
    # a space on a page, models.segmentation.page.SPACE_CLEAR)
    row = np.concatenate([x[0], np.zeros((28, 2), np.uint8), x[1], np.zeros((28, 2), np.uint8), x[2]], axis=1)
    image = png_bytes(255 - np.pad(row, 20))
    body = client.post("/upload", data={"file": (io.BytesIO(image), "three.png"), "task": "digit"}).get_json()
    assert body["unsure"] is True and body["text"] == ""
    assert "3 characters" in body["message"]
    assert len(body["candidates"]) == 5  # the guesses are still shown
    drawn = client.post("/submit", json={"image": data_url(image), "task": "digit"}).get_json()
    assert drawn["sequence"] is True and drawn["text"] == "".join(str(d) for d in y[:3])


def test_a_clear_digit_is_not_unsure(client):
    body = client.post("/submit", json={"image": ONE_URL})
    body = body.get_json()
    assert body["unsure"] is False and body["text"] == "1" and "message" not in body


def test_unsure_threshold_is_configurable(mnist_sample, tmp_path):
    x, _ = mnist_sample
    strict = make_app(tmp_path, UNSURE_THRESHOLDS={"digit": 1.01}).test_client()
    body = strict.post("/submit", json={"image": data_url(png_bytes(x[0]))}).get_json()
    assert body["unsure"] is True and body["candidates"][0]["label"] == "7"


# ---------------------------------------------------------------- the shipped character model

CHAR_TESTS_NEED = pytest.mark.skipif(
    not (WEIGHTS_DIR / "character" / "model.keras").exists(),
    reason="no character weights (python -m training.train_characters --data-dir ../shared/data)",
)


def heldout_emnist() -> tuple[np.ndarray, np.ndarray]:
    """3,000 characters from our EMNIST test part when the staged data is present, else the 300
    shipped ones (also from the test part): never used in training or model selection."""
    path = SHARED_DATA / "emnist" / "emnist_byclass_test_split.npz"
    if path.exists():
        d = np.load(path)
        test = three_way_split(d["y"], 0.05, 0.15, seed=1)["test"]
        pick = np.random.default_rng(0).choice(test, 3000, replace=False)
        return d["x"][pick], d["y"][pick]
    d = np.load(RESOURCES / "emnist_heldout_300.npz")
    return d["x"], d["y"]


@pytest.fixture(scope="module")
def char_model():
    return shared_registry().get("character")


@CHAR_TESTS_NEED
def test_character_meta_records_the_honest_figures():
    meta = json.loads((WEIGHTS_DIR / "character" / "meta.json").read_text())
    assert meta["labels"] == LABELS
    m = meta["metrics"]["emnist_test"]
    assert {"accuracy", "accuracy_case_insensitive", "letters_accuracy", "digits_accuracy"} <= set(m)
    assert m["samples"] > 10_000 and "chars62_test" in meta["metrics"]
    assert 0 < meta["unsure"]["threshold"] < 1
    assert meta["training"]["command"].startswith("python -m training.train_characters")


@CHAR_TESTS_NEED
def test_character_accuracy_on_heldout_emnist_through_the_upload_path(char_model):
    x, y = heldout_emnist()
    glyphs = np.stack([glyph_from_bytes(png_bytes(a)).pixels for a in x])
    pred = char_model.probabilities(glyphs).argmax(1)
    # Guards the shipped model's measured level (meta.json: 85.0% on all 17,450 test-part glyphs,
    # 84.3% on these 3,000). Issue 3's targets (85% here, 87% on the full part) are not met yet.
    assert (pred == y).mean() >= 0.83
    letters = y >= 10
    assert (pred[letters] == y[letters]).mean() >= 0.68  # letters are not all read as digits
    case_free = np.char.lower(np.array(LABELS)[pred]) == np.char.lower(np.array(LABELS)[y])
    assert case_free.mean() >= 0.87


@CHAR_TESTS_NEED
def test_reads_real_photographed_characters(char_model):
    files = sorted((RESOURCES / "photo_chars").glob("*.png"))
    glyphs = np.stack([glyph_from_bytes(f.read_bytes()).pixels for f in files])
    truth = [f.name.split("_")[1] for f in files]
    pred = [LABELS[i] for i in char_model.probabilities(glyphs).argmax(1)]
    same_shape = [p == t or p in lookalikes(t, LABELS) for p, t in zip(pred, truth, strict=True)]
    assert np.mean(same_shape) >= 0.8


@CHAR_TESTS_NEED
def test_character_api_reads_a_drawn_letter_and_flags_lookalikes(client):
    big_a = [[(0.2, 0.85), (0.5, 0.15), (0.8, 0.85)], [(0.33, 0.58), (0.67, 0.58)]]
    body = client.post("/submit", json={"image": data_url(png_bytes(canvas_digit(big_a))), "task": "character"})
    body = body.get_json()
    assert body["task"] == "character" and body["text"] == "A" and body["model"]["name"] == "character"
    ring = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(ring).ellipse((70, 40, 210, 240), outline=0, width=18)
    buf = io.BytesIO()
    ring.save(buf, format="PNG")
    body = client.post("/upload", data={"file": (io.BytesIO(buf.getvalue()), "o.png"), "task": "character"})
    body = body.get_json()
    labels = [c["label"] for c in body["candidates"]]
    assert body["candidates"][0]["label"] in "0Oo" and {"0", "O", "o"} <= set(labels)
    assert sorted(body["lookalikes"] + [body["candidates"][0]["label"]]) == ["0", "O", "o"]


@CHAR_TESTS_NEED
def test_character_cli(runner, tmp_path):
    photo = sorted((RESOURCES / "photo_chars").glob("CAP_A_*.png"))[0]
    result = runner.invoke(recognize_command, ["--task", "character", str(photo)])
    out = json.loads(result.output.strip())
    assert result.exit_code == 0 and out["task"] == "character" and out["file"].endswith(photo.name)
    assert out["candidates"][0]["label"] in "Aa"


def test_scribble_is_not_a_confident_character(client):
    flagged = 0
    for g in scribbles(20, seed=11):
        img = png_bytes(255 - g.pixels)
        flagged += client.post("/submit", json={"image": data_url(img), "task": "digit"}).get_json()["unsure"]
    assert flagged >= 10  # most random tangles are answered "not sure"


# ---------------------------------------------------------------- alphabet hints


def test_restrict_renormalises_over_the_hinted_classes():
    probs = np.full(62, 0.2 / 60)
    probs[LABELS.index("0")], probs[LABELS.index("O")] = 0.5, 0.3
    sub, labels = restrict(probs, LABELS, "letter")
    assert labels == [c for c in LABELS if c.isalpha()] and sub.sum() == pytest.approx(1)
    assert labels[int(sub.argmax())] == "O"
    upper, labels = restrict(probs[None], LABELS, "upper")
    assert upper.shape == (1, 26) and "".join(labels) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert restrict(probs, LABELS, "any")[0] is probs
    assert check_hint(None, LABELS) == "any" and check_hint("digit", list("0123456789")) == "digit"
    with pytest.raises(BadAlphabet, match="Unknown alphabet"):
        check_hint("kanji", LABELS)
    with pytest.raises(BadAlphabet, match="none of the letter"):
        check_hint("letter", list("0123456789"))


def photo_letters() -> list[tuple[bytes, str]]:
    files = sorted(f for f in (RESOURCES / "photo_chars").glob("*.png") if not f.name.startswith("DIGIT"))
    return [(f.read_bytes(), f.name.split("_")[1]) for f in files]


@CHAR_TESTS_NEED
def test_letter_hint_never_answers_a_digit_and_reads_more_letters(client):
    plain = hinted = 0
    for data, truth in photo_letters():
        fields = {"file": (io.BytesIO(data), "c.png"), "task": "character"}
        body = client.post("/upload", data=fields).get_json()
        plain += body["candidates"][0]["label"].lower() == truth.lower()
        fields = {"file": (io.BytesIO(data), "c.png"), "task": "character", "alphabet": "letter"}
        body = client.post("/upload", data=fields).get_json()
        assert body["alphabet"] == "letter" and all(c["label"].isalpha() for c in body["candidates"])
        assert all(c.isalpha() for c in body["lookalikes"])
        hinted += body["candidates"][0]["label"].lower() == truth.lower()
    # on these 52 photographed letters (chars62 test part) the hint turns digit answers into letters
    assert hinted >= plain and hinted >= 0.85 * len(photo_letters())


RING_READINGS = [("upper", str.isupper, "O"), ("lower", str.islower, "o"), ("digit", str.isdigit, "0")]


@CHAR_TESTS_NEED
@pytest.mark.parametrize(("hint", "allowed", "reading"), RING_READINGS)
def test_a_case_or_digit_hint_reads_a_drawn_ring_within_its_alphabet(client, hint, allowed, reading):
    ring = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(ring).ellipse((70, 40, 210, 240), outline=0, width=18)
    image = data_url(png_bytes(np.asarray(ring)))
    body = client.post("/submit", json={"image": image, "task": "character", "alphabet": hint}).get_json()
    assert all(allowed(c["label"]) for c in body["candidates"])
    assert sum(c["probability"] for c in body["candidates"]) <= 1.0001
    assert body["candidates"][0]["label"] == reading


@CHAR_TESTS_NEED
def test_bad_alphabet_hints_are_400(client):
    image = ONE_URL
    for task, hint, words in (("character", "kanji", "Unknown alphabet"), ("digit", "letter", "none of the letter")):
        response = client.post("/submit", json={"image": image, "task": task, "alphabet": hint})
        assert response.status_code == 400, response.get_data(as_text=True)
        body = response.get_json()
        assert body["error"]["code"] == "bad_alphabet" and words in body["error"]["message"]
    assert client.post("/submit", json={"image": image, "task": "digit", "alphabet": "digit"}).status_code == 200


@CHAR_TESTS_NEED
def test_alphabet_hint_in_the_cli(runner):
    photo = RESOURCES / "photo_chars"
    files = [str(f) for f in sorted(photo.glob("CAP_O_*.png")) + sorted(photo.glob("SMALL_l_*.png"))]
    result = runner.invoke(recognize_command, ["--task", "character", "--alphabet", "letter", *files])
    assert result.exit_code == 0, result.output
    outs = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [o["alphabet"] for o in outs] == ["letter", "letter"]
    assert all(c["label"].isalpha() for o in outs for c in o["candidates"])
    result = runner.invoke(recognize_command, ["--task", "character", "--alphabet", "upper", files[0]])
    assert json.loads(result.output)["candidates"][0]["label"] == "O"


# ---------------------------------------------------------------- the glyph gate

GATE_NEEDED = pytest.mark.skipif(
    not (WEIGHTS_DIR / "glyph-gate" / "model.keras").exists(),
    reason="no glyph gate (python -m training.train_glyph_gate --data-dir ../shared/data)",
)


@GATE_NEEDED
def test_scribbles_and_run_together_glyphs_are_not_sure(client, mnist_sample):
    x, _ = mnist_sample
    made = scribbles(40, seed=11) + side_by_side(x, 20, seed=11, gap=(-2, 2))  # seeds no training used
    for task in ("digit", "character"):
        answers = [
            client.post("/submit", json={"image": data_url(png_bytes(255 - g.pixels)), "task": task}).get_json()
            for g in made
        ]
        assert sum(a["unsure"] for a in answers) >= 0.8 * len(made), task  # 91% of 300 measured (digits)
    messages = {a.get("message", "") for a in answers}
    assert any("one handwritten character" in m for m in messages)


@GATE_NEEDED
def test_real_digits_read_right_are_rarely_not_sure(client, mnist_sample):
    x, y = mnist_sample
    images = [(png_bytes(a), str(b)) for a, b in zip(x, y, strict=True)]
    images += [(f.read_bytes(), f.name.split("_")[1]) for f in sorted((RESOURCES / "photo_digits").glob("*.png"))]
    right = unsure = 0
    for data, truth in images:
        body = client.post("/upload", data={"file": (io.BytesIO(data), "d.png"), "task": "digit"}).get_json()
        if body["candidates"][0]["label"] == truth:
            right += 1
            unsure += body["unsure"]
    assert right >= 0.98 * len(images) and unsure <= 0.01 * right


def test_gate_thresholds_measured_with_another_gate_are_not_used():
    """A model's "not sure" figures name the glyph gate they were measured with; a gate retrained
    since (another version) gives other probabilities, so its own threshold serves instead."""
    gate = SimpleNamespace(name="glyph-gate", version="3", meta={"threshold": 0.7})
    for version, alphabet, expected in (("3", "any", 0.4), ("3", "upper", 0.3), ("2", "any", 0.7), ("2", "upper", 0.7)):
        measured = {"name": "glyph-gate", "version": version}
        unsure = {"glyph_gate": measured | {"threshold": 0.4}}
        unsure["by_alphabet"] = {"upper": {"glyph_gate": measured | {"threshold": 0.3}}}
        model = SimpleNamespace(meta={"unsure": unsure})
        assert gate_threshold(gate, model, alphabet) == expected, (version, alphabet)
    assert gate_threshold(gate, SimpleNamespace(meta={})) == 0.7  # never measured with a gate


def test_every_seed_gets_the_one_character_split(tmp_path, monkeypatch):
    """``--seed`` changes initialisation and shuffling, never which characters are held out: a
    model trained with another seed must not learn from the test part others are measured on."""
    rng = np.random.default_rng(0)
    (tmp_path / "emnist").mkdir()
    y = np.repeat(np.arange(62, dtype=np.uint8), 20)
    np.savez(
        tmp_path / "emnist" / "emnist_byclass_test_split.npz", x=rng.integers(0, 255, (len(y), 28, 28), np.uint8), y=y
    )
    monkeypatch.setattr(training.data.glyphs, "prepare", lambda images: images)  # the split is what is checked
    one, other = (character_data(tmp_path, seed, mnist_extra=0)["emnist"] for seed in (1, 7))
    for part in ("x_train", "x_val", "x_test"):
        assert np.array_equal(one[part], other[part])
    assert len(one["x_test"]) == 62 * 3
