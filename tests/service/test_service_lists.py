"""Listing and paging (jobs, files), delete jobs, text import jobs and pipelines."""

from __future__ import annotations

import json

import pytest
from alibabacloud_mts20140618 import models as tea_models
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkmts.request.v20140618.ImportFpShotJobRequest import ImportFpShotJobRequest
from aliyunsdkmts.request.v20140618.ListFpShotDBRequest import ListFpShotDBRequest
from aliyunsdkmts.request.v20140618.ListFpShotFilesRequest import ListFpShotFilesRequest
from aliyunsdkmts.request.v20140618.ListFpShotImportJobRequest import ListFpShotImportJobRequest
from aliyunsdkmts.request.v20140618.QueryFpDBDeleteJobListRequest import QueryFpDBDeleteJobListRequest
from aliyunsdkmts.request.v20140618.QueryFpFileDeleteJobListRequest import QueryFpFileDeleteJobListRequest
from aliyunsdkmts.request.v20140618.QueryPipelineListRequest import QueryPipelineListRequest
from aliyunsdkmts.request.v20140618.SearchPipelineRequest import SearchPipelineRequest
from aliyunsdkmts.request.v20140618.SubmitFpDBDeleteJobRequest import SubmitFpDBDeleteJobRequest
from aliyunsdkmts.request.v20140618.SubmitFpFileDeleteJobRequest import SubmitFpFileDeleteJobRequest
from aliyunsdkmts.request.v20140618.UpdatePipelineRequest import UpdatePipelineRequest

from engine.service.app import EngineService
from engine.synth import text as text_synth
from tests.service.conftest import CoreMps, Oss, create_library, input_json, query_jobs, submit, tea_client


def _error(call: object) -> ServerException:
    with pytest.raises(ServerException) as info:
        call()  # type: ignore[operator]
    return info.value


def _store_texts(service: EngineService, core: CoreMps, oss: Oss, lib: str, count: int) -> list[str]:
    """Store `count` distinct documents with `onlysave`; returns their job ids (all finished)."""
    jobs = []
    for n in range(count):
        text = text_synth.document(100 + n, 1500, "en")
        jobs.append(
            submit(
                core,
                oss.put("text-bucket", f"docs/{n}.txt", text),
                {"PrimaryKey": f"doc-{n}", "SaveType": "onlysave", "FpDBId": lib},
            )
        )
    for job in jobs:
        assert service.wait_for_job(job).state == "Success"
    return jobs


def test_query_paging_filters_and_non_exist_ids(idle_service: EngineService, oss: Oss) -> None:
    core = CoreMps(idle_service)
    pipeline = core.common("AddPipeline", Name="dna", Speed="AIVideoFPShot")["Pipeline"]["Id"]
    config = {"PrimaryKey": "k", "SaveType": "nosave"}
    jobs = [submit(core, input_json("text-bucket", f"{n}.txt"), config) for n in range(3)]
    jobs += [submit(core, input_json("text-bucket", f"p{n}.txt"), config, PipelineId=pipeline) for n in range(2)]

    seen, token, pages = [], None, 0
    while True:
        params = {"MaximumPageSize": 2, **({"NextPageToken": token} if token else {})}
        body = query_jobs(core, **params)
        seen += [job["Id"] for job in body["FpShotJobList"]["FpShotJob"]]
        pages += 1
        token = body.get("NextPageToken")
        if token is None:
            break
    assert (seen, pages) == (jobs, 3)  # creation order, nothing twice, nothing lost
    assert all(job["State"] == "Queuing" for job in query_jobs(core, *jobs[:2])["FpShotJobList"]["FpShotJob"])

    by_pipeline = query_jobs(core, PipelineId=pipeline)["FpShotJobList"]["FpShotJob"]
    assert [job["Id"] for job in by_pipeline] == jobs[3:]
    assert query_jobs(core, State="Success")["FpShotJobList"]["FpShotJob"] == []
    assert len(query_jobs(core, State="Queuing", MaximumPageSize=100)["FpShotJobList"]["FpShotJob"]) == 5
    assert query_jobs(core, EndOfJobCreatedTimeRange="2020-01-01T00:00:00Z")["FpShotJobList"]["FpShotJob"] == []
    window = query_jobs(core, StartOfJobCreatedTimeRange="2020-01-01T00:00:00Z", MaximumPageSize=100)
    assert len(window["FpShotJobList"]["FpShotJob"]) == 5

    body = query_jobs(core, jobs[0], "0" * 32, jobs[1], "1" * 32)
    assert [job["Id"] for job in body["FpShotJobList"]["FpShotJob"]] == jobs[:2]
    assert body["NonExistIds"] == {"String": ["0" * 32, "1" * 32]}
    bad_token = _error(lambda: query_jobs(core, NextPageToken="9" * 32))
    assert (bad_token.get_http_status(), bad_token.get_error_code()) == (400, "InvalidParameter")


