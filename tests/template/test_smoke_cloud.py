"""scripts/smoke_cloud.py, the check a user runs against their own deployment, run here against the local stack
(so it cannot rot) and, for its cloud path, against the loopback OSS shim and the ROS stand-in."""

from __future__ import annotations

import importlib.util
import io
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console
from typer.testing import CliRunner

from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.oss_compat import OssCompatServer
from engine.localstack.results import ScreeningResult
from engine.localstack.stack import LocalStack, StackPaths, StackSettings
from shared.credentials import Credentials
from shared.store.sqlite import SqliteStore
from tests.support.fake_ros import AK, SK, FakeRos

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fpscreen_scripts_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke() -> ModuleType:
    return _load("smoke_cloud")


def test_smoke_passes_against_the_local_stack(smoke: ModuleType, tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = StackSettings(StackPaths.under(data), retry=RetrySchedule(base=0.2, cap=2.0), mns_retry_scale=0.01)
    with LocalStack(settings):
        args = ["--local-data-dir", str(data), "--poll-seconds", "0.2", "--timeout", "120"]
        result = CliRunner().invoke(smoke.app, [*args, "--work-dir", str(tmp_path / "samples")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "PASS: 3 uploads" in result.output
    rows = [line for line in result.output.splitlines() if "uploads/fpscreen-smoke/" in line and "clean" in line]
    assert len(rows) == 3, result.output  # video, audio and text each screened clean (fresh content)
    stored = {job.object_key for job in SqliteStore(StackPaths.under(data).results).recent_jobs(10)}
    assert {k.rsplit("/", 1)[1] for k in stored} == {"clip.mp4", "song.mp3", "notes.txt"}


def test_report_fails_on_failed_missing_and_pending(smoke: ModuleType) -> None:
    keys = {"video": "uploads/v.mp4", "audio": "uploads/a.mp3", "text": "uploads/t.txt"}
    rows = {
        "uploads/v.mp4": ScreeningResult("uploads/v.mp4", "j1", "Success", "clean", "nosave"),
        "uploads/a.mp3": ScreeningResult("uploads/a.mp3", "j2", "Fail", "failed", "nosave", code="InvalidInput"),
    }
    out = io.StringIO()
    assert smoke.report(keys, rows, Console(file=out, width=200), 3.0) is False
    text = out.getvalue()
    assert "InvalidInput" in text and "missing" in text and "FAIL: 3 uploads" in text
    rows["uploads/a.mp3"] = ScreeningResult("uploads/a.mp3", "j2", "Success", "copy", "nosave")
    rows["uploads/t.txt"] = ScreeningResult("uploads/t.txt", "j3", "Analysing", "pending", "nosave")
    assert smoke.report(keys, rows, Console(file=io.StringIO()), 3.0) is False
    rows["uploads/t.txt"] = ScreeningResult("uploads/t.txt", "j3", "Success", "clean", "nosave")
    assert smoke.report(keys, rows, Console(file=io.StringIO()), 3.0) is True


def test_cloud_path_uploads_through_oss_and_reads_the_stack(smoke: ModuleType, tmp_path: Path) -> None:
    deploy = _load("deploy")
    with OssCompatServer() as oss, FakeRos() as fake:
        bucket = oss.bucket(f"media-{uuid.uuid4().hex[:12]}")
        bucket.create_bucket()
        params = {"MediaBucketName": bucket.bucket_name, "MpsPipelineId": "p", "LibraryFpDBId": "l"}
        params |= {"TextLibraryFpDBId": "t", "AudioLibraryFpDBId": "a", "ZoneId": "cn-shanghai-e"}
        params |= {"ReviewSecret": "0123456789abcdef0123"}
        args = ["--ros-endpoint", fake.endpoint, "--oss-endpoint", oss.endpoint, "--poll-seconds", "0.01"]
        args += ["--skip-deps", "--build-dir", str(tmp_path / "build"), "--no-retention"]
        for name, value in params.items():
            args += ["--param", f"{name}={value}"]
        env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SK}
        assert CliRunner().invoke(deploy.app, args, env=env).exit_code == 0
        settings = smoke.stack_settings("fpscreen", "cn-shanghai", fake.endpoint, Credentials(AK, SK))
        assert settings["MediaBucketName"] == bucket.bucket_name
        assert settings["PublicStoreUrl"] == "tablestore://fpscreen-db@fpscreen-db.cn-shanghai.ots.aliyuncs.com"

        sample = tmp_path / "notes.txt"
        sample.write_text("hello", encoding="utf-8")
        keys = smoke.upload_samples(smoke.OssUploader(bucket), {"text": sample}, "run-1")
        assert keys == {"text": "uploads/fpscreen-smoke/run-1/notes.txt"}
        assert bucket.get_object(keys["text"]).read() == b"hello"
