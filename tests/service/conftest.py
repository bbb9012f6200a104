"""Fixtures for the engine's MPS service: a started `EngineService`, both official SDKs aimed at it, a local OSS
root to put objects in, and tiny generated media (made once per session)."""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from alibabacloud_mts20140618.client import Client as TeaClient
from alibabacloud_tea_openapi import models as open_api_models
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import AcsRequest, CommonRequest

from engine.service.app import EngineService, EngineSettings
from engine.service.auth import percent_encode, rpc_signature, rpc_string_to_sign
from engine.service.notify import Backoff
from engine.synth import text as text_synth
from shared.contracts.mps import API_VERSION

AK, SK = "test-service-ak", "test-service-secret"
FAST_NOTIFY = Backoff(base=0.05, cap=0.2)
TEXT_ORIGINAL = text_synth.document(21, 3000, "en")
TEXT_OTHER = text_synth.document(22, 3000, "en")


@dataclass(frozen=True)
class Media:
    video: Path  # 6 s synthetic clip, 160x120
    clip: Path  # its [2 s, 4 s) re-encoded
    corrupt: Path  # bytes that no decoder accepts


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    video_synth = pytest.importorskip("engine.synth.video")
    folder = tmp_path_factory.mktemp("media")
    video = video_synth.make_video(folder / "film.mp4", seed=5, seconds=6.0, size=(160, 120))
    clip = video_synth.transform_video(video, folder / "clip.mp4", ops=[video_synth.Trim(2.0, 2.0)])
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    return Media(video, clip, corrupt)


class Oss:
    """The local OSS root the service reads: `put` an object, get the MPS `Input` JSON for it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, bucket: str, key: str, content: Path | bytes | str) -> str:
        path = self.root / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            path.write_bytes(content.read_bytes())
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return input_json(bucket, key)


def input_json(bucket: str, key: str) -> str:
    return json.dumps({"Bucket": bucket, "Location": "oss-cn-shanghai", "Object": key})


@pytest.fixture
def oss(tmp_path: Path) -> Oss:
    root = tmp_path / "oss"
    root.mkdir()
    return Oss(root)


def make_service(data_dir: Path, oss: Oss, **kwargs: Any) -> EngineService:
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("credentials", {AK: SK})
    kwargs.setdefault("stop_timeout", 60.0)
    runtime = {key: kwargs.pop(key) for key in ("notify_backoff", "clock") if key in kwargs}
    runtime.setdefault("notify_backoff", FAST_NOTIFY)
    return EngineService(EngineSettings(data_dir, oss.root, "127.0.0.1", 0, **kwargs), **runtime)


@pytest.fixture
def service(tmp_path: Path, oss: Oss) -> Iterator[EngineService]:
    with make_service(tmp_path / "data", oss) as svc:
        yield svc


@pytest.fixture
def idle_service(tmp_path: Path, oss: Oss) -> Iterator[EngineService]:
    """Accepts jobs, runs none (`workers=0`): jobs stay `Queuing`."""
    with make_service(tmp_path / "data", oss, workers=0) as svc:
        yield svc


class CoreMps:
    """aliyun-python-sdk-core's `AcsClient`, typed requests and `CommonRequest`, aimed at the service."""

    def __init__(self, service: EngineService, access_key_id: str = AK, secret: str = SK) -> None:
        self.service = service
        self.client = AcsClient(access_key_id, secret, "cn-shanghai", auto_retry=False, timeout=30)

    def call(self, request: AcsRequest, **params: Any) -> dict[str, Any]:
        for name, value in params.items():
            getattr(request, f"set_{name}")(value)
        request.set_endpoint(self.service.endpoint)
        request.set_protocol_type("http")
        request.set_accept_format("json")
        return json.loads(self.client.do_action_with_exception(request))

    def common(self, action: str, **params: Any) -> dict[str, Any]:
        request = CommonRequest(domain=self.service.endpoint, version=API_VERSION, action_name=action, product="Mts")
        request.set_protocol_type("http")
        request.set_method("POST")
        for name, value in params.items():
            request.add_query_param(name, value)
        return json.loads(self.client.do_action_with_exception(request))


@pytest.fixture
def core(service: EngineService) -> CoreMps:
    return CoreMps(service)


def tea_client(service: EngineService, access_key_id: str = AK, secret: str = SK) -> TeaClient:
    config = open_api_models.Config(
        access_key_id=access_key_id,
        access_key_secret=secret,
        endpoint=service.endpoint,
        protocol="http",
        region_id="cn-shanghai",
        read_timeout=30_000,
    )
    return TeaClient(config)


@pytest.fixture
def tea(service: EngineService) -> TeaClient:
    return tea_client(service)


# ------------------------------------------------------------------------------------ raw, hand-signed requests


def signed_rpc_query(
    action: str,
    params: dict[str, str],
    *,
    access_key_id: str = AK,
    secret: str = SK,
    nonce: str | None = None,
    timestamp: float | None = None,
    method: str = "POST",
) -> str:
    """The query string of an RPC v1 request signed as the CoreSDK signs it."""
    envelope = {
        "Action": action,
        "Version": API_VERSION,
        "Format": "JSON",
        "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
        **params,
    }
    envelope["Signature"] = rpc_signature(secret, rpc_string_to_sign(method, envelope))
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in envelope.items())


def raw_call(
    service: EngineService,
    query: str | dict[str, str] = "",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    target = "/?" + (query if isinstance(query, str) else urlencode(query))
    conn = http.client.HTTPConnection("127.0.0.1", service.bound_port, timeout=30)
    try:
        conn.request("POST", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def create_library(core: CoreMps, model_id: int, name: str = "lib") -> str:
    from aliyunsdkmts.request.v20140618.CreateFpShotDBRequest import CreateFpShotDBRequest

    return core.call(CreateFpShotDBRequest(), Name=name, ModelId=model_id)["FpShotDB"]["FpDBId"]


def submit(core: CoreMps, input_: str, config: dict[str, Any], **extra: str) -> str:
    from aliyunsdkmts.request.v20140618.SubmitFpShotJobRequest import SubmitFpShotJobRequest

    return core.call(SubmitFpShotJobRequest(), Input=input_, FpShotConfig=json.dumps(config), **extra)["JobId"]


def query_jobs(core: CoreMps, *job_ids: str, **params: Any) -> dict[str, Any]:
    from aliyunsdkmts.request.v20140618.QueryFpShotJobListRequest import QueryFpShotJobListRequest

    if job_ids:
        params["JobIds"] = ",".join(job_ids)
    return core.call(QueryFpShotJobListRequest(), **params)
