"""Browser security (issue 15 item 5): a Content-Security-Policy without inline script and the
other headers on every answer, and state-changing requests from another site's page refused."""

from __future__ import annotations

from feedback.wiring import store
from tests.helpers import SEVEN_URL, make_app


def test_every_answer_carries_the_security_headers(client):
    for resp in (client.get("/"), client.get("/healthz"), client.post("/upload", data={}), client.get("/nowhere")):
        policy = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin" and resp.headers["X-Frame-Options"] == "DENY"


def test_the_page_has_no_inline_script_or_style(client):
    html = client.get("/").get_data(as_text=True)
    scripts = html.split("<script")[1:]
    assert scripts and all(" src=" in s.split(">", 1)[0] for s in scripts)  # every script is a file
    assert " style=" not in html and "<style" not in html and " onclick=" not in html.lower()


def test_state_changes_from_another_sites_page_are_refused_before_any_work(app, client):
    with app.app_context():
        before = store().counts()["predictions"]
    for origin in ("http://evil.example", "null", "http://localhost.evil.example", "not a url"):
        resp = client.post("/submit", json={"image": SEVEN_URL}, headers={"Origin": origin})
        assert resp.status_code == 403, origin
        assert resp.get_json()["error"]["code"] == "cross_origin"
        feedback = client.post(
            "/feedback", json={"prediction_id": "x" * 32, "correct": True}, headers={"Origin": origin}
        )
        assert feedback.status_code == 403
    with app.app_context():
        assert store().counts()["predictions"] == before  # nothing was read or stored
    # reading is not a state change: another site may link to the page
    assert client.get("/", headers={"Origin": "http://evil.example"}).status_code == 200


def test_the_own_page_scripts_and_listed_origins_pass(tmp_path, client):
    assert client.post("/submit", json={"image": SEVEN_URL}, headers={"Origin": "http://localhost"}).status_code == 200
    assert (
        client.post("/submit", json={"image": SEVEN_URL}, headers={"Origin": "https://LOCALHOST/"}).status_code == 200
    )
    assert client.post("/submit", json={"image": SEVEN_URL}).status_code == 200  # curl, the API, no browser
    listed = make_app(tmp_path, ALLOWED_ORIGINS=["https://forms.example.org"]).test_client()
    ok = listed.post("/submit", json={"image": SEVEN_URL}, headers={"Origin": "https://forms.example.org"})
    assert ok.status_code == 200
    other = listed.post("/submit", json={"image": SEVEN_URL}, headers={"Origin": "https://other.example.org"})
    assert other.status_code == 403
