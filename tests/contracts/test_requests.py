from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.contracts.mps import (
    FpShotConfig,
    InputFile,
    QueryFpShotJobListRequest,
    SubmitFpShotJobRequest,
)


def test_submit_request_wire_shape() -> None:
    request = SubmitFpShotJobRequest(
        input=InputFile(bucket="b", location="oss-cn-shanghai", object="a b/电影.mp4"),
        fp_shot_config=FpShotConfig(primary_key="pk", save_type="save", fp_db_id="db", similarity_threshold=0.7),
        pipeline_id="p",
        user_data="fpscreen:abc",
    )
    wire = request.to_wire()
    assert set(wire) == {"Input", "FpShotConfig", "PipelineId", "UserData"}
    assert json.loads(wire["Input"]) == {"Bucket": "b", "Location": "oss-cn-shanghai", "Object": "a b/电影.mp4"}
    assert json.loads(wire["FpShotConfig"]) == {
        "PrimaryKey": "pk",
        "SaveType": "save",
        "FpDBId": "db",
        "SimilarityThreshold": 0.7,
    }
    # what a server receives parses back to the same request
    assert SubmitFpShotJobRequest.model_validate(wire) == request


@pytest.mark.parametrize("user_data", ["x" * 129, "#starts-with-special", "é" * 65])
def test_user_data_rules(user_data: str) -> None:
    with pytest.raises(ValidationError, match="UserData"):
        SubmitFpShotJobRequest(
            input=InputFile(bucket="b", location="l", object="o"),
            fp_shot_config=FpShotConfig(primary_key="pk", save_type="nosave"),
            user_data=user_data,
        )


def test_bad_json_and_bad_save_type_are_refused() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        SubmitFpShotJobRequest.model_validate(
            {"Input": "{nope", "FpShotConfig": '{"PrimaryKey":"p","SaveType":"save"}'}
        )
    with pytest.raises(ValidationError, match="SaveType"):
        SubmitFpShotJobRequest.model_validate(
            {"Input": '{"Bucket":"b","Location":"l","Object":"o"}', "FpShotConfig": '{"PrimaryKey":"p","SaveType":"x"}'}
        )


def test_query_job_ids_comma_list_and_limit() -> None:
    request = QueryFpShotJobListRequest.model_validate({"JobIds": "a, b,c"})
    assert request.job_ids == ["a", "b", "c"]
    assert request.to_wire() == {"JobIds": "a,b,c"}
    with pytest.raises(ValidationError, match="at most 10"):
        QueryFpShotJobListRequest(job_ids=[str(i) for i in range(11)])
