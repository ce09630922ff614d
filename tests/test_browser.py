"""The page in a real browser: drawing, live prediction, undo/clear, upload, the result area at
1280x800 and 390x844, lines and pages line by line, history, copy and downloads, keyboard use.

Drives Debian's chromium (``apt-get install chromium``) through Playwright's Python API
(``pip install playwright``; never ``playwright install``) against the real app on a free port.
Screenshots of each state go to ``HWR_ARTIFACTS`` (default ``instance/test-artifacts``).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import math
import os
import re
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from werkzeug.serving import make_server

from models.decoding.ctc import error_rates
from models.registry import WEIGHTS_DIR
from tests.helpers import FAST_TEACH, RESOURCES, make_app, photographed_paragraph, stop_workers, tiny_line_weights
from training.data.pages import compose_sheet, glyph_sources

CHROMIUM = Path(os.environ.get("HWR_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PREDICTION_TIMEOUT_MS = 60_000  # the first request loads the model
ARTIFACTS = Path(os.environ.get("HWR_ARTIFACTS") or Path(__file__).resolve().parents[1] / "instance" / "test-artifacts")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# the centre of the visible part of an element, and what the browser finds at that point
CENTRE_JS = """(el) => {
  const r = el.getBoundingClientRect();
  const top = Math.max(r.top, 0), bottom = Math.min(r.bottom, innerHeight);
  const left = Math.max(r.left, 0), right = Math.min(r.right, innerWidth);
  if (bottom - top < 20 || right - left < 20) return {visible: false};
  const x = (left + right) / 2, y = (top + bottom) / 2;
  const hit = document.elementFromPoint(x, y);
  return {visible: true, inside: !!hit && el.contains(hit), hit: hit ? hit.outerHTML.slice(0, 80) : null};
}"""
WHITE_PIXELS_JS = """() => {
  const c = document.querySelector('#canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let dark = 0, opaqueWhite = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 128) dark++;
    else if (d[i] === 255 && d[i + 1] === 255 && d[i + 2] === 255 && d[i + 3] === 255) opaqueWhite++;
  }
  return {dark, opaqueWhite, total: d.length / 4};
}"""
PIXEL_JS = """([fx, fy]) => {
  const c = document.querySelector('#canvas');
  const x = Math.floor(fx * c.width), y = Math.floor(fy * c.height);
  return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
}"""

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not found: install it with `apt-get install chromium` (or set HWR_CHROMIUM) "
        "to run the browser tests",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright is not installed: `pip install playwright` (no `playwright install` needed)",
)
expect = sync_api.expect


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    """The real app served on 127.0.0.1 with a free port, in a background thread: (url, app)."""
    app = make_app(tmp_path_factory.mktemp("page"))
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}", app
    finally:
        srv.shutdown()
        thread.join(timeout=10)
        srv.server_close()


@pytest.fixture(scope="module")
def base_url(served_app):
    return served_app[0]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(base_url + "/")
    yield page
    context.close()


def canvas_box(page):
    page.locator("#canvas").scroll_into_view_if_needed()  # a click on a result below may have scrolled it away
    box = page.locator("#canvas").bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    return box


def stroke(page, points, steps=15):
    """One mouse stroke through ``points`` given as fractions (0..1) of the canvas box."""
    box = canvas_box(page)
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


ONE = [(0.5, 0.15), (0.5, 0.85)]
SEVEN_BAR = [(0.25, 0.2), (0.75, 0.2)]
SEVEN_LEG = [(0.75, 0.2), (0.42, 0.85)]


def _png(draw, side: int = 200) -> bytes:
    """A white ``side``-pixel square PNG with ``draw(ImageDraw)`` applied."""
    img = Image.new("RGB", (side, side), "white")
    draw(ImageDraw.Draw(img))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def shoot(page, name: str) -> None:
    """A screenshot of the viewport as a test artifact (what a person sees at this size)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def assert_in_view_and_uncovered(page, selector: str) -> None:
    """``selector`` shows at least 20x20 px in the viewport, and nothing covers its centre."""
    seen = page.locator(selector).evaluate(CENTRE_JS)
    assert seen["visible"], f"{selector} is not in the viewport"
    assert seen["inside"], f"{selector} is covered at its centre by {seen['hit']}"


def rows(app, sql: str) -> list:
    conn = sqlite3.connect(app.config["FEEDBACK_DB"])
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def wait_for_answer(page):
    expect(page.locator("#result-text")).not_to_have_text("", timeout=PREDICTION_TIMEOUT_MS)
    return page.locator("#result-text").inner_text().strip()


def test_drawn_digits_are_read_live(page):
    stroke(page, ONE)
    assert wait_for_answer(page) == "1"
    expect(page.locator("#result-confidence")).to_contain_text("%")
    expect(page.locator("#candidates .candidate")).to_have_count(5)
    first = page.locator("#candidates .candidate").first
    expect(first.locator(".candidate-label")).to_have_text("1")
    expect(first.locator(".candidate-prob")).to_contain_text("%")
    assert page.locator("#input-28").get_attribute("src").startswith("data:image/png")
    expect(page.locator("#input-28")).to_be_visible()
    expect(page.locator("#model-info")).not_to_be_empty()

    page.click("#clear")
    expect(page.locator("#result-text")).to_have_text("")
    stroke(page, SEVEN_BAR + SEVEN_LEG[1:])  # one stroke: across, then down to the left
    assert wait_for_answer(page) == "7"
    expect(page.locator("#candidates .candidate")).to_have_count(5)
    assert page.locator("#input-28").get_attribute("src").startswith("data:image/png")


def test_predict_on_empty_canvas_asks_to_draw_and_sends_nothing(page):
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith(("/submit", "/upload")) else None)
    page.click("#predict")
    expect(page.locator("#status")).to_contain_text("Draw something first")
    page.wait_for_timeout(500)  # longer than the live-prediction delay
    assert sent == []
    expect(page.locator("#result-text")).to_have_text("")