def test_list_files_pages_and_delete_jobs(service: EngineService, core: CoreMps, oss: Oss) -> None:
    lib = create_library(core, 11, "docs")
    jobs = _store_texts(service, core, oss, lib, 3)
    file_ids = [job["FileId"] for job in query_jobs(core, *jobs)["FpShotJobList"]["FpShotJob"]]

    first = core.call(ListFpShotFilesRequest(), FpDBId=lib, PageSize=2)
    second = core.call(ListFpShotFilesRequest(), FpDBId=lib, PageSize=2, NextPageToken=first["NextPageToken"])
    listed = first["FpShotFileList"]["FpShotFile"] + second["FpShotFileList"]["FpShotFile"]
    assert "NextPageToken" not in second
    assert [f["PrimaryKey"] for f in listed] == ["doc-0", "doc-1", "doc-2"]
    assert [f["FileId"] for f in listed] == file_ids
    assert listed[0]["InputFile"] == {"Bucket": "text-bucket", "Location": "oss-cn-shanghai", "Object": "docs/0.txt"}
    assert all(f["StoreTime"].endswith("Z") for f in listed)
    future = core.call(ListFpShotFilesRequest(), FpDBId=lib, StartTime="2999-01-01T00:00:00Z")
    assert future["FpShotFileList"] == {"FpShotFile": []}

    deletion = core.call(
        SubmitFpFileDeleteJobRequest(), FpDBId=lib, PrimaryKeys="doc-0", FileIds=file_ids[2], UserData="del"
    )
    assert service.wait_for_job(deletion["JobId"]).state == "Success"
    body = core.call(QueryFpFileDeleteJobListRequest(), JobIds=f"{deletion['JobId']},{'e' * 32}")
    [job] = body["FpFileDeleteJobList"]["FpFileDeleteJob"]
    assert (job["Status"], job["FpDBId"], job["UserData"]) == ("Success", lib, "del")
    assert sorted(job["FileIds"].split(",")) == sorted([file_ids[0], file_ids[2]])
    assert body["NonExistIds"] == {"String": ["e" * 32]}
    remaining = core.call(ListFpShotFilesRequest(), FpDBId=lib)["FpShotFileList"]["FpShotFile"]
    assert [f["PrimaryKey"] for f in remaining] == ["doc-1"]
    recent = core.call(QueryFpFileDeleteJobListRequest())["FpFileDeleteJobList"]["FpFileDeleteJob"]
    assert [j["Id"] for j in recent] == [deletion["JobId"]]
    nothing = _error(lambda: core.call(SubmitFpFileDeleteJobRequest(), FpDBId=lib))
    assert nothing.get_error_code() == "InvalidParameter"
    too_many = _error(
        lambda: core.call(SubmitFpFileDeleteJobRequest(), FpDBId=lib, PrimaryKeys=",".join(map(str, range(201))))
    )
    assert too_many.get_error_code() == "InvalidParameter"

    purge = core.call(SubmitFpDBDeleteJobRequest(), FpDBId=lib)["JobId"]
    assert service.wait_for_job(purge).state == "Success"
    assert core.call(ListFpShotFilesRequest(), FpDBId=lib)["FpShotFileList"] == {"FpShotFile": []}
    delete = core.call(SubmitFpDBDeleteJobRequest(), FpDBId=lib, DelType="Delete")["JobId"]
    assert service.wait_for_job(delete).state == "Success"
    jobs_body = core.call(QueryFpDBDeleteJobListRequest(), JobIds=f"{purge},{delete}")
    assert [(j["DelType"], j["Status"]) for j in jobs_body["FpDBDeleteJobList"]["FpDBDeleteJob"]] == [
        ("Purge", "Success"),
        ("Delete", "Success"),
    ]
    gone = core.call(ListFpShotDBRequest(), FpDBIds=lib)
    assert gone == {"RequestId": gone["RequestId"], "FpShotDBList": {"FpShotDB": []}, "NonExistIds": {"String": [lib]}}
    unknown = _error(lambda: core.call(SubmitFpDBDeleteJobRequest(), FpDBId=lib))
    assert (unknown.get_http_status(), unknown.get_error_code()) == (400, "InvalidParameter.DBNotExist")
    bad_type = _error(lambda: core.call(SubmitFpDBDeleteJobRequest(), FpDBId=lib, DelType="Shred"))
    assert bad_type.get_error_code() == "InvalidParameter"


