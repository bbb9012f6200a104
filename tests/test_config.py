from __future__ import annotations

import json

import pytest

from shared.config import ConfigError, Settings

ROUTES = [
    {"prefix": "library/", "fp_db_id": "lib-video", "save_type": "forcesave"},
    {"prefix": "uploads/", "suffixes": [".MP4", ".mov"], "fp_db_id": "lib-video", "save_type": "nosave"},
    {"prefix": "uploads/", "suffixes": [".txt", ".srt"], "fp_db_id": "lib-text", "text_type": "auto"},
]


def test_routes_from_env() -> None:
    settings = Settings.from_env({"FPSCREEN_ROUTES": json.dumps(ROUTES), "MPS_REGION": "cn-beijing"})
    assert settings.mps_region == "cn-beijing"
    assert [r.fp_db_id for r in settings.routes_for("uploads/a.mp4")] == ["lib-video"]
    assert [r.save_type for r in settings.routes_for("library/x/y.mkv")] == ["forcesave"]
    assert settings.routes_for("other/a.mp4") == []
    assert settings.routes_for("library/folder/") == []  # folder markers are not media
    text = settings.routes_for("uploads/sub.SRT")[0]
    assert text.text_type_for("uploads/sub.srt") == "ASR"
    assert text.text_type_for("uploads/a.txt") == "Text"


@pytest.mark.parametrize(
    "env",
    [
        {"FPSCREEN_ROUTES": "[{"},
        {"FPSCREEN_ROUTES": '[{"prefix": "a/", "save_type": "keep"}]'},
        {"FPSCREEN_ROUTES": '[{"prefix": "a/", "unknown": 1}]'},
        {"FPSCREEN_MPS_QPS": "0"},
    ],
)
def test_bad_settings_are_clear(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)