def test_a_busy_server_is_asked_again_after_retry_after(page):
    """A 503 ``server_busy`` with ``Retry-After: 1`` is not shown as an error: the page
    sends the drawing again a second later and shows that answer."""
    sent = []

    def busy_once(route):
        sent.append(route.request.post_data_json)
        if len(sent) == 1:
            body = {"error": {"code": "server_busy", "message": "busy", "request_id": "r"}}
            route.fulfill(status=503, json=body, headers={"Retry-After": "1"})
        else:
            route.continue_()

    page.route("**/submit", busy_once)
    stroke(page, ONE)
    assert wait_for_answer(page) == "1"
    assert len(sent) == 2 and sent[0] == sent[1]  # the same drawing, sent again


def test_undo_and_clear_redraw_the_strokes(page):
    page.route(
        "**/submit", lambda route: route.fulfill(status=422, json={"error": {"code": "x", "message": "offline"}})
    )
    blank = page.evaluate(WHITE_PIXELS_JS)
    assert blank["dark"] == 0 and blank["opaqueWhite"] == blank["total"]  # white paper, not transparent

    stroke(page, SEVEN_BAR)
    stroke(page, SEVEN_LEG)
    both = page.evaluate(WHITE_PIXELS_JS)
    leg_middle = (0.585, 0.525)
    bar_middle = (0.5, 0.2)
    assert page.evaluate(PIXEL_JS, list(leg_middle))[0] < 128  # ink lands where the pointer was
    assert page.evaluate(PIXEL_JS, list(bar_middle))[0] < 128

    page.click("#undo")
    one = page.evaluate(WHITE_PIXELS_JS)
    assert 0 < one["dark"] < both["dark"]
    assert page.evaluate(PIXEL_JS, list(leg_middle))[:3] == [255, 255, 255]  # the leg is gone
    assert page.evaluate(PIXEL_JS, list(bar_middle))[0] < 128  # the bar stays

    page.click("#clear")
    cleared = page.evaluate(WHITE_PIXELS_JS)
    assert cleared["dark"] == 0 and cleared["opaqueWhite"] == cleared["total"]
    expect(page.locator("#undo")).to_be_disabled()


def test_only_the_latest_answer_is_shown(page):
    held = []
    page.route("**/submit", lambda route: held.append(route))  # hold every request; answer out of order below

    def fake(text):
        return {
            "task": "digit",
            "text": text,
            "confidence": 0.9,
            "candidates": [{"label": text, "probability": 0.9}]
            + [{"label": str(i), "probability": 0.02} for i in range(4)],
            "input_28x28": "data:image/png;base64," + base64.b64encode(_png(lambda d: None, 28)).decode(),
            "model": {"name": "fake", "version": "0"},
        }

    def wait_for_requests(n):
        for _ in range(100):  # route handlers run while Playwright waits
            if len(held) >= n:
                break
            page.wait_for_timeout(50)
        assert len(held) == n

    stroke(page, SEVEN_BAR)
    wait_for_requests(1)
    stroke(page, SEVEN_LEG)
    wait_for_requests(2)
    held[1].fulfill(json=fake("7"))
    expect(page.locator("#result-text")).to_have_text("7")
    with contextlib.suppress(Exception):  # the page may already have aborted the stale request
        held[0].fulfill(json=fake("4"))
    page.wait_for_timeout(300)
    expect(page.locator("#result-text")).to_have_text("7")


def test_upload_shows_prediction_and_server_errors(page, base_url):
    png = _png(lambda d: d.rectangle([88, 30, 112, 170], fill="black"))
    page.set_input_files("#file-input", {"name": "one.png", "mimeType": "image/png", "buffer": png})
    assert wait_for_answer(page) == "1"
    expect(page.locator("#candidates .candidate")).to_have_count(5)
    expect(page.locator("#source-thumb")).to_be_visible()  # the input this answer belongs to
    expect(page.locator("#source-caption")).to_contain_text("one.png")
    expect(page.locator("#result-panel")).to_be_focused()  # keyboard and screen reader follow the upload

    text = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image\n"}
    answer = page.request.post(base_url + "/upload", multipart={"file": text, "task": "digit"})
    assert answer.status == 400
    message = answer.json()["error"]["message"]
    page.set_input_files("#file-input", text)
    expect(page.locator("#status")).to_have_text(message)
    assert page.locator("#result-panel #status").count() == 1  # errors show in the result area
    expect(page.locator("#result-text")).to_have_text("")
    assert "Traceback" not in page.content()


def test_phone_layout_fits_and_draws_by_touch(browser, base_url):
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
        box = canvas_box(page)
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
        assert box["y"] + box["height"] <= 740  # fully visible without scrolling
        for button in ("#undo", "#clear", "#predict"):
            assert page.locator(button).bounding_box()["height"] >= 40  # large enough to tap

        # a finger stroke (touch events become pointer events; the page must not scroll instead)
        cdp = context.new_cdp_session(page)
        x = box["x"] + box["width"] / 2
        ys = [box["y"] + box["height"] * (0.15 + 0.7 * i / 20) for i in range(21)]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": ys[0]}]})
        for y in ys[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        assert wait_for_answer(page) == "1"
        assert page.evaluate("window.scrollY") == 0
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    finally:
        context.close()


def test_on_a_phone_the_answer_and_its_feedback_show_right_under_the_canvas(browser, base_url):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        with page.expect_request(lambda r: r.url.endswith("/submit")) as sent:
            stroke(page, ONE)
        assert wait_for_answer(page) == "1"
        # the canvas holds 2x the pixels on this screen; the drawing is sent at its own 280x280
        assert page.evaluate("document.querySelector('#canvas').width") == 560
        image = sent.value.post_data_json["image"]
        assert Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1]))).size == (280, 280)
        assert page.evaluate("window.scrollY") == 0
        for selector in ("#canvas", "#result-text", "#source", "#feedback-yes", "#feedback-no"):
            assert_in_view_and_uncovered(page, selector)
        shoot(page, "glyph-phone")
    finally:
        context.close()


