"""FakeMps on the wire: the official SDKs, unmodified, against the loopback server.

Proves both signature styles verify (RPC v1 from aliyun-python-sdk-core and from Tea `v2`, ACS3 from Tea),
that bad credentials, stale clocks and replays are refused with Alibaba's codes, and that the API answers
have the documented shapes.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
from alibabacloud_mts20140618 import models as tea_models
from alibabacloud_mts20140618.client import Client as TeaClient
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException as TeaClientException
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkmts.request.v20140618.QueryFpShotJobListRequest import QueryFpShotJobListRequest
from aliyunsdkmts.request.v20140618.SubmitFpShotJobRequest import SubmitFpShotJobRequest

from shared.contracts.mps import (
    FpShot,
    FpShotResult,
    FpShots,
    FpShotSlice,
    FpShotSlices,
    QueryFpShotJobListResponse,
    SubmitFpShotJobResponse,
    TimeSpan,
)
from tests.support.fake_mps import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET, FakeMps, RecordedRequest

from .helpers import submit_request

AK, SK = DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
INPUT = '{"Bucket":"example-bucket","Location":"oss-cn-shanghai","Object":"a clip+1.mp4"}'
CONFIG = '{"PrimaryKey":"pk 1","SaveType":"save","FpDBId":"db-1"}'


def core_client(secret: str = SK, key: str = AK, **kwargs: Any) -> AcsClient:
    return AcsClient(key, secret, "cn-shanghai", auto_retry=False, **kwargs)


def core_submit(server: FakeMps, client: AcsClient | None = None, **params: str) -> dict[str, Any]:
    request = SubmitFpShotJobRequest()
    request.set_Input(params.get("Input", INPUT))
    request.set_FpShotConfig(params.get("FpShotConfig", CONFIG))
    request.set_PipelineId("pipe-1")
    request.set_UserData("ud 1")
    request.set_endpoint(server.url)
    return json.loads((client or core_client()).do_action_with_exception(request))


def core_common(server: FakeMps, action: str, params: dict[str, str], client: AcsClient | None = None) -> Any:
    request = CommonRequest(domain=server.endpoint, version="2014-06-18", action_name=action, product="Mts")
    request.set_protocol_type("http")
    request.set_method("POST")
    for key, value in params.items():
        request.add_query_param(key, value)
    return json.loads((client or core_client()).do_action_with_exception(request))


def tea_client(server: FakeMps, *, secret: str = SK, key: str = AK, token: str | None = None, v1: bool = False):
    config = open_api_models.Config(
        access_key_id=key,
        access_key_secret=secret,
        security_token=token,
        region_id="cn-shanghai",
        endpoint=server.endpoint,
        protocol="http",
        signature_algorithm="v2" if v1 else None,
    )
    return TeaClient(config)


def tea_submit(client: TeaClient) -> dict[str, Any]:
    request = tea_models.SubmitFpShotJobRequest(
        input=INPUT, fp_shot_config=CONFIG, pipeline_id="pipe-1", user_data="ud 1"
    )
    return client.submit_fp_shot_job(request).body.to_map()


def server_error(call: Any) -> ServerException:
    with pytest.raises(ServerException) as info:
        call()
    return info.value


# --------------------------------------------------------------------------------- signatures


def test_coresdk_rpc_v1_requests_verify(fake_mps: FakeMps) -> None:
    body = core_submit(fake_mps)
    response = SubmitFpShotJobResponse.model_validate(body)
    assert re.fullmatch(r"[0-9a-f]{32}", response.job_id)
    (recorded,) = fake_mps.requests
    assert (recorded.style, recorded.action, recorded.status, recorded.method) == (
        "RPC",
        "SubmitFpShotJob",
        200,
        "POST",
    )
    assert recorded.header("x-acs-action") == "SubmitFpShotJob"  # the CoreSDK also sends the header
    assert recorded.params["Input"] == INPUT and recorded.params["UserData"] == "ud 1"
    job = fake_mps.job(response.job_id)
    assert job.request.fp_shot_config.primary_key == "pk 1" and job.state == "Queuing"


def test_coresdk_query_and_common_request_report_verify(fake_mps: FakeMps) -> None:
    job_id = core_submit(fake_mps)["JobId"]
    query = QueryFpShotJobListRequest()
    query.set_JobIds(f"{job_id},ffffffffffffffffffffffffffffffff")
    query.set_endpoint(fake_mps.url)
    listed = QueryFpShotJobListResponse.model_validate_json(core_client().do_action_with_exception(query))
    assert [j.id for j in listed.jobs] == [job_id]
    assert listed.missing_ids == ["ffffffffffffffffffffffffffffffff"]
    report = core_common(fake_mps, "ReportFpShotJobResult", {"JobId": job_id, "Result": "fp result", "Details": "d"})
    assert report["JobId"] == job_id
    assert [(r.job_id, r.result, r.details) for r in fake_mps.reports] == [(job_id, "fp result", "d")]
    assert [r.style for r in fake_mps.requests] == ["RPC", "RPC", "RPC"]


def test_tea_acs3_requests_verify(fake_mps: FakeMps) -> None:
    client = tea_client(fake_mps)
    job_id = tea_submit(client)["JobId"]
    listed = client.query_fp_shot_job_list(tea_models.QueryFpShotJobListRequest(job_ids=job_id))
    assert listed.body.fp_shot_job_list.fp_shot_job[0].id == job_id
    (submit, query) = fake_mps.requests
    assert (submit.style, query.style) == ("ACS3", "ACS3")
    assert submit.header("Authorization").startswith("ACS3-HMAC-SHA256 Credential=testAK,SignedHeaders=")
    assert "Action" not in dict(submit.query)  # ACS3 routes on the x-acs-action header
    assert fake_mps.job(job_id).request.user_data == "ud 1"  # '+'-encoded space decoded


def test_tea_v1_signature_requests_verify(fake_mps: FakeMps) -> None:
    tea_submit(tea_client(fake_mps, v1=True))
    (recorded,) = fake_mps.requests
    assert recorded.style == "RPC" and dict(recorded.query)["SignatureMethod"] == "HMAC-SHA1"


def test_sts_tokens_verify_in_both_styles_and_are_required() -> None:
    with FakeMps(security_tokens={AK: "sts-token-1"}) as server:
        sts = AcsClient(region_id="cn-shanghai", auto_retry=False, credential=StsTokenCredential(AK, SK, "sts-token-1"))
        core_submit(server, sts)
        tea_submit(tea_client(server, token="sts-token-1"))
        assert [r.style for r in server.requests] == ["RPC", "ACS3"]
        err = server_error(lambda: core_submit(server))  # no token
        assert (err.get_error_code(), err.get_http_status()) == ("MissingSecurityToken", 400)
        with pytest.raises(TeaClientException) as info:
            tea_submit(tea_client(server, token="stolen"))
        assert info.value.code == "InvalidSecurityToken.MismatchWithAccessKey"


# ---------------------------------------------------------------------------------- refusals


def test_wrong_secret_is_refused_for_both_sdks(fake_mps: FakeMps) -> None:
    err = server_error(lambda: core_submit(fake_mps, core_client(secret="wrong")))
    # The server says SignatureDoesNotMatch; the CoreSDK recognises its own string to sign and renames it.
    assert (err.get_error_code(), err.get_http_status()) == ("InvalidAccessKeySecret", 400)
    with pytest.raises(TeaClientException) as info:
        tea_submit(tea_client(fake_mps, secret="wrong"))
    assert (info.value.code, info.value.status_code) == ("IncompleteSignature", 400)
    with pytest.raises(TeaClientException) as info:
        tea_submit(tea_client(fake_mps, secret="wrong", v1=True))
    assert info.value.code == "SignatureDoesNotMatch"
    assert [r.code for r in fake_mps.requests] == [
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "SignatureDoesNotMatch",
    ]
    assert fake_mps.jobs == {}


def test_unknown_access_key_is_refused_for_both_sdks(fake_mps: FakeMps) -> None:
    err = server_error(lambda: core_submit(fake_mps, core_client(key="ghost")))
    assert (err.get_error_code(), err.get_http_status()) == ("InvalidAccessKeyId.NotFound", 404)
    with pytest.raises(TeaClientException) as info:
        tea_submit(tea_client(fake_mps, key="ghost"))
    assert (info.value.code, info.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)


def test_stale_timestamps_are_refused(fake_mps: FakeMps) -> None:
    fake_mps.clock = lambda: time.time() + 16 * 60  # the server's clock runs 16 minutes ahead
    err = server_error(lambda: core_submit(fake_mps))
    assert (err.get_error_code(), err.get_http_status()) == ("InvalidTimeStamp.Expired", 400)
    with pytest.raises(TeaClientException) as info:
        tea_submit(tea_client(fake_mps))
    assert info.value.code == "InvalidTimeStamp.Expired"


@pytest.mark.parametrize("style", ["core", "tea"])
def test_replayed_request_is_refused(fake_mps: FakeMps, style: str) -> None:
    if style == "core":
        core_submit(fake_mps)
    else:
        tea_submit(tea_client(fake_mps))
    (captured,) = fake_mps.requests
    status, body = fake_mps.replay(captured)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    fake_mps.clock = lambda: time.time() + 20 * 60  # a replay later on is stale as well
    status, body = fake_mps.replay(captured)
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")
    assert len(fake_mps.jobs) == 1


def test_unsigned_request_and_unknown_action(fake_mps: FakeMps) -> None:
    bare = RecordedRequest("POST", "/?Action=SubmitFpShotJob&Version=2014-06-18", "/", [], [], b"")
    status, body = fake_mps.replay(bare)
    assert (status, body["Code"]) == (400, "MissingSignature")
    assert set(body) == {"RequestId", "HostId", "Code", "Message"}
    err = server_error(lambda: core_common(fake_mps, "DeleteFpShotFiles", {"FpDBId": "db"}))
    assert (err.get_error_code(), err.get_http_status()) == ("InvalidAction.NotFound", 404)


# ----------------------------------------------------------------------------- API behaviour


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Input": "{not json"}, "InvalidParameter.JsonFormatInvalid"),
        ({"FpShotConfig": '["a"]'}, "InvalidParameter.JsonObjectFormatInvalid"),
        ({"FpShotConfig": '{"PrimaryKey":"p","SaveType":"keep"}'}, "InvalidParameter"),
        ({"Input": ""}, "MissingInput"),
    ],
)
def test_submit_validates_input_and_config(fake_mps: FakeMps, params: dict[str, str], code: str) -> None:
    err = server_error(lambda: core_submit(fake_mps, **params))
    assert (err.get_error_code(), err.get_http_status()) == (code, 400)
    assert fake_mps.jobs == {}


def test_query_more_than_ten_ids_is_invalid_parameter(fake_mps: FakeMps) -> None:
    ids = ",".join(f"{i:032x}" for i in range(11))
    err = server_error(lambda: core_common(fake_mps, "QueryFpShotJobList", {"JobIds": ids}))
    assert (err.get_error_code(), err.get_http_status()) == ("InvalidParameter", 400)


def test_query_shows_results_failures_and_missing_ids(fake_mps: FakeMps) -> None:
    done, failed, queued = (fake_mps.add_job(submit_request()) for _ in range(3))
    result = FpShotResult(
        fp_shots=FpShots(
            fp_shot=[
                FpShot(
                    primary_key="lib-7",
                    similarity=0.8914769887924194,
                    fp_shot_slices=FpShotSlices(
                        fp_shot_slice=[
                            FpShotSlice(
                                input=TimeSpan(start=46, duration=48),
                                duplication=TimeSpan(start=1260, duration=48),
                                similarity=0.9,
                            )
                        ]
                    ),
                )
            ]
        )
    )
    fake_mps.complete(done, result=result)
    fake_mps.fail(failed, "InvalidInput.MediaUndecodable", "The input cannot be decoded.")
    missing = "ae687c02fe944327ba9631e50da23128"
    raw = core_common(fake_mps, "QueryFpShotJobList", {"JobIds": f"{done},{failed},{queued},{missing}"})
    # The documented wrapped-list shape, numbers as strings.
    first = raw["FpShotJobList"]["FpShotJob"][0]
    assert first["FpShotResult"]["FpShots"]["FpShot"][0]["Similarity"] == "0.8914769887924194"
    assert first["FpShotResult"]["FpShots"]["FpShot"][0]["FpShotSlices"]["FpShotSlice"][0]["Duplication"] == {
        "Start": "1260",
        "Duration": "48",
    }
    assert json.loads(first["Input"])["Object"] == "uploads/a clip+1 ~*.mp4"
    assert raw["NonExistIds"] == {"String": [missing]}
    listed = QueryFpShotJobListResponse.model_validate(raw)
    assert [(j.state, j.code) for j in listed.jobs] == [
        ("Success", None),
        ("Fail", "InvalidInput.MediaUndecodable"),
        ("Queuing", None),
    ]
    assert listed.jobs[0].fp_shot_result == result
    assert listed.jobs[1].fp_shot_result is None and listed.jobs[1].finish_time


def test_query_without_ids_pages_and_filters(fake_mps: FakeMps) -> None:
    ids = [fake_mps.add_job(submit_request()) for _ in range(5)]
    fake_mps.complete(ids[1])
    first = core_common(fake_mps, "QueryFpShotJobList", {"MaximumPageSize": "2"})
    assert [j["Id"] for j in first["FpShotJobList"]["FpShotJob"]] == ids[:2]
    token = first["NextPageToken"]
    second = core_common(fake_mps, "QueryFpShotJobList", {"MaximumPageSize": "2", "NextPageToken": token})
    assert [j["Id"] for j in second["FpShotJobList"]["FpShotJob"]] == ids[2:4]
    success = core_common(fake_mps, "QueryFpShotJobList", {"State": "Success"})
    assert [j["Id"] for j in success["FpShotJobList"]["FpShotJob"]] == [ids[1]]
    assert "NextPageToken" not in success


def test_report_requires_a_known_job_and_a_result(fake_mps: FakeMps) -> None:
    err = server_error(lambda: core_common(fake_mps, "ReportFpShotJobResult", {"JobId": "0" * 32, "Result": "x"}))
    assert (err.get_error_code(), err.get_http_status()) == ("InvalidParameter.ResourceNotFound", 404)
    job_id = fake_mps.add_job(submit_request())
    err = server_error(lambda: core_common(fake_mps, "ReportFpShotJobResult", {"JobId": job_id}))
    assert err.get_error_code() == "MissingResult"
    assert fake_mps.reports == []


# ------------------------------------------------------------------------------------ faults


def test_throttle_and_fail_next_answer_alibaba_errors_then_recover(fake_mps: FakeMps) -> None:
    fake_mps.throttle_next(1)
    fake_mps.throttle_next(1, "Throttling.Api", status=503)
    fake_mps.fail_next(1, status=500, code="InternalError")
    errors = [server_error(lambda: core_submit(fake_mps)) for _ in range(3)]
    assert [(e.get_error_code(), e.get_http_status()) for e in errors] == [
        ("Throttling.User", 400),
        ("Throttling.Api", 503),
        ("InternalError", 500),
    ]
    assert errors[0].get_error_msg() == "Request was denied due to user flow control."
    assert errors[0].get_request_id()
    core_submit(fake_mps)  # faults are used up
    assert [r.status for r in fake_mps.requests] == [400, 503, 500, 200]
    assert len(fake_mps.jobs) == 1


def test_faults_can_target_one_action(fake_mps: FakeMps) -> None:
    fake_mps.fail_next(1, status=503, code="ServiceUnavailable", action="QueryFpShotJobList")
    job_id = core_submit(fake_mps)["JobId"]  # not affected
    err = server_error(lambda: core_common(fake_mps, "QueryFpShotJobList", {"JobIds": job_id}))
    assert (err.get_error_code(), err.get_http_status()) == ("ServiceUnavailable", 503)


def test_disconnect_is_a_transport_error(fake_mps: FakeMps) -> None:
    fake_mps.disconnect_next(1)
    with pytest.raises(ClientException) as info:
        core_submit(fake_mps)
    assert info.value.get_error_code() == "SDK.HttpError"
    assert [r.status for r in fake_mps.requests] == [0]
    core_submit(fake_mps)


def test_concurrent_requests_are_all_served_and_logged(fake_mps: FakeMps) -> None:
    client = core_client()
    job_ids: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            job_id = core_submit(fake_mps, client)["JobId"]
            with lock:
                job_ids.append(job_id)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(set(job_ids)) == 30
    assert len(fake_mps.calls("SubmitFpShotJob", ok=True)) == 30 and set(fake_mps.jobs) == set(job_ids)