def test_text_import_jobs(service: EngineService, core: CoreMps, oss: Oss) -> None:
    lib = create_library(core, 11, "books")
    for n in range(2):
        oss.put("text-bucket", f"books/{n}.txt", text_synth.document(200 + n, 1500, "en"))
    entries = [
        {"PrimaryKey": f"book-{n}", "Bucket": "text-bucket", "Location": "oss-cn-shanghai", "Object": f"books/{n}.txt"}
        for n in range(2)
    ]
    listing = oss.put("text-bucket", "imports/list.txt", "\n".join(json.dumps(e) for e in entries) + "\n")
    job = core.call(
        ImportFpShotJobRequest(), FpDBId=lib, Input=listing, FpImportConfig='{"SaveType":"onlysave"}', UserData="imp"
    )["JobId"]
    assert service.wait_for_job(job).state == "Success"

    broken_entries = [
        {**entries[0], "PrimaryKey": "book-0-copy"},  # `save`: a duplicate of book-0, not stored
        {**entries[1], "PrimaryKey": "book-x", "Object": "books/missing.txt"},
        {"nope": 1},
    ]
    broken = oss.put("text-bucket", "imports/broken.txt", "\n".join(json.dumps(e) for e in broken_entries))
    failed = core.call(ImportFpShotJobRequest(), FpDBId=lib, Input=broken, FpImportConfig='{"SaveType":"save"}')[
        "JobId"
    ]
    assert service.wait_for_job(failed).state == "Fail"

    body = core.call(ListFpShotImportJobRequest(), JobIds=f"{job},{failed},{'a' * 32}")
    ok, bad = body["FpShotImportJobList"]
    assert body["NonExistIds"] == ["a" * 32]  # this API answers bare arrays
    assert (ok["Status"], ok["FpDBId"], ok["UserData"], ok["FpImportConfig"]) == (
        "Success",
        lib,
        "imp",
        '{"SaveType":"onlysave"}',
    )
    assert ok["ProcessMessage"].startswith("2 entries: 2 stored")
    assert (bad["Status"], bad["Code"]) == ("Fail", "InvalidInput.NotFound")
    assert bad["Message"].startswith("line 2: The object oss://text-bucket/books/missing.txt does not exist.")
    assert bad["ProcessMessage"] == "3 entries: 0 stored, 1 duplicates skipped, 2 failed"
    keys = [f["PrimaryKey"] for f in core.call(ListFpShotFilesRequest(), FpDBId=lib)["FpShotFileList"]["FpShotFile"]]
    assert keys == ["book-0", "book-1"]

    video = create_library(core, 12, "films")
    wrong = _error(
        lambda: core.call(ImportFpShotJobRequest(), FpDBId=video, Input=listing, FpImportConfig='{"SaveType":"save"}')
    )
    assert wrong.get_error_code() == "InvalidParameter"
    config = _error(
        lambda: core.call(ImportFpShotJobRequest(), FpDBId=lib, Input=listing, FpImportConfig='{"SaveType":"nosave"}')
    )
    assert config.get_error_code() == "InvalidParameter"


