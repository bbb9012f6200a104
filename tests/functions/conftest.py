"""The three functions, end to end: fixture events → handler → real SDK over loopback → fake MPS; results in
each store backend (SQLite file, Tablestore on the in-memory OTSClient fake)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from engine.localstack.fc_context import FcContext, fc_context
from shared import runtime as runtime_module
from shared.config import Settings
from shared.credentials import Credentials
from shared.mps import MpsClient, RetryPolicy
from shared.ports import ResultStore
from shared.runtime import Runtime
from shared.store.sqlite import SqliteStore
from shared.store.tablestore import TablestoreStore, create_tables
from tests.store.fake_ots import FakeOTSClient
from tests.support.fake_mps import FakeMps

ROOT = Path(__file__).resolve().parents[2]
VIDEO_DB = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
TEXT_DB = "0f9e8d7c6b5a49382716f5e4d3c2b1a0"
ROUTES = [
    {"prefix": "library/", "fp_db_id": VIDEO_DB, "save_type": "forcesave"},
    {"prefix": "uploads/", "suffixes": [".mp4", ".mov", ".mkv"], "fp_db_id": VIDEO_DB, "save_type": "nosave"},
    {
        "prefix": "uploads/",
        "suffixes": [".txt", ".srt"],
        "fp_db_id": TEXT_DB,
        "save_type": "nosave",
        "text_type": "auto",
    },
]


def load_handler(name: str) -> ModuleType:
    """Import `functions/<name>/index.py` by path, as FC does with CodeUri + Handler."""
    spec = importlib.util.spec_from_file_location(f"fc_{name}", ROOT / "functions" / name / "index.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def handlers() -> dict[str, Callable[[bytes, Any], str]]:
    return {name: load_handler(name).handler for name in ("submit_on_upload", "store_results", "report_failed")}


@pytest.fixture
def fake_mps() -> Iterator[FakeMps]:
    server = FakeMps().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "tablestore"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ResultStore:
    if request.param == "sqlite":
        return SqliteStore(str(tmp_path / "results.db"))
    client = FakeOTSClient(page_size=7)  # small pages: every scan the functions do crosses a page
    create_tables(client)
    return TablestoreStore(client, sleep=lambda _: None)


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff delays the MPS client asked for (recorded, not slept)."""
    return []


@pytest.fixture
def wired(
    fake_mps: FakeMps, store: ResultStore, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    """Install env + a runtime factory: the handlers see the fake MPS through the official SDK."""
    monkeypatch.setenv("FPSCREEN_ROUTES", json.dumps(ROUTES))
    monkeypatch.setenv("MPS_ENDPOINT", fake_mps.endpoint)
    monkeypatch.setenv("MPS_PIPELINE_ID", "pipe-0001")
    monkeypatch.setenv("FPSCREEN_STORE_URL", "injected://")
    built: list[Runtime] = []

    def factory(settings: Settings, credentials: Credentials | None) -> Runtime:
        assert credentials is not None
        client = MpsClient(
            credentials,
            region=settings.mps_region,
            endpoint=settings.mps_endpoint,
            retry_policy=RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=2.0),
            sleep=sleeps.append,
        )
        runtime = Runtime(settings, store, client)
        built.append(runtime)
        return runtime

    runtime_module.use_factory(factory)
    try:
        yield runtime_module.get_runtime(context_for(fake_mps, "submit_on_upload"))
    finally:
        runtime_module.use_factory(None)


def context_for(fake_mps: FakeMps, function: str, *, timeout: int = 60) -> FcContext:
    creds = fake_mps.credentials()
    return fc_context(
        function,
        timeout=timeout,
        access_key_id=creds.access_key_id,
        access_key_secret=creds.access_key_secret,
    )
