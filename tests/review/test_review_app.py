"""The review page's WSGI app (Flask test client) on both store backends: authentication, the list and its
filters, escaping, the detail view's evidence, and decisions that need the reviewer's form token."""

from __future__ import annotations

import base64
import re

import pytest
from flask.testing import FlaskClient

from shared.ports import ResultStore
from shared.review.app import BasicAuth, create_app, password_hash

from .conftest import NASTY_KEY, fill

AUTH = {"Authorization": "Basic " + base64.b64encode(b"ana:s3cret").decode()}


@pytest.fixture
def client(store: ResultStore) -> FlaskClient:
    fill(store)
    app = create_app(store, policies=[], auth=BasicAuth({"ana": password_hash("s3cret")}), secret=b"k")
    return app.test_client()


def _token(html: str) -> str:
    match = re.search(r'name="token" value="([0-9a-f]+)"', html)
    assert match
    return match.group(1)


def test_every_page_needs_a_reviewer(client: FlaskClient) -> None:
    assert client.get("/").status_code == 401
    assert client.get("/").headers["WWW-Authenticate"].startswith("Basic")
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ana:nope").decode()}
    assert client.get("/", headers=wrong).status_code == 401
    assert client.get("/", headers={"Authorization": "Basic !!!"}).status_code == 401
    assert client.post("/jobs/job-copy/decision", data={"decision": "dismiss"}).status_code == 401
    assert client.get("/", headers=AUTH).status_code == 200


def test_the_list_shows_verdicts_escaped_with_filters(client: FlaskClient) -> None:
    html = client.get("/", headers=AUTH).get_data(as_text=True)
    assert "uploads/x[/x]y &lt;b&gt;bold&lt;/b&gt;.mp4" in html and "<b>bold</b>" not in html
    assert html.count('<tr data-job="') == 4  # the library item gets no verdict
    assert 'class="badge block">block' in html and "full-copy" in html and "75% of upload" in html
    review = client.get("/?verdict=review", headers=AUTH).get_data(as_text=True)
    assert review.count('<tr data-job="') == 2 and "job-partial" in review and "job-essay" in review
    dated = client.get("/?from=2026-05-01&to=2026-05-31", headers=AUTH).get_data(as_text=True)
    assert "job-copy" not in dated and dated.count('<tr data-job="') == 3
    assert client.get("/?library=nope", headers=AUTH).get_data(as_text=True).count('<tr data-job="') == 0


def test_the_detail_view_shows_the_evidence_timeline_and_marked_text(client: FlaskClient) -> None:
    html = client.get("/jobs/job-copy", headers=AUTH).get_data(as_text=True)
    assert NASTY_KEY.replace("<", "&lt;").replace(">", "&gt;") in html
    assert "45.0 s of the upload (75%)" in html and "library/film.mp4" in html
    assert "38% of the item" in html  # 45 of the library item's 120 s
    assert html.count('class="bar video"') == 1 and html.count('class="bar audio"') == 1
    assert "upload 22.5s ↔ library 32.5s" in html  # no thumbnail source: the aligned times as text
    essay = client.get("/jobs/job-essay", headers=AUTH).get_data(as_text=True)
    assert "<mark>It was the best of </mark>tmes," in essay  # the typo is not marked as copied
    assert "<mark>It was the best of </mark>times," in essay
    assert client.get("/jobs/nope", headers=AUTH).status_code == 404


def test_a_decision_needs_the_form_token_and_is_recorded(client: FlaskClient, store: ResultStore) -> None:
    token = _token(client.get("/jobs/job-copy", headers=AUTH).get_data(as_text=True))
    forged = client.post("/jobs/job-copy/decision", headers=AUTH, data={"decision": "dismiss", "token": "0" * 64})
    assert forged.status_code == 403
    assert (
        client.post("/jobs/job-copy/decision", headers=AUTH, data={"decision": "x", "token": token}).status_code == 400
    )
    done = client.post(
        "/jobs/job-copy/decision", headers=AUTH, data={"decision": "dismiss", "token": token, "note": "licensed"}
    )
    assert done.status_code == 303 and done.headers["Location"].endswith("/jobs/job-copy")
    record = store.get_verdict("job-copy")
    assert record is not None and (record.final_verdict, record.reviewer, record.review_note) == (
        "allow",
        "ana",
        "licensed",
    )
    html = client.get("/jobs/job-copy", headers=AUTH).get_data(as_text=True)
    assert 'id="final-verdict">allow' in html and "dismiss</b> by ana" in html
