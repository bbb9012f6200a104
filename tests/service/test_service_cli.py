"""`python -m engine.service.cli serve`: a real process, its first stdout line, the SDK against it, SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from aliyunsdkcore.client import AcsClient
from aliyunsdkmts.request.v20140618.CreateFpShotDBRequest import CreateFpShotDBRequest
from aliyunsdkmts.request.v20140618.QueryFpShotJobListRequest import QueryFpShotJobListRequest
from aliyunsdkmts.request.v20140618.SubmitFpShotJobRequest import SubmitFpShotJobRequest
from typer.testing import CliRunner

from engine.service.cli import engine_app
from tests.service.conftest import TEXT_ORIGINAL, input_json

ROOT = Path(__file__).resolve().parents[2]
CLI_AK, CLI_SK = "cli-access-key", "cli-access-secret"


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    return lines.get(timeout=timeout)


def _call(client: AcsClient, port: int, request: object, **params: object) -> dict:
    for name, value in params.items():
        getattr(request, f"set_{name}")(value)
    request.set_endpoint(f"127.0.0.1:{port}")  # type: ignore[attr-defined]
    request.set_protocol_type("http")  # type: ignore[attr-defined]
    request.set_accept_format("json")  # type: ignore[attr-defined]
    return json.loads(client.do_action_with_exception(request))


def test_serve_announces_its_url_serves_the_sdk_and_stops_on_sigterm(tmp_path: Path) -> None:
    oss_root = tmp_path / "oss"
    (oss_root / "text-bucket").mkdir(parents=True)
    (oss_root / "text-bucket" / "doc.txt").write_text(TEXT_ORIGINAL, encoding="utf-8")
    env = {**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_ID": CLI_AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CLI_SK}
    command = [
        sys.executable, "-m", "engine.service.cli", "serve", "--port", "0", "--workers", "1",
        "--data-dir", str(tmp_path / "data"), "--oss-root", str(oss_root),
    ]  # fmt: skip
    with open(tmp_path / "stderr.log", "w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = _first_line(process, timeout=60)
        match = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert match, (line, (tmp_path / "stderr.log").read_text())
        port = int(match.group(1))
        assert port > 0

        client = AcsClient(CLI_AK, CLI_SK, "cn-shanghai", auto_retry=False)
        lib = _call(client, port, CreateFpShotDBRequest(), Name="cli", ModelId=11)["FpShotDB"]["FpDBId"]
        config = json.dumps({"PrimaryKey": "doc", "SaveType": "save", "FpDBId": lib})
        job = _call(
            client, port, SubmitFpShotJobRequest(), Input=input_json("text-bucket", "doc.txt"), FpShotConfig=config
        )
        # Another process: no in-process hook to wait on, so poll with short waits, bounded.
        deadline = time.monotonic() + 60
        while True:
            [shown] = _call(client, port, QueryFpShotJobListRequest(), JobIds=job["JobId"])["FpShotJobList"][
                "FpShotJob"
            ]
            if shown["State"] in ("Success", "Fail") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert (shown["State"], shown["FpShotConfig"]["FpDBId"]) == ("Success", lib)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, (tmp_path / "stderr.log").read_text()
    assert process.stdout is not None and process.stdout.read() == ""  # nothing after the first line


def test_engine_app_mounts_a_serve_command() -> None:
    result = CliRunner().invoke(engine_app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--data-dir", "--oss-root", "--host", "--port", "--workers", "--mns-endpoint"):
        assert option in result.output
