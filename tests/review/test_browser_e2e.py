"""End to end on both store backends: an upload goes through the real functions (official SDKs over loopback:
MPS API double, the local stack's OSS-compatible server and local MNS) to a verdict, whose actions tag, quarantine
and privatise the object and announce it; the review page shows it in a real headless Chromium; a reviewer
dismisses it there; the tag, the ACL, the quarantine copy, the stored verdict and a new message follow."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.localstack.bucket import StoredObject, file_etag, oss_event
from engine.review.thumbnails import ThumbnailCache
from engine.synth import video as synth
from engine.wsgi import HttpLimits, WsgiServer
from shared import runtime as runtime_module
from shared.config import Settings
from shared.credentials import Credentials
from shared.mps import MpsClient, RetryPolicy
from shared.ports import ResultStore
from shared.review.app import TrustedLocalUser, create_app
from shared.runtime import Runtime, actions_for
from tests.functions.conftest import ROUTES, VIDEO_DB, context_for, handlers
from tests.support.fake_mps import FakeMps
from tests.verdicts.media import media_shot
from tests.verdicts.servers import ActionServers, action_servers

from .browser import chromium, require_chromium

__all__ = ["handlers"]

UPLOAD_KEY = "uploads/[draft] clip [red]x.mp4"
LIBRARY_KEY = "library/film.mp4"
# Block when at least half of the upload copies one item for 8 s or more (the clips here are short).
POLICIES = [
    {
        "name": "e2e",
        "library": VIDEO_DB,
        "rules": [
            {"name": "half-the-upload", "verdict": "block", "min_seconds": 8, "min_upload_share": 0.5},
            {"name": "partial", "verdict": "review", "min_seconds": 2},
        ],
    }
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "review-page.png"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("review-media")
    film = synth.make_video(root / "film.mp4", seed=31, seconds=20.0, size=(240, 180), fps=12.0)
    copy = synth.transform_video(film, root / "copy.mp4", [synth.Scale(200, 150)], start=6.0, seconds=10.0)
    return {"film": film, "copy": copy}


@pytest.fixture
def servers(tmp_path: Path, fake_mps: FakeMps) -> Iterator[ActionServers]:
    creds = fake_mps.credentials()
    with action_servers(tmp_path, {creds.access_key_id: creds.access_key_secret}) as wired:
        yield wired


@pytest.fixture
def fake_mps() -> Iterator[FakeMps]:
    server = FakeMps().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def runtime(
    fake_mps: FakeMps, store: ResultStore, servers: ActionServers, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """The functions' settings as template.yml gives them, pointed at the loopback servers."""
    env = {
        "FPSCREEN_ROUTES": json.dumps(ROUTES),
        "MPS_ENDPOINT": fake_mps.endpoint,
        "MPS_PIPELINE_ID": "pipe-0001",
        "FPSCREEN_STORE_URL": "injected://",
        "FPSCREEN_POLICIES": json.dumps(POLICIES),
        "FPSCREEN_OSS_ENDPOINT": servers.oss.endpoint,
        "FPSCREEN_MNS_ENDPOINT": servers.mns.endpoint,
        "FPSCREEN_VERDICT_TOPIC": "fpscreen-verdicts",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def factory(settings: Settings, credentials: Credentials | None) -> Runtime:
        assert credentials is not None
        client = MpsClient(credentials, region=settings.mps_region, endpoint=settings.mps_endpoint,
                           retry_policy=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))  # fmt: skip
        return Runtime(settings, store, client, actions_for(settings, credentials))

    runtime_module.use_factory(factory)
    try:
        yield runtime_module.get_runtime(context_for(fake_mps, "store_results"))
    finally:
        runtime_module.use_factory(None)


def _put(servers: ActionServers, source: Path, key: str) -> bytes:
    servers.bucket().put_object_from_file(key, str(source))
    stored = StoredObject(servers.bucket_name, key, file_etag(source), source.stat().st_size)
    return json.dumps(oss_event(stored, region="cn-shanghai", account_id="1234567890123456")).encode()


def _run(handlers: dict[str, Callable[[bytes, Any], str]], fake_mps: FakeMps, event: bytes) -> str:
    out = json.loads(handlers["submit_on_upload"](event, context_for(fake_mps, "submit_on_upload")))
    (outcome,) = out["outcomes"]
    return str(outcome["job_id"])


def _notify(handlers: dict[str, Callable[[bytes, Any], str]], fake_mps: FakeMps, job_id: str, text: str) -> None:
    body = text.replace("@JOB_ID@", job_id).encode()
    out = json.loads(handlers["store_results"](body, context_for(fake_mps, "store_results")))
    assert out["state"] == "Success", out


