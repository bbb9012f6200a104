"""The review function: FC's HTTP trigger calls `handler(environ, start_response)`; reviewers sign in with HTTP
Basic against FPSCREEN_REVIEWERS, and the page reads the functions' store."""

from __future__ import annotations

import base64
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from engine.localstack.fc_context import fc_context
from shared import runtime as runtime_module
from shared.ports import ResultStore
from shared.review.app import password_hash
from shared.runtime import Runtime

from .conftest import NASTY_KEY, fill

ROOT = Path(__file__).resolve().parents[2]


def _handler() -> Callable[..., Any]:
    spec = importlib.util.spec_from_file_location("fc_review", ROOT / "functions" / "review" / "index.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler  # type: ignore[no-any-return]


@pytest.fixture
def client(store: ResultStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    fill(store)
    monkeypatch.setenv("FPSCREEN_STORE_URL", "injected://")
    monkeypatch.setenv("FPSCREEN_REVIEWERS", json.dumps({"ana": password_hash("s3cret")}))
    monkeypatch.setenv("FPSCREEN_REVIEW_SECRET", "shared-by-all-instances")
    runtime_module.use_factory(lambda settings, creds: Runtime(settings, store, mps=None))  # type: ignore[arg-type]
    context = fc_context("review", access_key_id="ak", access_key_secret="sk")
    handler = _handler()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["fc.context"] = context  # as FC passes it to an HTTP function
        return handler(environ, start_response)

    try:
        yield Client(app)
    finally:
        runtime_module.use_factory(None)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_function_serves_the_page_to_signed_in_reviewers_only(client: Client) -> None:
    assert client.get("/").status_code == 401
    assert client.get("/", headers=_basic("ana", "wrong")).status_code == 401
    page = client.get("/", headers=_basic("ana", "s3cret"))
    assert page.status_code == 200
    assert NASTY_KEY.replace("<", "&lt;").replace(">", "&gt;") in page.get_data(as_text=True)


def test_unusable_reviewer_configuration_is_refused() -> None:
    from shared.config import ConfigError
    from shared.review.function import _reviewers

    assert _reviewers("") == {}
    with pytest.raises(ConfigError):
        _reviewers('{"ana": "plaintext"}')
    with pytest.raises(ConfigError):
        _reviewers("{")
