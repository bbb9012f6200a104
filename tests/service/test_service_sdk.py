"""The service end to end through both official SDKs, unmodified, over loopback: libraries, jobs, results."""

from __future__ import annotations

import json

import pytest
from alibabacloud_mts20140618 import models as tea_models
from alibabacloud_mts20140618.client import Client as TeaClient
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkmts.request.v20140618.ListFpShotDBRequest import ListFpShotDBRequest
from aliyunsdkmts.request.v20140618.ListFpShotFilesRequest import ListFpShotFilesRequest

from engine.service.app import EngineService
from shared.contracts.mps import (
    FpShotConfig,
    InputFile,
    QueryFpShotJobListRequest,
    QueryFpShotJobListResponse,
    SubmitFpShotJobRequest,
)
from shared.credentials import Credentials
from shared.mps import MpsClient, RetryPolicy, Unlimited
from tests.service.conftest import (
    AK,
    SK,
    TEXT_ORIGINAL,
    TEXT_OTHER,
    CoreMps,
    Media,
    Oss,
    create_library,
    input_json,
    query_jobs,
    submit,
)


def test_video_library_flow_with_the_core_sdk(service: EngineService, core: CoreMps, oss: Oss, media: Media) -> None:
    """Store a video (`onlysave`), screen a re-encoded 2 s excerpt of it (`nosave`): the right PrimaryKey, aligned."""
    lib = create_library(core, 12, "films")
    oss.put("media-bucket", "library/film 1.mp4", media.video)
    film_input = input_json("media-bucket", "library/film%201.mp4")  # MPS: Object is URL-encoded
    stored = submit(core, film_input, {"PrimaryKey": "film-1", "SaveType": "onlysave", "FpDBId": lib}, UserData="u1")
    assert service.wait_for_job(stored).state == "Success"

    clip_input = oss.put("media-bucket", "uploads/clip.mp4", media.clip)
    screened = submit(core, clip_input, {"PrimaryKey": "clip-1", "SaveType": "nosave", "FpDBId": lib})
    assert service.wait_for_job(screened).state == "Success"

    body = query_jobs(core, stored, screened)
    assert "NonExistIds" not in body
    first, second = body["FpShotJobList"]["FpShotJob"]
    assert (first["Id"], first["State"], first["UserData"]) == (stored, "Success", "u1")
    assert len(first["FileId"]) == 32 and "FileId" not in second  # nosave stores nothing
    assert first["Input"] == film_input  # echoed as submitted
    assert first["InputFile"] == {
        "Bucket": "media-bucket",
        "Location": "oss-cn-shanghai",
        "Object": "library/film%201.mp4",
    }
    assert first["Duration"] == 6 and second["Duration"] == 2
    assert isinstance(second["Duration"], int)
    assert first["CreationTime"].endswith("Z") and first["FinishTime"].endswith("Z")

    result = second["FpShotResult"]
    assert result["AudioFpShots"] == {"FpShot": []}  # the synthetic clips are silent
    [shot] = result["FpShots"]["FpShot"]
    assert shot["PrimaryKey"] == "film-1"
    assert isinstance(shot["Similarity"], str) and float(shot["Similarity"]) > 0.5
    slices = shot["FpShotSlices"]["FpShotSlice"]
    assert slices and all(isinstance(s["Input"]["Start"], str) for s in slices)
    assert float(slices[0]["Input"]["Start"]) == pytest.approx(0.0, abs=1.0)
    assert float(slices[0]["Duplication"]["Start"]) == pytest.approx(2.0, abs=1.0)
    last = slices[-1]["Duplication"]
    assert float(last["Start"]) + float(last["Duration"]) == pytest.approx(4.0, abs=1.0)

    # The shared contract parses the very same body.
    parsed = QueryFpShotJobListResponse.model_validate(body)
    assert parsed.jobs[1].fp_shot_result is not None
    assert [s.primary_key for s in parsed.jobs[1].fp_shot_result.video_matches()] == ["film-1"]

    files = core.call(ListFpShotFilesRequest(), FpDBId=lib)
    [stored_file] = files["FpShotFileList"]["FpShotFile"]
    assert stored_file["PrimaryKey"] == "film-1" and stored_file["FileId"] == first["FileId"]
    assert stored_file["InputFile"]["Object"] == "library/film%201.mp4"
    assert "NextPageToken" not in files

    libraries = core.call(ListFpShotDBRequest(), FpDBIds=lib)["FpShotDBList"]["FpShotDB"]
    assert libraries == [{"FpDBId": lib, "Name": "films", "ModelId": 12, "Status": "active"}]

    # Feedback is taken on failed jobs only (the API's own words); a successful job's is refused and not stored.
    with pytest.raises(ServerException) as refused:
        core.common("ReportFpShotJobResult", JobId=screened, Result="false positive", Details="a trailer")
    assert (refused.value.get_http_status(), refused.value.get_error_code()) == (400, "InvalidParameter")
    assert "failed jobs only" in refused.value.get_error_msg()
    assert service.jobs.store.reports(screened) == []
    broken_input = oss.put("media-bucket", "uploads/broken.mp4", media.corrupt)
    broken = submit(core, broken_input, {"PrimaryKey": "broken-1", "SaveType": "nosave", "FpDBId": lib})
    assert service.wait_for_job(broken).state == "Fail"
    report = core.common("ReportFpShotJobResult", JobId=broken, Result="undecodable", Details="a corrupt upload")
    assert report["JobId"] == broken and report["RequestId"]
    assert service.jobs.store.reports(broken)[0][:2] == ("undecodable", "a corrupt upload")