def test_upload_verdict_actions_review_page_and_dismissal(
    handlers: dict[str, Callable[[bytes, Any], str]],
    fake_mps: FakeMps,
    servers: ActionServers,
    runtime: Runtime,
    store: ResultStore,
    media: dict[str, Path],
    tmp_path: Path,
) -> None:
    require_chromium()
    envelope = (
        Path(__file__).resolve().parents[1] / "fixtures" / "events" / "mns_topic_json_envelope.json"
    ).read_text()

    # The library item, then the upload: the real submit_on_upload and store_results functions.
    library_job = _run(handlers, fake_mps, _put(servers, media["film"], LIBRARY_KEY))
    fake_mps.complete(library_job, duration=20)
    _notify(handlers, fake_mps, library_job, envelope)
    library = store.get_job(library_job)
    assert library is not None and library.save_type == "forcesave"

    upload_job = _run(handlers, fake_mps, _put(servers, media["copy"], UPLOAD_KEY))
    result = {
        "FpShots": {"FpShot": [media_shot(library.primary_key, 0.98, (0.0, 10.0, 6.0, 0.98))]},
        "AudioFpShots": {"FpShot": [media_shot(library.primary_key, 0.95, (0.5, 9.0, 6.5, 0.95))]},
    }
    from shared.contracts.mps import FpShotResult

    fake_mps.complete(upload_job, result=FpShotResult.model_validate(result), duration=10)
    _notify(handlers, fake_mps, upload_job, envelope)

    # The verdict and its actions.
    verdict = store.get_verdict(upload_job)
    assert verdict is not None and (verdict.verdict, verdict.rule, verdict.final_verdict) == (
        "block",
        "half-the-upload",
        "block",
    )
    assert verdict.evidence["items"][0]["library_share"] == 0.5  # 10 s of the 20 s film
    bucket = servers.bucket()
    assert bucket.get_object_tagging(UPLOAD_KEY).tag_set.tagging_rule == {"fpscreen-verdict": "block"}
    assert bucket.get_object(f"quarantine/{UPLOAD_KEY}").read() == media["copy"].read_bytes()
    assert bucket.get_object_acl(UPLOAD_KEY).acl == "private"
    (announced,) = servers.verdict_messages(1)
    assert (announced["Verdict"], announced["Object"], announced["Rule"]) == ("block", UPLOAD_KEY, "half-the-upload")

    # The review page, with thumbnails cut from local copies of the two objects.
    local = tmp_path / "oss" / servers.bucket_name
    for key, source in ((UPLOAD_KEY, media["copy"]), (LIBRARY_KEY, media["film"])):
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, local / key)
    thumbnails = ThumbnailCache(lambda b, k: tmp_path / "oss" / b / k, tmp_path / "thumbs")
    app = create_app(
        store,
        policies=runtime.settings.policies,
        auth=TrustedLocalUser("ana"),
        actions=runtime.actions,
        thumbnails=thumbnails,
    )
    server = WsgiServer(app, "127.0.0.1", 0, limits=HttpLimits(threads=4), name="review-test").start()
    try:
        with chromium(tmp_path / "chromium-profile") as browser:
            _review_in_browser(browser, f"http://127.0.0.1:{server.port}", upload_job, tmp_path)
    finally:
        server.stop()

    # The dismissal flowed back: stored verdict, tag, ACL, quarantine copy, and a new message.
    after = store.get_verdict(upload_job)
    assert after is not None and (after.final_verdict, after.review_decision, after.reviewer) == (
        "allow",
        "dismiss",
        "ana",
    )
    assert after.verdict == "block" and after.reviewed_at > 0
    assert bucket.get_object_tagging(UPLOAD_KEY).tag_set.tagging_rule == {"fpscreen-verdict": "allow"}
    assert bucket.get_object_acl(UPLOAD_KEY).acl == "default"
    assert not bucket.object_exists(f"quarantine/{UPLOAD_KEY}")
    (dismissed,) = servers.verdict_messages(1)
    assert (dismissed["Verdict"], dismissed["ReviewDecision"], dismissed["Reviewer"]) == ("allow", "dismiss", "ana")


def _review_in_browser(browser: Any, base: str, job_id: str, tmp_path: Path) -> None:
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    browser.get(base + "/")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]')
    link = row.find_element(By.CSS_SELECTOR, "a.upload")
    assert link.text == UPLOAD_KEY  # the name, brackets and all, as text
    assert row.find_element(By.CSS_SELECTOR, ".badge").text == "block"
    link.click()

    # Navigation is asynchronous: an element read while the old document unloads is "not in the document"
    # (a WebDriverException), so the new page is awaited, not assumed.
    settling = (NoSuchElementException, StaleElementReferenceException, WebDriverException)
    WebDriverWait(browser, 20, ignored_exceptions=settling).until(
        lambda b: b.find_element(By.ID, "upload-name").text == UPLOAD_KEY
    )
    assert browser.find_element(By.ID, "final-verdict").text == "block"
    lanes = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".lane-label")]
    assert lanes == ["soundtrack", "pictures"]
    images = browser.find_elements(By.CSS_SELECTOR, ".pair img")
    assert len(images) == 4  # upload and library frames for each of the two aligned slices
    script = "return Array.from(document.querySelectorAll('.pair img')).map(i => i.complete && i.naturalWidth)"
    WebDriverWait(browser, 20, ignored_exceptions=settling).until(
        lambda b: all(width and width > 0 for width in b.execute_script(script))
    )
    shot = tmp_path / "review-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("FPSCREEN_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    browser.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys("licensed: contract 42")
    before = browser.find_element(By.ID, "final-verdict")
    browser.find_element(By.ID, "decide-dismiss").click()
    # The form posts and redirects to the detail page: wait for the old page to go, then for the new one.
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(before))
    WebDriverWait(browser, 20, ignored_exceptions=settling).until(
        lambda b: b.find_element(By.ID, "final-verdict").text == "allow"
    )
    assert "dismiss by ana" in browser.find_element(By.ID, "review-decision").text
