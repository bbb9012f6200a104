"""Bad inputs: jobs that fail with MPS codes (the service keeps serving), and requests refused with Alibaba's codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from alibabacloud_mts20140618 import models as tea_models
from alibabacloud_mts20140618.client import Client as TeaClient
from alibabacloud_tea_openapi.exceptions import ClientException as TeaClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkmts.request.v20140618.SubmitFpShotJobRequest import SubmitFpShotJobRequest

from engine.service.app import EngineService
from tests.service.conftest import (
    TEXT_ORIGINAL,
    CoreMps,
    Media,
    Oss,
    create_library,
    input_json,
    query_jobs,
    submit,
)


def _server_error(call: object) -> ServerException:
    with pytest.raises(ServerException) as info:
        call()  # type: ignore[operator]
    return info.value


def test_missing_corrupt_and_empty_objects_fail_with_codes(
    service: EngineService, core: CoreMps, oss: Oss, media: Media
) -> None:
    lib = create_library(core, 12)
    cases = {
        "missing": (input_json("media-bucket", "nowhere/missing.mp4"), {"InvalidInput.NotFound"}),
        "corrupt": (
            oss.put("media-bucket", "bad/corrupt.mp4", media.corrupt),
            {"InvalidInput.MediaUndecodable", "InvalidInput.UnsupportedFormat"},
        ),
        "empty": (oss.put("media-bucket", "bad/empty.mp4", b""), {"InvalidInput.EmptyMedia"}),
    }
    jobs = {
        name: submit(core, input_, {"PrimaryKey": name, "SaveType": "save", "FpDBId": lib})
        for name, (input_, _) in cases.items()
    }
    for name, job_id in jobs.items():
        record = service.wait_for_job(job_id)
        assert record.state == "Fail", name

    shown = {job["Id"]: job for job in query_jobs(core, *jobs.values())["FpShotJobList"]["FpShotJob"]}
    for name, (_, codes) in cases.items():
        job = shown[jobs[name]]
        assert job["State"] == "Fail" and job["Code"] in codes, (name, job)
        assert "FpShotResult" not in job and "FileId" not in job
        assert "oss://media-bucket/" in job["Message"] and str(oss.root) not in job["Message"]
    assert service.library.list_items(lib) == []

    # ...and the service still answers and still works.
    ok = submit(core, oss.put("text-bucket", "fine.txt", TEXT_ORIGINAL), {"PrimaryKey": "ok", "SaveType": "save"})
    assert service.wait_for_job(ok).state == "Success"


def test_a_text_library_refuses_a_video_and_a_deleted_library_fails_the_job(
    service: EngineService, core: CoreMps, oss: Oss
) -> None:
    lib = create_library(core, 11)
    binary = submit(
        core, oss.put("text-bucket", "x.txt", os.urandom(2048)), {"PrimaryKey": "b", "SaveType": "save", "FpDBId": lib}
    )
    record = service.wait_for_job(binary)
    assert (record.state, record.code) == ("Fail", "InvalidInput.UnsupportedFormat")

    # Submitted while the library existed, run after it was deleted: the job fails, like MPS would.
    idle_lib = service.library.create_library("gone", 11).fp_db_id
    service.jobs.stop()  # no worker picks the job until restarted below
    job = submit(
        core,
        oss.put("text-bucket", "y.txt", TEXT_ORIGINAL),
        {"PrimaryKey": "y", "SaveType": "save", "FpDBId": idle_lib},
    )
    service.library.delete_library(idle_lib)
    service.jobs.start()
    record = service.wait_for_job(job)
    assert (record.state, record.code) == ("Fail", "InvalidParameter.DBNotExist")


A_TXT = input_json("text-bucket", "a.txt")
SAVE = '{"PrimaryKey":"k","SaveType":"save"}'


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"FpShotConfig": SAVE}, 400, "MissingInput"),
        ({"Input": A_TXT}, 400, "MissingFpShotConfig"),
        ({"Input": "{not json", "FpShotConfig": "{}"}, 400, "InvalidParameter.JsonFormatInvalid"),
        ({"Input": "[1]", "FpShotConfig": "{}"}, 400, "InvalidParameter.JsonObjectFormatInvalid"),
        ({"Input": '{"Bucket":"text-bucket"}', "FpShotConfig": SAVE}, 400, "InvalidParameter"),
        ({"Input": A_TXT, "FpShotConfig": SAVE.replace("save", "keep")}, 400, "InvalidParameter"),
        (
            {"Input": A_TXT, "FpShotConfig": SAVE[:-1] + ',"FpDBId":"' + "a" * 32 + '"}'},
            400,
            "InvalidParameter.DBNotExist",
        ),
        ({"Input": A_TXT, "FpShotConfig": SAVE, "PipelineId": "b" * 32}, 404, "InvalidParameter.ResourceNotFound"),
        ({"Input": A_TXT, "FpShotConfig": SAVE, "UserData": "#special"}, 400, "InvalidParameter"),
    ],
)
def test_submit_parameter_errors(idle_service: EngineService, params: dict[str, str], status: int, code: str) -> None:
    core = CoreMps(idle_service)
    error = _server_error(lambda: core.call(SubmitFpShotJobRequest(), **params))
    assert (error.get_http_status(), error.get_error_code()) == (status, code)
    assert error.get_request_id()
    assert idle_service.jobs.store.count("Queuing") == 0


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        ("text-bucket", "../../etc/passwd"),
        ("text-bucket", "%2e%2e/%2e%2e/etc/passwd"),
        ("text-bucket", "a/%2E%2E/../../outside.txt"),
        ("text-bucket", "/etc/passwd"),
        ("text-bucket", "%2Fetc%2Fpasswd"),
        ("..", "etc/passwd"),
        ("Not_A_Bucket", "a.txt"),
        ("text-bucket", "escape/link.txt"),  # a symlink pointing outside the root
    ],
)
def test_inputs_that_would_leave_the_oss_root_are_refused(
    idle_service: EngineService, oss: Oss, tmp_path: Path, bucket: str, key: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours", encoding="utf-8")
    (oss.root / "text-bucket" / "escape").mkdir(parents=True)
    (oss.root / "text-bucket" / "escape" / "link.txt").symlink_to(secret)
    core = CoreMps(idle_service)
    config = '{"PrimaryKey":"k","SaveType":"nosave"}'
    error = _server_error(
        lambda: core.call(SubmitFpShotJobRequest(), Input=input_json(bucket, key), FpShotConfig=config)
    )
    assert (error.get_http_status(), error.get_error_code()) == (400, "InvalidParameter")
    assert "Input." in error.get_error_msg()
    assert idle_service.jobs.store.count("Queuing") == 0


def test_a_symlink_inside_the_root_is_followed(service: EngineService, core: CoreMps, oss: Oss) -> None:
    target = oss.root / "text-bucket" / "real.txt"
    oss.put("text-bucket", "real.txt", TEXT_ORIGINAL)
    (oss.root / "text-bucket" / "alias.txt").symlink_to(target)
    job = submit(core, input_json("text-bucket", "alias.txt"), {"PrimaryKey": "k", "SaveType": "save"})
    assert service.wait_for_job(job).state == "Success"


def test_unknown_and_unserved_actions(idle_service: EngineService) -> None:
    core = CoreMps(idle_service)
    unknown = _server_error(lambda: core.common("NoSuchAction"))
    assert (unknown.get_http_status(), unknown.get_error_code()) == (404, "InvalidAction.NotFound")
    unserved = _server_error(lambda: core.common("SubmitJobs", Input="{}", OutputBucket="b"))
    assert (unserved.get_http_status(), unserved.get_error_code()) == (400, "UnsupportedOperation")


def test_query_and_report_parameter_errors(idle_service: EngineService) -> None:
    core = CoreMps(idle_service)
    too_many = _server_error(lambda: core.common("QueryFpShotJobList", JobIds=",".join(f"{i:032x}" for i in range(11))))
    assert (too_many.get_http_status(), too_many.get_error_code()) == (400, "InvalidParameter")
    assert "JobIds" in too_many.get_error_msg()
    page = _server_error(lambda: core.common("QueryFpShotJobList", MaximumPageSize="500"))
    assert page.get_error_code() == "InvalidParameter.OutOfRange"
    when = _server_error(lambda: core.common("QueryFpShotJobList", StartOfJobCreatedTimeRange="yesterday"))
    assert when.get_error_code() == "InvalidParameter"
    state = _server_error(lambda: core.common("QueryFpShotJobList", State="Done"))
    assert state.get_error_code() == "InvalidParameter"
    report = _server_error(lambda: core.common("ReportFpShotJobResult", JobId="c" * 32, Result="x"))
    assert (report.get_http_status(), report.get_error_code()) == (404, "InvalidParameter.ResourceNotFound")
    missing = _server_error(lambda: core.common("ReportFpShotJobResult", JobId="c" * 32))
    assert (missing.get_http_status(), missing.get_error_code()) == (400, "MissingResult")


def test_tea_sdk_sees_the_same_codes(idle_service: EngineService) -> None:
    from tests.service.conftest import tea_client

    tea: TeaClient = tea_client(idle_service)
    with pytest.raises(TeaClientException) as info:
        tea.create_fp_shot_db(tea_models.CreateFpShotDBRequest(name="x", model_id=14))  # image: deprecated
    assert (info.value.status_code, info.value.code) == (400, "InvalidParameter.OutOfRange")
    with pytest.raises(TeaClientException) as info:
        tea.list_fp_shot_files(tea_models.ListFpShotFilesRequest(fp_dbid="d" * 32))
    assert (info.value.status_code, info.value.code) == (400, "InvalidParameter.DBNotExist")
    with pytest.raises(TeaClientException) as info:
        tea.create_fp_shot_db(tea_models.CreateFpShotDBRequest(model_id=12))
    assert info.value.code == "MissingName"
    body = json.loads(json.dumps(info.value.data))
    assert set(body) >= {"RequestId", "HostId", "Code", "Message"}
