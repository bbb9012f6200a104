"""Issue 10 item 11: hostile parameters get Alibaba's error JSON with a 4xx, never a 500 or a traceback."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from engine.service.actions import MAX_JSON_DEPTH, json_depth
from engine.service.app import EngineService
from tests.service.conftest import signed_rpc_query

A_TXT = '{"Bucket":"text-bucket","Location":"oss-cn-shanghai","Object":"a.txt"}'
DEEP_OBJECT = '{"a":' * 5000 + "1" + "}" * 5000
DEEP_ARRAY = "[" * 50_000 + "]" * 50_000


def _post(service: EngineService, action: str, params: dict[str, str]) -> tuple[int, str, dict[str, Any]]:
    """A signed request with its parameters in a form body (no URL length limit in the way)."""
    conn = http.client.HTTPConnection("127.0.0.1", service.bound_port, timeout=30)
    try:
        conn.request(
            "POST",
            "/",
            body=signed_rpc_query(action, params),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", json.loads(response.read())
    finally:
        conn.close()


def _config(primary_key: str) -> str:
    return json.dumps({"PrimaryKey": primary_key, "SaveType": "nosave"})


@pytest.mark.parametrize(
    ("action", "params", "code", "where"),
    [
        (
            "SubmitFpShotJob",
            {"Input": A_TXT, "FpShotConfig": DEEP_OBJECT},
            "InvalidParameter.JsonFormatInvalid",
            "FpShotConfig",
        ),
        (
            "SubmitFpShotJob",
            {"Input": DEEP_ARRAY, "FpShotConfig": _config("k")},
            "InvalidParameter.JsonFormatInvalid",
            "Input",
        ),
        (
            "CreateFpShotDB",
            {"Name": "x", "ModelId": "12", "Config": DEEP_OBJECT},
            "InvalidParameter.JsonFormatInvalid",
            "Config",
        ),
        ("CreateFpShotDB", {"Name": "x", "ModelId": "1e400"}, "InvalidParameter", "ModelId"),
        ("CreateFpShotDB", {"Name": "x", "ModelId": "9" * 5000}, "InvalidParameter", "ModelId"),
        ("CreateFpShotDB", {"Name": "x", "ModelId": "12.5"}, "InvalidParameter", "ModelId"),
        ("QueryFpShotJobList", {"NextPageToken": "9" * 400}, "InvalidParameter", "NextPageToken"),
        ("SearchPipeline", {"PageNumber": "99999999999999999999"}, "InvalidParameter", "PageNumber"),
        ("SearchPipeline", {"PageSize": "1e3"}, "InvalidParameter", "PageSize"),
        ("SubmitFpShotJob", {"Input": A_TXT, "FpShotConfig": _config("k" * 900_000)}, "InvalidParameter", "PrimaryKey"),
        ("SubmitFpShotJob", {"Input": A_TXT, "FpShotConfig": _config("键" * 43)}, "InvalidParameter", "PrimaryKey"),
        (
            "SubmitFpFileDeleteJob",
            {"FpDBId": "a" * 32, "PrimaryKeys": "ok," + "k" * 129},
            "InvalidParameter",
            "PrimaryKeys",
        ),
    ],
)
def test_hostile_parameters_get_alibaba_error_json(
    idle_service: EngineService, action: str, params: dict[str, str], code: str, where: str
) -> None:
    status, content_type, body = _post(idle_service, action, params)
    assert status == 400, body
    assert content_type.startswith("application/json")
    assert body["Code"] == code and where in body["Message"]
    assert set(body) >= {"RequestId", "HostId", "Code", "Message"}
    assert idle_service.jobs.store.count("Queuing") == 0


def test_list_files_page_token_of_many_digits(idle_service: EngineService) -> None:
    status, _, created = _post(idle_service, "CreateFpShotDB", {"Name": "lib", "ModelId": "11"})
    assert status == 200
    fp_db_id = created["FpShotDB"]["FpDBId"]
    for token in ("9" * 400, "²", "-1"):
        status, _, body = _post(idle_service, "ListFpShotFiles", {"FpDBId": fp_db_id, "NextPageToken": token})
        assert (status, body["Code"]) == (400, "InvalidParameter"), token
    status, _, body = _post(idle_service, "ListFpShotFiles", {"FpDBId": fp_db_id, "NextPageToken": "9" * 18})
    assert status == 200 and body["FpShotFileList"]["FpShotFile"] == []


def test_limits_accept_what_mps_accepts(idle_service: EngineService) -> None:
    nested = {"a": {"b": [{"c": [1, 2]}]}}
    config = json.dumps({"PrimaryKey": "k" * 128, "SaveType": "nosave", "Extra": nested})
    status, _, body = _post(idle_service, "SubmitFpShotJob", {"Input": A_TXT, "FpShotConfig": config})
    assert status == 200 and len(body["JobId"]) == 32
    status, _, body = _post(idle_service, "SearchPipeline", {"PageNumber": "999999999", "PageSize": "10"})
    assert status == 200 and body["PipelineList"]["Pipeline"] == []


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [1, {"c": "\\"]]"}]}') == 3
    assert json_depth("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)) == MAX_JSON_DEPTH + 1
