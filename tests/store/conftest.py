"""Store fixtures: the same `store` fixture runs every behavioural test on SQLite (a file in tmp_path) and
on Tablestore (the real adapter over the in-memory fake OTSClient, with small pages so scans paginate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.ports import ResultStore
from shared.store.sqlite import SqliteStore
from shared.store.tablestore import TablestoreStore, create_tables

from .fake_ots import FakeOTSClient

PAGE_SIZE = 7  # rows per get_range page in the fake: every multi-row read crosses pages


@pytest.fixture
def fake_ots() -> FakeOTSClient:
    client = FakeOTSClient(page_size=PAGE_SIZE)
    create_tables(client)
    return client


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "fp.db"


@pytest.fixture(params=["sqlite", "tablestore"])
def store(request: pytest.FixtureRequest, sqlite_path: Path) -> Iterator[ResultStore]:
    if request.param == "sqlite":
        sqlite = SqliteStore(sqlite_path)
        yield sqlite
        sqlite.close()
    else:
        yield TablestoreStore(request.getfixturevalue("fake_ots"), sleep=lambda _: None)