def test_text_library_flow_with_the_tea_sdk(service: EngineService, tea: TeaClient, oss: Oss) -> None:
    """ACS3-signed calls: a text library (ModelId 11), `forcesave` then `nosave` of a passage of it."""
    created = tea.create_fp_shot_db(tea_models.CreateFpShotDBRequest(name="books", model_id=11, description="d"))
    assert created.status_code == 200
    db = created.body.fp_shot_db
    assert (db.name, db.model_id, db.state, db.description) == ("books", 11, "active", "d")

    original = oss.put("text-bucket", "books/original.txt", TEXT_ORIGINAL)
    passage = oss.put("text-bucket", "uploads/passage.txt", TEXT_OTHER[:800] + TEXT_ORIGINAL[1000:1800])
    config = {"PrimaryKey": "book-1", "SaveType": "forcesave", "FpDBId": db.fp_dbid}
    stored = tea.submit_fp_shot_job(
        tea_models.SubmitFpShotJobRequest(input=original, fp_shot_config=json.dumps(config), user_data="tea")
    ).body.job_id
    screened = tea.submit_fp_shot_job(
        tea_models.SubmitFpShotJobRequest(
            input=passage, fp_shot_config=json.dumps({"PrimaryKey": "q", "SaveType": "nosave", "FpDBId": db.fp_dbid})
        )
    ).body.job_id
    assert service.wait_for_job(stored).state == "Success"
    assert service.wait_for_job(screened).state == "Success"

    response = tea.query_fp_shot_job_list(tea_models.QueryFpShotJobListRequest(job_ids=f"{screened},{'0' * 32}")).body
    assert response.non_exist_ids.string == ["0" * 32]
    [job] = response.fp_shot_job_list.fp_shot_job
    assert (job.id, job.state, job.fp_shot_config.save_type) == (screened, "Success", "nosave")
    [shot] = job.fp_shot_result.text_fp_shots.text_fp_shot
    assert shot.primary_key == "book-1" and float(shot.similarity) > 0.9
    [piece] = shot.text_fp_shot_slices.text_fp_shot_slice
    assert TEXT_ORIGINAL[1010:1790] in piece.duplication_text
    assert float(piece.input_fragment.start) == pytest.approx(800, abs=15)

    listed = tea.list_fp_shot_db(tea_models.ListFpShotDBRequest(fp_dbids=f"{db.fp_dbid},{'f' * 32}")).body
    assert [d.fp_dbid for d in listed.fp_shot_dblist.fp_shot_db] == [db.fp_dbid]
    assert listed.non_exist_ids.string == ["f" * 32]


def test_job_without_fp_db_id_uses_the_default_library(service: EngineService, core: CoreMps, oss: Oss) -> None:
    job = submit(core, oss.put("text-bucket", "a.txt", TEXT_ORIGINAL), {"PrimaryKey": "k", "SaveType": "save"})
    assert service.wait_for_job(job).state == "Success"
    [shown] = query_jobs(core, job)["FpShotJobList"]["FpShotJob"]
    default = [lib for lib in service.library.list_libraries() if lib.is_default]
    assert [lib.model_id for lib in default] == [11]
    assert shown["FpShotConfig"]["FpDBId"] == default[0].fp_db_id  # the library the job actually used


def test_the_projects_own_mps_client_works_against_it(service: EngineService, oss: Oss) -> None:
    """shared.mps.MpsClient (what the FC functions use) submits and queries like against Alibaba."""
    client = MpsClient(
        Credentials(AK, SK),
        endpoint=service.url,
        rate_limiter=Unlimited(),
        retry_policy=RetryPolicy(max_attempts=1, deadline=None),
    )
    oss.put("text-bucket", "uploads/a clip+1 ~*.txt", TEXT_ORIGINAL)
    request = SubmitFpShotJobRequest(
        input=InputFile(bucket="text-bucket", location="oss-cn-shanghai", object="uploads/a clip+1 ~*.txt"),
        fp_shot_config=FpShotConfig(primary_key="doc 1", save_type="save"),
        user_data="upload 42",
    )
    job_id = client.submit_fp_shot_job(request).job_id
    service.wait_for_job(job_id)
    [job] = client.query_fp_shot_job_list(QueryFpShotJobListRequest(job_ids=[job_id])).jobs
    assert (job.state, job.user_data, job.input_file, job.file_id is not None) == (
        "Success",
        "upload 42",
        request.input,
        True,
    )