def test_several_characters_are_read_as_a_short_sequence(page, served_app):
    stroke(page, [(0.3, 0.2), (0.3, 0.8)])
    stroke(page, [(0.5, 0.3), (0.62, 0.22), (0.75, 0.3), (0.72, 0.45), (0.55, 0.75), (0.8, 0.75)])
    expect(page.locator("#result-text")).to_have_text("12", timeout=PREDICTION_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("2 characters side by side")
    expect(page.locator("#boxes .box")).to_have_count(2)
    expect(page.locator("#line-list .feedback")).to_have_count(2)  # each glyph its own Yes / No
    shoot(page, "sequence-desktop")
    page.click("#glyph-1-feedback-no")
    page.fill("#glyph-1-feedback-label", "7")
    page.press("#glyph-1-feedback-label", "Enter")
    expect(page.locator("#glyph-1-feedback-status")).to_have_text("Thanks, saved: it is “7”.")
    last = "SELECT p.predicted, f.label FROM feedback f JOIN predictions p ON p.id = f.prediction_id ORDER BY f.id DESC"
    assert rows(served_app[1], last)[0] == ("2", "7")


@pytest.mark.skipif(
    not (Path(__file__).resolve().parent.parent / "models" / "weights" / "character" / "model.keras").exists(),
    reason="no character weights",
)
def test_character_switch_reads_letters_and_explains_lookalikes(page):
    page.get_by_label("Character").check()
    ring = [(0.5 + 0.3 * math.cos(t / 20 * 6.4), 0.5 + 0.38 * math.sin(t / 20 * 6.4)) for t in range(21)]
    stroke(page, ring, steps=4)
    answer = wait_for_answer(page)
    assert answer in ("0", "O", "o")
    expect(page.locator("#result-note")).to_contain_text("looks the same as")
    labels = page.locator(".candidate-label").all_inner_texts()
    assert {"0", "O", "o"} <= set(labels)


def test_yes_and_no_feedback_is_saved(page, served_app):
    stroke(page, SEVEN_BAR + SEVEN_LEG[1:])
    assert wait_for_answer(page) == "7"
    expect(page.locator("#feedback")).to_be_visible()
    page.click("#feedback-yes")
    expect(page.locator("#feedback-status")).to_have_text("Thanks, saved.")
    expect(page.locator("#feedback-yes")).to_have_attribute("aria-pressed", "true")

    page.click("#feedback-no")  # changed my mind: it is not a 7
    expect(page.locator("#feedback-label")).to_be_focused()
    page.fill("#feedback-label", "x")
    page.click("#feedback-send")
    expect(page.locator("#feedback-status")).to_contain_text("not a digit")
    expect(page.locator("#feedback-status")).to_have_class("feedback-status error")
    page.fill("#feedback-label", "1")
    page.press("#feedback-label", "Enter")
    expect(page.locator("#feedback-status")).to_have_text("Thanks, saved: it is “1”.")

    conn = sqlite3.connect(served_app[1].config["FEEDBACK_DB"])
    saved = conn.execute("SELECT correct, label, revision FROM feedback ORDER BY id DESC LIMIT 1").fetchall()
    conn.close()
    assert saved == [(0, "1", 2)]  # one row, updated

    page.click("#clear")
    expect(page.locator("#feedback")).to_be_hidden()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_page_upload_shows_the_result_and_the_page_in_view(browser, base_url, viewport):
    """After a page upload the result area and the annotated page are in the viewport and nothing
    covers them; focus is on the result; the boxes carry a legend."""
    phone = viewport["width"] < 500
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        page.check("#as-page")
        page.set_input_files("#file-input", str(RESOURCES / "pages" / "page_04_table.jpg"))
        expect(page.locator("#boxes .box").first).to_be_attached(timeout=PREDICTION_TIMEOUT_MS)
        page.wait_for_function("() => document.querySelector('#boxed-picture').complete")
        expect(page.locator("#result-panel")).to_be_focused()
        for selector in ("#result-panel", "#boxed-image", "#source"):
            assert_in_view_and_uncovered(page, selector)
        expect(page.locator("#legend")).to_be_visible()
        expect(page.locator("#legend")).to_contain_text("not sure")
        shoot(page, f"page-upload-{'phone' if phone else 'desktop'}")
    finally:
        context.close()


def test_a_page_upload_is_annotated_and_a_glyph_can_be_corrected(page, served_app):
    pages = Path(__file__).resolve().parent / "resources" / "pages"
    page.check("#as-page")
    page.set_input_files("#file-input", str(pages / "page_04_table.jpg"))
    expect(page.locator("#boxes-view")).to_be_visible(timeout=PREDICTION_TIMEOUT_MS)
    lines = page.locator("#line-list .line-text").all_inner_texts()
    assert len(lines) >= 6 and len("".join(lines).replace(" ", "")) > 100
    assert page.locator("#boxed-picture").get_attribute("src").startswith("data:image/png")
    assert page.locator("#download-annotated").get_attribute("href").startswith("data:image/png")
    boxes = page.locator("#boxes .box")
    assert boxes.count() > 100
    first = boxes.first
    first.click()
    expect(page.locator("#page-fix-label")).to_be_focused()
    page.fill("#page-fix-label", "x")
    page.click("#page-fix button[type=submit]")
    expect(page.locator("#page-status")).to_contain_text("not a digit")
    page.fill("#page-fix-label", "8")
    page.press("#page-fix-label", "Enter")
    expect(page.locator("#page-status")).to_contain_text("Saved")
    expect(first).to_have_class("box fixed")
    assert page.locator("#line-list .line-text").first.inner_text().replace(" ", "")[0] == "8"  # the text follows
    conn = sqlite3.connect(served_app[1].config["FEEDBACK_DB"])
    labels = [r[0] for r in conn.execute("SELECT label FROM feedback ORDER BY id DESC LIMIT 1")]
    conn.close()
    assert labels == ["8"]
    boxes.nth(1).click()
    expect(page.locator("#page-fix")).to_be_visible()
    page.press("#page-fix-label", "Escape")  # Escape closes the correction form
    expect(page.locator("#page-fix")).to_be_hidden()


def upload_a_page(page, name: str = "page_04_table.jpg") -> dict:
    """Upload one of the test pages as a page of digits; the answer's JSON once it is shown."""
    page.check("#as-page")
    with page.expect_response(lambda r: r.url.endswith("/upload"), timeout=PREDICTION_TIMEOUT_MS) as answer:
        page.set_input_files("#file-input", str(RESOURCES / "pages" / name))
    body = answer.value.json()
    page.wait_for_function("() => document.querySelector('#boxed-picture').complete")
    return body


def tap_centre(page, locator) -> None:
    box = locator.bounding_box()
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_on_a_phone_a_tap_on_a_small_page_box_magnifies_it_and_corrects_the_glyph_meant(browser, served_app):
    """At 390x844 a page's boxes are far smaller than a fingertip: a tap opens a magnifier on that
    spot with the nearest glyph's correction; a tap in the magnifier picks a neighbour instead."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(served_app[0] + "/")
        glyphs = upload_a_page(page)["glyphs"]
        k = min(range(1, len(glyphs) - 1), key=lambda i: glyphs[i]["w"])  # the narrowest box (a 1)
        small = page.locator("#boxes .box").nth(k)
        small.scroll_into_view_if_needed()
        seen = small.bounding_box()
        assert seen["width"] < 44 and seen["height"] < 44  # below the WCAG target size
        tap_centre(page, small)
        expect(page.locator("#loupe")).to_be_visible()
        expect(page.locator("#page-fix-question")).to_have_text(f"Read as “{glyphs[k]['text']}”. Right answer")
        loupe_boxes = page.locator("#loupe-boxes .loupe-box")
        expect(loupe_boxes.nth(k)).to_have_class(re.compile(r"\bselected\b"))
        assert loupe_boxes.nth(k).bounding_box()["height"] >= 44  # magnified to a fingertip
        assert_in_view_and_uncovered(page, "#loupe-view")
        assert_in_view_and_uncovered(page, "#page-fix-label")
        shoot(page, "page-magnifier-phone")

        j = k + 1 if glyphs[k + 1]["line"] == glyphs[k]["line"] else k - 1  # its neighbour in the row
        view, near = page.locator("#loupe-view").bounding_box(), loupe_boxes.nth(j).bounding_box()
        assert view["x"] <= near["x"] and near["x"] + near["width"] <= view["x"] + view["width"]
        tap_centre(page, loupe_boxes.nth(j))
        expect(page.locator("#page-fix-question")).to_have_text(f"Read as “{glyphs[j]['text']}”. Right answer")
        expect(loupe_boxes.nth(j)).to_have_class(re.compile(r"\bselected\b"))
        expect(loupe_boxes.nth(k)).not_to_have_class(re.compile(r"\bselected\b"))
        label = "3" if glyphs[j]["text"] != "3" else "8"
        page.fill("#page-fix-label", label)
        page.press("#page-fix-label", "Enter")
        expect(page.locator("#page-status")).to_contain_text("Saved")
        expect(loupe_boxes.nth(j)).to_have_class(re.compile(r"\bfixed\b"))
        shoot(page, "page-magnifier-fixed-phone")
        pid = glyphs[j]["prediction_id"]
        assert rows(served_app[1], f"SELECT correct, label FROM feedback WHERE prediction_id = '{pid}'") == [(0, label)]
        page.click("#loupe-close")
        expect(page.locator("#loupe")).to_be_hidden()
    finally:
        context.close()


def test_feedback_on_a_page_glyph_can_be_changed_from_the_history(page, served_app):
    """A page's history entry lists its glyphs line by line; one opens its own Yes / No, and the
    change reaches the feedback store and survives a reload."""
    body = upload_a_page(page, "page_02_lines.jpg")
    glyphs = body["glyphs"]
    page.reload()
    item = page.locator("#history-list .history-item").first
    expect(item.locator(".history-meta")).to_contain_text(f"feedback on 0 of {len(glyphs)}")
    item.locator("summary").click()
    buttons = item.locator(".history-glyph")
    expect(buttons).to_have_count(len(glyphs))
    expect(item.locator(".history-glyphs")).to_have_count(len(body["lines"]))  # a row per line
    k = next(i for i, g in enumerate(glyphs) if g["line"] == 2)
    buttons.nth(k).click()
    expect(item.locator(".history-part")).to_have_text(f"Line 3: read as “{glyphs[k]['text']}”")
    shoot(page, "history-page-glyph-desktop")
    item.get_by_role("button", name="No", exact=True).click()
    label = "3" if glyphs[k]["text"] != "3" else "8"
    item.get_by_label("The right answer").fill(label)
    item.get_by_label("The right answer").press("Enter")
    expect(item.locator(".history-meta")).to_contain_text(f"feedback on 1 of {len(glyphs)}")
    expect(buttons.nth(k)).to_have_text(label)
    expect(item.locator(".feedback-status")).to_have_text(f"Thanks, saved: it is “{label}”.")
    pid = glyphs[k]["prediction_id"]
    assert rows(served_app[1], f"SELECT correct, label FROM feedback WHERE prediction_id = '{pid}'") == [(0, label)]
    page.reload()
    again = page.locator("#history-list .history-item").first
    expect(again.locator(".history-meta")).to_contain_text("feedback on 1 of")


QUOTA = 20_000  # characters the history may take in the test below: a full browser storage
FULL_STORAGE_JS = f"""(() => {{
  const set = Storage.prototype.setItem;
  window.setItemUnlimited = (k, v) => set.call(localStorage, k, v);
  Storage.prototype.setItem = function (k, v) {{
    if (k === "hwr-history" && String(v).length > {QUOTA}) throw new DOMException("full", "QuotaExceededError");
    return set.call(this, k, v);
  }};
}})()"""


def test_a_full_storage_drops_the_oldest_answers_and_keeps_the_new_one(browser, base_url):
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(FULL_STORAGE_JS)
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        entry = {"task": "Digit", "kind": "glyph", "source": "drawing", "time": "2026-01-01T00:00:00Z", "parts": []}
        old = [entry | {"key": f"old-{i}", "text": f"old {i} " + "x" * 300} for i in range(60)]
        page.evaluate("(items) => setItemUnlimited('hwr-history', JSON.stringify(items))", old)
        page.reload()
        stroke(page, ONE)
        assert wait_for_answer(page) == "1"
        expect(page.locator("#history-note")).to_contain_text("oldest answers were removed")
        kept = page.evaluate("JSON.parse(localStorage.getItem('hwr-history'))")
        assert kept[0]["text"] == "1" and 1 < len(kept) < 50
        assert [k["key"] for k in kept[1:]] == [f"old-{i}" for i in range(len(kept) - 1)]  # the newest of the old
        one_more = page.evaluate("([kept, next]) => JSON.stringify([...kept, next]).length", [kept, old[len(kept) - 1]])
        assert one_more > QUOTA  # only as many were dropped as had to be
        expect(page.locator("#history-list .history-item")).to_have_count(len(kept))
    finally:
        context.close()


def test_a_handwriting_sheet_is_checked_on_the_page(page, tmp_path):
    sources = glyph_sources(RESOURCES / "mnist_test_first500.npz", RESOURCES / "photo_digits")
    sheet = tmp_path / "sheet.png"
    compose_sheet(sources, np.random.default_rng(4), per_row=6).save(sheet)
    expect(page.locator("#sheet-file")).to_be_hidden()  # "One sample" is the panel's first way
    page.click('label:has(input[name="teach-mode"][value="sheet"])')
    page.set_input_files("#sheet-file", str(sheet))
    page.click("#sheet-check")
    expect(page.locator("#sheet-summary")).to_contain_text("Found 60 digits in 10 rows", timeout=PREDICTION_TIMEOUT_MS)
    assert page.locator("#sheet-annotated").get_attribute("src").startswith("data:image/png")
    page.fill("#sheet-name", "alice")
    page.fill("#sheet-token", "wrong")
    page.click("#sheet-train")
    expect(page.locator("#sheet-status")).to_contain_text("admin token")


@contextlib.contextmanager
def served_page(browser, app, height: int = 900):
    """``app`` served on 127.0.0.1 (a free port) in a thread, and a browser page open on it."""
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    context = browser.new_context(viewport={"width": 1200, "height": height})
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{srv.server_port}/")
    try:
        yield page
    finally:
        context.close()
        srv.shutdown()
        thread.join(timeout=10)
        srv.server_close()


@pytest.fixture(scope="module")
def teach_page(browser, tmp_path_factory):
    """The page served with its profiles in a temporary folder and quick teach settings."""
    folder = tmp_path_factory.mktemp("teach-app")
    app = make_app(folder, PERSONAL_DIR=str(folder / "personal"), TEACH_OPTIONS=FAST_TEACH, ADMIN_TOKEN=SHEET_TOKEN)
    with served_page(browser, app, height=1600) as page:
        yield page, app
    stop_workers(folder / "personal")


SHEET_TOKEN = "sheet-admin"


def test_one_drawn_sample_teaches_a_profile_and_shows_every_step(teach_page, tmp_path):
    page, app = teach_page
    stroke(page, [(0.3, 0.3), (0.45, 0.2), (0.62, 0.25), (0.65, 0.4), (0.5, 0.55), (0.3, 0.75), (0.7, 0.75)])
    assert wait_for_answer(page) == "2"
    page.fill("#teach-label", "2")
    page.fill("#teach-profile", "erin")
    page.click("#teach-start")
    expect(page.locator("#teach-progress-box")).to_be_visible()
    expect(page.locator("#teach-status")).to_contain_text("New profile")
    expect(page.locator("#teach-results")).to_be_visible(timeout=300_000)
    expect(page.locator("#teach-summary")).to_contain_text("erin")
    for name in ("variants", "vae_samples", "reconstruction", "latent_map", "feature_maps"):
        img = page.locator(f'#teach-pictures img[data-picture="{name}"]')
        expect(img).to_be_visible()
        page.wait_for_function("(el) => el.complete && el.naturalWidth > 100", arg=img.element_handle())
    href = page.locator("#teach-pictures a").first.get_attribute("href")
    assert href.endswith("?download=1")
    assert page.locator("#teach-progress").get_attribute("value") in ("1", "1.0")
    page.screenshot(path=os.environ.get("HWR_TEACH_SCREENSHOT", str(tmp_path / "teach.png")), full_page=True)

    # the profile now reads what is drawn, with the writer verdict
    page.select_option("#profile-select", "erin")
    expect(page.locator("#model-info")).to_contain_text("erin-digit", timeout=PREDICTION_TIMEOUT_MS)
    expect(page.locator("#model-info")).to_contain_text("writer:")
    assert page.locator("#result-text").inner_text().strip() == "2"


def test_a_sheet_trains_in_a_worker_and_the_page_reports_its_figures(teach_page, tmp_path):
    page, app = teach_page
    sources = glyph_sources(RESOURCES / "mnist_test_first500.npz", RESOURCES / "photo_digits")
    sheet = tmp_path / "sheet.png"
    compose_sheet(sources, np.random.default_rng(4), per_row=7).save(sheet)
    page.click('label:has(input[name="teach-mode"][value="sheet"])')
    page.set_input_files("#sheet-file", str(sheet))
    page.click("#sheet-check")
    expect(page.locator("#sheet-summary")).to_contain_text("Found 70 digits", timeout=PREDICTION_TIMEOUT_MS)
    page.fill("#sheet-name", "frank")
    page.fill("#sheet-token", SHEET_TOKEN)
    page.click("#sheet-train")
    expect(page.locator("#sheet-status")).to_contain_text("Trained “frank”", timeout=300_000)
    expect(page.locator("#sheet-status")).to_contain_text("personal cnn")


@pytest.fixture(scope="module")
def line_page(browser, tmp_path_factory):
    """The page served with a tiny line model beside the shipped ones (exercises the wide canvas)."""
    root = tmp_path_factory.mktemp("weights")
    for name in ("digit", "character"):
        (root / name).symlink_to(WEIGHTS_DIR / name)
    tiny_line_weights(root)
    app = make_app(tmp_path_factory.mktemp("line-app"), WEIGHTS_DIR=str(root))
    with served_page(browser, app) as page:
        yield page, app


def test_the_line_task_writes_on_a_wide_canvas(line_page):
    page, app = line_page
    expect(page.locator("#pen-width-value")).to_have_text("18 px")
    stroke(page, ONE)  # a digit drawn first stays when the task changes
    page.get_by_label("Line of text").check()
    expect(page.locator("#canvas")).to_have_class("wide")
    expect(page.locator("#canvas-hint")).to_contain_text("line of text")
    expect(page.locator("#pen-width-value")).to_have_text("8 px")  # a fine pen for writing a sentence
    expect(page.locator("#profile-pick")).to_be_hidden()  # options of other tasks are hidden
    expect(page.locator("#page-options")).to_be_hidden()
    box = canvas_box(page)
    assert box["width"] >= 0.9 * page.locator("#canvas-frame").evaluate("el => el.closest('.panel').clientWidth") - 40
    height = float(page.locator("#canvas").get_attribute("data-height"))
    assert height >= 3 * 150  # room for three lines of writing
    for k in range(6):  # loops and verticals across the first line
        stroke(page, [(0.1 + 0.13 * k, 0.08), (0.1 + 0.13 * k, 0.28)])
        stroke(page, [(0.14 + 0.13 * k, 0.18), (0.2 + 0.13 * k, 0.28), (0.16 + 0.13 * k, 0.16)])
    expect(page.locator("#status")).to_contain_text("Read 1 line", timeout=PREDICTION_TIMEOUT_MS)
    page.click("#line-0-feedback-no")
    page.fill("#line-0-feedback-label", "a line of loops")
    page.press("#line-0-feedback-label", "Enter")
    expect(page.locator("#line-0-feedback-status")).to_contain_text("Thanks, saved")
    assert rows(app, "SELECT label FROM feedback") == [("a line of loops",)]
    stroke(page, [(0.1, 0.75), (0.3, 0.95)])  # writing in the last line makes room for another
    expect(page.locator("#canvas")).to_have_attribute("data-height", str(int(height + 150)))
    page.get_by_label("Digit").check()
    expect(page.locator("#canvas")).not_to_have_class("wide")
    expect(page.locator("#pen-width-value")).to_have_text("18 px")
    assert page.evaluate(PIXEL_JS, [0.5, 0.5])[0] < 128  # the digit is still there
    assert wait_for_answer(page) == "1"


def draw_sample(page, sample: dict) -> None:
    """Pen strokes given as fractions of the ``sample["canvas"]`` size, drawn at that scale from
    the top left of the line task's canvas (its width in canvas units may differ)."""
    width, height = (float(page.locator("#canvas").get_attribute(f"data-{k}")) for k in ("width", "height"))
    k = width / sample["canvas"][0]
    fy = sample["canvas"][1] * k / height
    draw_strokes(page, [[(x, y * fy) for x, y in points] for points in sample["strokes"]])


def draw_strokes(page, strokes: list) -> None:
    """Pen strokes (lists of points as fractions of the canvas box) drawn with the mouse."""
    box = canvas_box(page)
    for points in strokes:
        xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
        page.mouse.move(*xy[0])
        page.mouse.down()
        for x, y in xy[1:]:
            page.mouse.move(x, y)
        page.mouse.up()


def test_a_sentence_written_on_the_wide_canvas_is_read_by_the_shipped_model(page):
    """Real handwriting: the pen strokes of an IAM-OnDB writer-independent test line, drawn with the
    mouse on the line task's canvas, read by the shipped line model."""
    sample = json.loads((RESOURCES / "lines" / "strokes.json").read_text())
    page.get_by_label("Line of text").check()
    draw_sample(page, sample)
    with page.expect_response(lambda r: r.url.endswith("/submit")) as answer:
        page.click("#predict")
    body = answer.value.json()
    assert body["task"] == "line" and len(body["lines"]) == 1
    assert error_rates([sample["text"]], [body["raw_text"]])["cer"] <= 0.3, body["raw_text"]
    expect(page.locator("#line-list .line-text")).to_have_text([body["text"]])
    expect(page.locator("#boxes .box")).to_have_count(1)


@pytest.mark.skipif(
    not (Path(__file__).resolve().parent.parent / "models" / "weights" / "character" / "model.keras").exists(),
    reason="no character weights",
)
def test_alphabet_hint_and_spelling_switch(page):
    """The alphabet hint sits beside the task switch for characters and re-reads the drawing; the
    line task offers the spelling switch instead, and a line read without it says so."""
    expect(page.locator("#alphabet-pick")).to_be_hidden()
    page.get_by_label("Character").check()
    expect(page.locator("#alphabet-pick")).to_be_visible()
    expect(page.locator("#correct-pick")).to_be_hidden()
    ring = [(0.5 + 0.3 * math.cos(t / 20 * 6.4), 0.5 + 0.38 * math.sin(t / 20 * 6.4)) for t in range(21)]
    stroke(page, ring, steps=4)
    wait_for_answer(page)
    for hint, answer in (("digit", "0"), ("upper", "O"), ("lower", "o")):
        with page.expect_response(lambda r: r.url.endswith("/submit")) as response:
            page.select_option("#alphabet-select", hint)
        assert response.value.json()["alphabet"] == hint
        expect(page.locator("#result-text")).to_have_text(answer)
    page.get_by_label("Line of text").check()
    expect(page.locator("#alphabet-pick")).to_be_hidden()
    expect(page.locator("#correct-pick")).to_be_visible()
    sample = json.loads((RESOURCES / "lines" / "strokes.json").read_text())
    draw_sample(page, sample)
    expect(page.locator("#status")).to_contain_text("Read 1 line", timeout=PREDICTION_TIMEOUT_MS)

    def reread_without_spelling(r) -> bool:  # not a read of the drawing still on its way
        return r.url.endswith("/submit") and (r.request.post_data_json or {}).get("correct") == "false"

    with page.expect_response(reread_without_spelling) as response:
        page.get_by_label("Spelling correction").uncheck()
    body = response.value.json()
    assert body["corrected"] is False and body["text"] == body["raw_text"]
    expect(page.locator("#line-list .line-text")).to_have_text([body["text"]])


def fake_answer(text: str, probabilities: list[float], **extra) -> dict:
    labels = [text] + [str(d) for d in range(10) if str(d) != text][: len(probabilities) - 1]
    return {
        "task": "digit",
        "text": text,
        "confidence": probabilities[0],
        "unsure": False,
        "lookalikes": [],
        "candidates": [{"label": lb, "probability": p} for lb, p in zip(labels, probabilities, strict=True)],
        "model": {"name": "fake", "version": "0"},
    } | extra


def test_percentages_never_say_100_or_0(page):
    page.route("**/submit", lambda route: route.fulfill(json=fake_answer("7", [1.0, 0.0, 0.0, 0.0, 0.0])))
    stroke(page, SEVEN_BAR + SEVEN_LEG[1:])
    assert wait_for_answer(page) == "7"
    expect(page.locator("#result-confidence")).to_have_text(">99.9% confident")
    expect(page.locator(".candidate-prob").nth(1)).to_have_text("<0.1%")
    shown = page.locator("#result-panel").inner_text()
    assert "100.0%" not in shown and "0.0%" not in shown


def test_not_sure_reads_as_one_sentence_and_yes_confirms_the_guess(page, served_app):
    """The real answer, turned "not sure" on its way to the page: one sentence with the guess; Yes
    says "Yes, it is 7" and stores 7 as right; No asks for the label; Escape closes the form."""

    def unsure(route):
        body = route.fetch().json()
        message = "Not sure: this does not look like one handwritten character."
        route.fulfill(json=body | {"unsure": True, "text": "", "message": message})

    page.route("**/submit", unsure)
    stroke(page, SEVEN_BAR + SEVEN_LEG[1:])
    expect(page.locator("#result-text")).to_have_text(
        re.compile(r"^Not sure – best guess 7 \([<>]?\d+\.\d%\)$"), timeout=PREDICTION_TIMEOUT_MS
    )
    expect(page.locator("#result-note")).to_contain_text("does not look like one handwritten character")
    expect(page.locator("#feedback-yes")).to_have_text("Yes, it is 7")
    shoot(page, "not-sure-desktop")
    page.click("#feedback-no")
    expect(page.locator("#feedback-status")).to_contain_text("Type what it is")
    expect(page.locator("#feedback-label")).to_be_focused()
    page.press("#feedback-label", "Escape")
    expect(page.locator("#feedback-label")).to_be_hidden()
    expect(page.locator("#feedback-no")).to_be_focused()
    page.click("#feedback-yes")
    expect(page.locator("#feedback-status")).to_have_text("Thanks, saved: it is “7”.")
    last = "SELECT f.correct, f.label, p.predicted FROM feedback f JOIN predictions p ON p.id = f.prediction_id"
    assert rows(served_app[1], last + " ORDER BY f.id DESC")[0] == (1, "7", "7")


def test_history_survives_a_reload_and_its_feedback_can_be_changed(page, served_app):
    stroke(page, ONE)
    assert wait_for_answer(page) == "1"
    expect(page.locator("#history-list .history-item")).to_have_count(1)
    page.reload()
    item = page.locator("#history-list .history-item")
    expect(item).to_have_count(1)
    expect(item.locator(".history-text")).to_have_text("1")
    expect(item.locator(".history-meta")).to_contain_text("Digit · drawing")
    expect(item.locator(".history-meta")).to_contain_text("no feedback")
    assert item.locator(".history-thumb").get_attribute("src").startswith("data:image/png")
    item.locator("summary").click()
    item.get_by_role("button", name="No").click()
    item.get_by_label("The right answer").fill("7")
    item.get_by_label("The right answer").press("Enter")
    expect(page.locator("#history-list .history-meta")).to_contain_text("wrong, it is “7”")
    last = "SELECT f.correct, f.label, p.predicted FROM feedback f JOIN predictions p ON p.id = f.prediction_id"
    assert rows(served_app[1], last + " ORDER BY f.id DESC")[0] == (0, "7", "1")
    page.reload()
    expect(page.locator("#history-list .history-meta")).to_contain_text("wrong, it is “7”")
    page.click("#history-clear")
    expect(page.locator("#history-list .history-item")).to_have_count(0)
    expect(page.locator("#history-empty")).to_be_visible()
    page.reload()
    expect(page.locator("#history-list .history-item")).to_have_count(0)


def download_text(page, selector: str) -> tuple[str, str]:
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


def test_copy_and_downloads_carry_the_text(browser, base_url):
    context = browser.new_context(viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(base_url + "/")
        stroke(page, [(0.3, 0.2), (0.3, 0.8)])
        stroke(page, [(0.5, 0.3), (0.62, 0.22), (0.75, 0.3), (0.72, 0.45), (0.55, 0.75), (0.8, 0.75)])
        expect(page.locator("#result-text")).to_have_text("12", timeout=PREDICTION_TIMEOUT_MS)
        page.click("#copy-text")
        expect(page.locator("#status")).to_have_text("Text copied.")
        assert page.evaluate("navigator.clipboard.readText()") == "12"
        name, text = download_text(page, "#download-txt")
        assert name.endswith(".txt") and text == "12\n"
        name, text = download_text(page, "#download-json")
        answer = json.loads(text)
        assert name.endswith(".json") and answer["text"] == "12" and all(g["prediction_id"] for g in answer["glyphs"])
        name, text = download_text(page, "#download-csv")
        table = list(csv.DictReader(io.StringIO(text)))
        assert name.endswith(".csv") and [r["text"] for r in table] == ["1", "2"]
        assert table[0]["prediction_id"] == answer["glyphs"][0]["prediction_id"]
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_paragraph_upload_has_a_box_and_feedback_per_line(browser, served_app, viewport):
    """Each line of a photographed paragraph gets its box on the picture, its text, confidence and
    own Yes / No; a correction of line 2 is stored for line 2's prediction."""
    names = ["b01-059z-01.png", "d09-612z-08.png", "n05-541z-06.png", "n09-202z-05.png"]
    phone = viewport["width"] < 500
    context = browser.new_context(
        viewport=viewport,
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2,
        permissions=["clipboard-read", "clipboard-write"],
    )
    try:
        page = context.new_page()
        page.goto(served_app[0] + "/")
        page.get_by_label("Line of text").check()
        upload = {"name": "paragraph.jpg", "mimeType": "image/jpeg", "buffer": photographed_paragraph(names)}
        with page.expect_response(lambda r: r.url.endswith("/upload"), timeout=PREDICTION_TIMEOUT_MS) as answer:
            page.set_input_files("#file-input", upload)
        body = answer.value.json()
        assert len(body["lines"]) == 4
        expect(page.locator("#boxes .box")).to_have_count(4)
        expect(page.locator("#line-list .line-text")).to_have_text([line["text"] for line in body["lines"]])
        expect(page.locator("#line-list .feedback")).to_have_count(4)
        expect(page.locator("#result-panel")).to_be_focused()
        page.wait_for_function("() => document.querySelector('#boxed-picture').complete")
        for selector in ("#source", "#boxed-image"):
            assert_in_view_and_uncovered(page, selector)
        shoot(page, f"paragraph-{'phone' if phone else 'desktop'}")
        page.click("#line-1-feedback-no")
        expect(page.locator("#line-1-feedback-label")).to_have_value(body["lines"][1]["text"])  # to edit, not retype
        page.fill("#line-1-feedback-label", "a corrected second line")
        page.press("#line-1-feedback-label", "Enter")
        expect(page.locator("#line-1-feedback-status")).to_contain_text("Thanks, saved")
        pid = body["lines"][1]["prediction_id"]
        assert rows(served_app[1], f"SELECT correct, label FROM feedback WHERE prediction_id = '{pid}'") == [
            (0, "a corrected second line")
        ]
        page.click("#copy-text")
        assert page.evaluate("navigator.clipboard.readText()") == body["text"]
    finally:
        context.close()


CONTROLS_JS = """() => {
  const all = [...document.querySelectorAll('a[href], button, input, select, canvas, summary')];
  const shown = all.filter((el) => {
    if (el.disabled || el.closest('[hidden]')) return false;
    if (el.type === 'radio' && !el.checked) return false;  // a radio group is one tab stop
    const closed = el.closest('details:not([open])');
    if (closed && el !== closed.querySelector('summary')) return false;  // folded away until opened
    const r = el.getBoundingClientRect();
    return el.classList.contains('visually-hidden') || (r.width > 0 && r.height > 0);
  });
  shown.forEach((el, i) => { el.dataset.kb = String(i); });
  return shown.map((el) => el.id || el.textContent.trim().slice(0, 30) || el.tagName);
}"""


def test_keyboard_alone_reaches_every_control(page):
    stroke(page, ONE)
    assert wait_for_answer(page) == "1"
    controls = page.evaluate(CONTROLS_JS)
    assert {"canvas", "predict", "file-input", "feedback-yes", "copy-text", "download-json"} <= set(controls)
    reached = set()
    page.locator("body").focus()
    for _ in range(3 * len(controls)):
        page.keyboard.press("Tab")
        kb = page.evaluate("document.activeElement && document.activeElement.dataset.kb")
        if kb is not None:
            reached.add(int(kb))
        if len(reached) == len(controls):
            break
    missed = [controls[i] for i in range(len(controls)) if i not in reached]
    assert missed == []
    page.focus("#feedback-yes")
    page.keyboard.press("Enter")
    expect(page.locator("#feedback-status")).to_have_text("Thanks, saved.")


def test_the_page_runs_under_its_content_security_policy(browser, base_url):
    """No script, style or image of the page is blocked by the policy the server sends."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        response = page.goto(base_url + "/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        stroke(page, ONE)
        assert wait_for_answer(page) == "1"
        expect(page.locator("#input-28")).to_be_visible()  # a data: image, allowed by img-src
    finally:
        context.close()
    assert blocked == []
