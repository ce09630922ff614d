"""Observability: /metrics in the Prometheus text format (admin token), request ids in headers,
error bodies and JSON log lines (issue 15 item 7). Counters are per process and shared by every
app a test makes, so the tests compare counts before and after."""

from __future__ import annotations

import io
import json
import logging
import re

from prometheus_client.parser import text_string_to_metric_families

from models.registry import WEIGHTS_DIR
from tests.helpers import SEVEN_URL, make_app
from web import logs

TOKEN = "metrics-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """``/metrics`` as {(sample name, labels): value}."""
    resp = client.get("/metrics", headers=AUTH)
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")
    families = text_string_to_metric_families(resp.get_data(as_text=True))
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    """The sample ``name`` whose labels include ``labels`` (summed over the rest; 0 when absent)."""
    want = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and want <= got)


def test_metrics_need_the_admin_token(tmp_path):
    client = make_app(tmp_path, ADMIN_TOKEN=TOKEN).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        resp = client.get("/metrics", headers=headers)
        assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"
    no_token = make_app(tmp_path).test_client()  # none configured: nobody reads them
    assert no_token.get("/metrics", headers=AUTH).status_code == 403


def test_requests_latency_and_errors_are_counted_per_route_and_task(tmp_path):
    client = make_app(tmp_path, ADMIN_TOKEN=TOKEN).test_client()
    before = scrape(client)
    assert client.post("/submit", json={"image": SEVEN_URL, "task": "digit"}).status_code == 200
    assert client.post("/upload", data={"task": "digit"}).status_code == 400  # no file
    assert client.post("/submit", json={"image": SEVEN_URL, "task": "x" * 5000}).status_code == 400
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("hwr_requests_total", route="/submit", method="POST", task="digit", status="200") == 1
    assert grew("hwr_request_duration_seconds_count", route="/submit", task="digit") == 1
    assert grew("hwr_request_duration_seconds_sum", route="/submit", task="digit") > 0
    assert grew("hwr_errors_total", route="/upload", code="no_file") == 1
    # a task nobody serves is counted as "other": clients cannot make new series
    assert grew("hwr_requests_total", route="/submit", task="other", status="400") == 1
    assert not any("x" * 100 in str(labels) for _, labels in after)
    assert value(after, "hwr_requests_in_progress", route="/submit") == 0


def test_scrape_reports_models_sheets_and_jobs(tmp_path):
    client = make_app(tmp_path, ADMIN_TOKEN=TOKEN).test_client()
    client.post("/submit", json={"image": SEVEN_URL, "task": "digit"})
    samples = scrape(client)
    digit = [dict(labels) for name, labels in samples if name == "hwr_model_info" and dict(labels)["model"] == "digit"]
    shipped = json.loads((WEIGHTS_DIR / "digit" / "meta.json").read_text())["version"]
    assert digit == [{"model": "digit", "version": shipped}]
    assert value(samples, "hwr_sheets_configured") == 0
    assert value(samples, "hwr_sheets_pending_rows") == 0
    assert value(samples, "hwr_teach_jobs", state="queued") == 0


def test_the_request_id_is_echoed_or_made_and_is_in_error_bodies(client):
    given = client.post("/upload", data={}, headers={"X-Request-ID": "req-42.a"})
    assert given.headers["X-Request-ID"] == "req-42.a" and given.get_json()["error"]["request_id"] == "req-42.a"
    for bad in ("has spaces", "x" * 65, "<script>", "é"):
        resp = client.post("/upload", data={}, headers={"X-Request-ID": bad})
        made = resp.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", made) and resp.get_json()["error"]["request_id"] == made
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/healthz").headers["X-Request-ID"])  # every answer has one


def test_log_lines_are_json_with_the_request_id(tmp_path):
    (tmp_path / "digit").mkdir()  # a broken model: answering logs "model unavailable"
    (tmp_path / "digit" / "model.keras").write_bytes(b"not a model")
    (tmp_path / "digit" / "meta.json").write_text('{"preprocessing_version": "0", "labels": []}')
    app = make_app(tmp_path, WEIGHTS_DIR=str(tmp_path))
    stream = io.StringIO()
    handler = logs.handler(stream)
    app.logger.addHandler(handler)
    try:
        resp = app.test_client().post("/submit", json={"image": SEVEN_URL}, headers={"X-Request-ID": "trace-1"})
    finally:
        app.logger.removeHandler(handler)
    assert resp.status_code == 503
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all(set(line) >= {"time", "level", "logger", "request_id", "message"} for line in lines)
    unavailable = [line for line in lines if line["message"].startswith("model unavailable")]
    assert unavailable and unavailable[0]["request_id"] == "trace-1" and unavailable[0]["level"] == "ERROR"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[0]["time"])


def test_log_lines_outside_a_request_say_so():
    stream = io.StringIO()
    logger = logging.getLogger("hwr-test-outside")
    logger.addHandler(logs.handler(stream))
    logger.warning("starting %s", "up")
    line = json.loads(stream.getvalue())
    assert line["request_id"] == logs.NO_REQUEST and line["message"] == "starting up"
