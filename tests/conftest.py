"""Suite-wide fixtures: real event fixtures (Powertools-style) and the spec's seed documents."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
# The MPS API pages the project started from, kept here so a fresh clone needs nothing beside it.
SPEC = FIXTURES / "mps_docs"
# The team's shared copy, when a checkout sits beside it: only used to notice drift.
SHARED_SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"


def load_event_text(name: str, **substitutions: str) -> str:
    text = (FIXTURES / "events" / name).read_text(encoding="utf-8")
    for key, value in substitutions.items():
        text = text.replace(f"@{key.upper()}@", value)
    return text


@pytest.fixture
def event_text() -> Callable[..., str]:
    """`event_text("oss_put_object.json", job_id="...")`: a fixture file with @PLACEHOLDERS@ filled in."""
    return load_event_text


@pytest.fixture
def event_json() -> Callable[..., Any]:
    return lambda name, **subs: json.loads(load_event_text(name, **subs))


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    return SPEC


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start building the oldest-Python environment now if its test is selected: it then overlaps the suite."""
    if any(item.nodeid.startswith("tests/test_oldest_python.py::test_handler") for item in items):
        from tests.support.oldest_python import start_building

        start_building()