def test_pipelines(service: EngineService, core: CoreMps, oss: Oss) -> None:
    tea = tea_client(service)
    added = tea.add_pipeline(
        tea_models.AddPipelineRequest(name="dna", speed="AIVideoFPShot", notify_config='{"Topic":"mts-topic"}')
    ).body.pipeline
    assert (added.name, added.state, added.speed, added.notify_config.topic) == (
        "dna",
        "Active",
        "AIVideoFPShot",
        "mts-topic",
    )
    other = core.common("AddPipeline", Name="plain")["Pipeline"]
    assert (other["Speed"], other["State"], other["NotifyConfig"]) == ("Standard", "Active", {})

    updated = core.call(
        UpdatePipelineRequest(),
        PipelineId=added.id,
        Name="dna-2",
        State="Paused",
        NotifyConfig='{"QueueName":"mts-queue"}',
    )
    assert updated["Pipeline"]["NotifyConfig"] == {"QueueName": "mts-queue"}
    assert (updated["Pipeline"]["Name"], updated["Pipeline"]["State"]) == ("dna-2", "Paused")

    listed = core.call(QueryPipelineListRequest(), PipelineIds=f"{added.id},{'9' * 32}")
    [pipeline] = listed["PipelineList"]["Pipeline"]
    assert (pipeline["Id"], pipeline["Name"], pipeline["State"]) == (added.id, "dna-2", "Paused")
    assert listed["NonExistPids"] == {"String": ["9" * 32]}

    search = core.call(SearchPipelineRequest(), State="Paused")
    assert (search["TotalCount"], [p["Id"] for p in search["PipelineList"]["Pipeline"]]) == (1, [added.id])
    everything = core.call(SearchPipelineRequest(), PageSize=1, PageNumber=2)
    assert (everything["TotalCount"], everything["PageNumber"], everything["PageSize"]) == (2, 2, 1)
    assert [p["Id"] for p in everything["PipelineList"]["Pipeline"]] == [other["Id"]]

    # Jobs of a paused pipeline fail (MPS UpdatePipeline doc); resumed, they run.
    input_ = oss.put("text-bucket", "p.txt", text_synth.document(7, 800, "en"))
    paused = submit(core, input_, {"PrimaryKey": "p", "SaveType": "nosave"}, PipelineId=added.id)
    assert service.wait_for_job(paused).code == "InvalidParameter.PipelinePaused"
    core.call(UpdatePipelineRequest(), PipelineId=added.id, Name="dna-2", State="Active")
    resumed = submit(core, input_, {"PrimaryKey": "p", "SaveType": "nosave"}, PipelineId=added.id)
    assert service.wait_for_job(resumed).state == "Success"

    missing = _error(lambda: core.call(UpdatePipelineRequest(), PipelineId="8" * 32, Name="x", State="Active"))
    assert (missing.get_http_status(), missing.get_error_code()) == (404, "InvalidParameter.ResourceNotFound")
    state = _error(lambda: core.call(UpdatePipelineRequest(), PipelineId=added.id, Name="x", State="Sleeping"))
    assert state.get_error_code() == "InvalidParameter"
    no_name = _error(lambda: core.common("AddPipeline", Speed="AIVideoFPShot"))
    assert no_name.get_error_code() == "MissingName"
    bad_notify = _error(lambda: core.common("AddPipeline", Name="x", NotifyConfig="topic"))
    assert bad_notify.get_error_code() == "InvalidParameter.JsonFormatInvalid"
