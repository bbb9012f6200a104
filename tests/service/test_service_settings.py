"""`EngineSettings`: built from CLI options and the environment in one place, frozen once built."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.localstack.stack import StackPaths, StackSettings
from engine.service.app import LOCAL_ACCESS_KEY_ID, EngineSettings
from shared.credentials import Credentials


def test_from_env_fills_what_options_leave_open(tmp_path: Path) -> None:
    env = {
        "FPSCREEN_DATA_DIR": str(tmp_path / "data"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "env-ak",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-sk",
    }
    settings = EngineSettings.from_env(env, port=0, workers=3)
    assert settings.data_dir == tmp_path / "data"
    assert settings.oss_root == tmp_path / "data" / "oss"
    assert dict(settings.credentials) == {"env-ak": "env-sk"}
    assert (settings.port, settings.workers) == (0, 3)

    env["FPSCREEN_OSS_ROOT"] = str(tmp_path / "buckets")
    explicit = EngineSettings.from_env(env, data_dir=tmp_path / "cli", credentials={"cli-ak": "cli-sk"})
    assert explicit.data_dir == tmp_path / "cli"  # an option beats the environment
    assert explicit.oss_root == tmp_path / "buckets"
    assert dict(explicit.credentials) == {"cli-ak": "cli-sk"}


def test_defaults_and_normalisation(tmp_path: Path) -> None:
    settings = EngineSettings.from_env({})
    assert settings.data_dir == Path("~/.fpscreen").expanduser()
    assert list(settings.credentials) == [LOCAL_ACCESS_KEY_ID]
    assert dict(EngineSettings(tmp_path, tmp_path, credentials=Credentials("a", "b")).credentials) == {"a": "b"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_stack_settings_configure_mns_and_engine_alike(tmp_path: Path) -> None:
    stack = StackSettings(StackPaths.under(tmp_path), host="127.0.0.1", engine_workers=4, mns_retry_scale=0.5)
    mns, engine = stack.mns_settings(), stack.engine_settings("http://127.0.0.1:1")
    assert mns.credentials == engine.credentials  # the functions sign for both with one key pair
    assert mns.db_path == stack.paths.mns and engine.data_dir == stack.paths.engine
    assert engine.workers == 4 and engine.mns_endpoint == "http://127.0.0.1:1"
    assert mns.retry_policy.backoff_delay == (5.0, 10.0)
