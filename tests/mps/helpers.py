"""Helpers for the MPS tests: a fake clock, client factories for both SDKs, a valid submit request."""

from __future__ import annotations

from typing import Any

import pytest

from shared.contracts.mps import FpShotConfig, InputFile, SubmitFpShotJobRequest
from shared.mps import MpsClient, RetryPolicy, TeaMpsClient, Unlimited
from tests.support.fake_mps import FakeMps

CLIENT_KINDS = ("core", "tea-v3", "tea-v1")


class FakeClock:
    """A clock that only moves when slept on; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def _no_real_sleep(seconds: float) -> None:
    pytest.fail(f"unexpected sleep({seconds}) on the real clock")


def make_client(kind: str, server: FakeMps, **kwargs: Any) -> MpsClient | TeaMpsClient:
    """A client of `kind` aimed at `server`: no rate limit, one attempt, no real sleeps unless overridden."""
    kwargs.setdefault("rate_limiter", Unlimited())
    kwargs.setdefault("retry_policy", RetryPolicy(max_attempts=1, deadline=None))
    kwargs.setdefault("sleep", _no_real_sleep)
    credentials = kwargs.pop("credentials", None) or server.credentials()
    endpoint = kwargs.pop("endpoint", None) or server.url
    if kind == "core":
        return MpsClient(credentials, endpoint=endpoint, **kwargs)
    signature = "v1" if kind == "tea-v1" else "v3"
    return TeaMpsClient(credentials, endpoint=endpoint, signature=signature, **kwargs)


def submit_request(**overrides: Any) -> SubmitFpShotJobRequest:
    fields: dict[str, Any] = {
        "input": InputFile(bucket="example-bucket", location="oss-cn-shanghai", object="uploads/a clip+1 ~*.mp4"),
        "fp_shot_config": FpShotConfig(primary_key="video 001", save_type="save", fp_db_id="db-1"),
        "pipeline_id": "pipe-1",
        "user_data": "upload 42",
    }
    fields.update(overrides)
    return SubmitFpShotJobRequest(**fields)
