"""Fixtures for the MPS tests: the fake endpoint (`fake_mps`), a fake clock, the client kinds."""

from __future__ import annotations

import pytest

from tests.support.fake_mps import fake_mps

from .helpers import CLIENT_KINDS, FakeClock

__all__ = ["fake_mps"]  # re-exported fixture


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=CLIENT_KINDS)
def client_kind(request: pytest.FixtureRequest) -> str:
    """Every test using this runs against the CoreSDK client and the Tea client in both signature styles."""
    return str(request.param)
