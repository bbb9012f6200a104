"""Wire models of the MPS actions the engine serves beyond those in `shared.contracts.mps`.

Shapes follow the TeaSDK response models (alibabacloud-mts20140618 6.0.3) key for key: lists wrapped the way
MPS wraps them (`FpShotDBList.FpShotDB[]`, `PipelineList.Pipeline[]`), except `ListFpShotImportJob`, which
MPS answers with bare arrays. Integers the SDK types as `int` (ModelId, SpeedLevel, TotalCount) are JSON numbers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.contracts.mps import (
    CommaList,
    FpShotDB,
    InputFile,
    StringList,
    WireInt,
    validate_user_data,
)
from shared.contracts.wire import WireModel, json_string_of

MAX_LIST_IDS = 10  # JobIds, FpDBIds, PipelineIds per call
MAX_DELETE_IDS = 200  # FileIds / PrimaryKeys per SubmitFpFileDeleteJob
# MPS documents no length for PrimaryKey; it gets the 128-byte bound MPS documents for UserData (the other
# caller-chosen identifier of a job). The functions' keys are 32 hex characters.
MAX_PRIMARY_KEY_BYTES = 128

PipelineState = Literal["Active", "Paused"]
# ROS ALIYUN::MPS::Pipeline `Speed` values; fingerprint jobs belong in an `AIVideoFPShot` pipeline.
PIPELINE_SPEEDS: frozenset[str] = frozenset(
    {
        "Standard",
        "Boost",
        "NarrowBandHDV2",
        "AIVideoCover",
        "AIVideoFPShot",
        "AIVideoCensor",
        "AIVideoMCU",
        "AIVideoSummary",
        "AIVideoPorn",
        "AIAudioKWS",
        "AIAudioASR",
        "AIVideoTag",
    }
)


def _at_most(limit: int, name: str, value: list[str] | None) -> list[str] | None:
    if value is not None and len(value) > limit:
        raise ValueError(f"at most {limit} {name} per call, got {len(value)}")
    return value


def check_primary_key(value: str, name: str = "PrimaryKey") -> str:
    size = len(value.encode("utf-8"))
    if size > MAX_PRIMARY_KEY_BYTES:
        raise ValueError(f"{name} is {size} bytes; at most {MAX_PRIMARY_KEY_BYTES}")
    return value


def _user_data(value: str | None) -> str | None:
    return None if value is None else validate_user_data(value)


# ---------------------------------------------------------------------------------------------- libraries


class CreateFpShotDBRequest(WireModel):
    name: str = Field(min_length=1, max_length=128)
    model_id: WireInt
    description: str | None = Field(default=None, max_length=1024)
    config: str | None = None


class CreateFpShotDBResponse(WireModel):
    request_id: str
    fp_shot_db: FpShotDB = Field(alias="FpShotDB")


class ListFpShotDBRequest(WireModel):
    fp_db_ids: CommaList | None = Field(default=None, alias="FpDBIds")

    @field_validator("fp_db_ids")
    @classmethod
    def _limit(cls, value: list[str] | None) -> list[str] | None:
        return _at_most(MAX_LIST_IDS, "FpDBIds", value)


class FpShotDBList(WireModel):
    fp_shot_db: list[FpShotDB] = Field(default_factory=list, alias="FpShotDB")


class ListFpShotDBResponse(WireModel):
    request_id: str
    fp_shot_db_list: FpShotDBList = Field(default_factory=FpShotDBList, alias="FpShotDBList")
    non_exist_ids: StringList | None = None


class ListFpShotFilesRequest(WireModel):
    fp_db_id: str = Field(min_length=1, alias="FpDBId")
    page_size: int = Field(default=20, ge=1, le=100)
    next_page_token: str | None = None
    start_time: str | None = None
    end_time: str | None = None


class FpShotFileInput(WireModel):
    """Where a stored file came from; all optional, since the CLI stores plain paths."""

    bucket: str | None = None
    location: str | None = None
    object: str | None = None


class FpShotFile(WireModel):
    file_id: str
    primary_key: str
    store_time: str
    input_file: FpShotFileInput | None = None


class FpShotFileList(WireModel):
    fp_shot_file: list[FpShotFile] = Field(default_factory=list)


class ListFpShotFilesResponse(WireModel):
    request_id: str
    next_page_token: str | None = None
    fp_shot_file_list: FpShotFileList = Field(default_factory=FpShotFileList)


# ---------------------------------------------------------------------------------------------- delete jobs


class JobIdResponse(WireModel):
    """`{"RequestId","JobId"}`: every Submit*/Import action."""

    request_id: str
    job_id: str


class JobIdsRequest(WireModel):
    job_ids: CommaList | None = None

    @field_validator("job_ids")
    @classmethod
    def _limit(cls, value: list[str] | None) -> list[str] | None:
        return _at_most(MAX_LIST_IDS, "JobIds", value)


class SubmitFpFileDeleteJobRequest(WireModel):
    fp_db_id: str = Field(min_length=1, alias="FpDBId")
    file_ids: CommaList | None = None
    primary_keys: CommaList | None = None
    pipeline_id: str | None = None
    user_data: str | None = None

    @field_validator("file_ids")
    @classmethod
    def _file_limit(cls, value: list[str] | None) -> list[str] | None:
        return _at_most(MAX_DELETE_IDS, "FileIds", value)

    @field_validator("primary_keys")
    @classmethod
    def _key_limit(cls, value: list[str] | None) -> list[str] | None:
        for key in value or []:
            check_primary_key(key, "each of PrimaryKeys")
        return _at_most(MAX_DELETE_IDS, "PrimaryKeys", value)

    @field_validator("user_data")
    @classmethod
    def _user_data_rules(cls, value: str | None) -> str | None:
        return _user_data(value)


class FpFileDeleteJob(WireModel):
    id: str
    pipeline_id: str | None = None
    status: str
    code: str | None = None
    message: str | None = None
    user_data: str | None = None
    fp_db_id: str | None = Field(default=None, alias="FpDBId")
    file_ids: str | None = None
    creation_time: str | None = None
    finish_time: str | None = None


class FpFileDeleteJobList(WireModel):
    fp_file_delete_job: list[FpFileDeleteJob] = Field(default_factory=list)


class QueryFpFileDeleteJobListResponse(WireModel):
    request_id: str
    fp_file_delete_job_list: FpFileDeleteJobList = Field(default_factory=FpFileDeleteJobList)
    non_exist_ids: StringList | None = None


class SubmitFpDBDeleteJobRequest(WireModel):
    fp_db_id: str = Field(min_length=1, alias="FpDBId")
    del_type: Literal["Purge", "Delete"] = "Purge"
    pipeline_id: str | None = None
    user_data: str | None = None

    @field_validator("user_data")
    @classmethod
    def _user_data_rules(cls, value: str | None) -> str | None:
        return _user_data(value)


class FpDBDeleteJob(WireModel):
    id: str
    pipeline_id: str | None = None
    status: str
    code: str | None = None
    message: str | None = None
    user_data: str | None = None
    fp_db_id: str | None = Field(default=None, alias="FpDBId")
    del_type: str | None = None
    creation_time: str | None = None
    finish_time: str | None = None


class FpDBDeleteJobList(WireModel):
    fp_db_delete_job: list[FpDBDeleteJob] = Field(default_factory=list, alias="FpDBDeleteJob")


class QueryFpDBDeleteJobListResponse(WireModel):
    request_id: str
    fp_db_delete_job_list: FpDBDeleteJobList = Field(default_factory=FpDBDeleteJobList, alias="FpDBDeleteJobList")
    non_exist_ids: StringList | None = None


# ---------------------------------------------------------------------------------------------- import jobs


class FpImportConfig(WireModel):
    save_type: Literal["save", "onlysave"]


class FpImportEntry(WireModel):
    """One line of an import list (MPS `FpImportOSSEntity`): a text file in OSS and the key to store it under."""

    primary_key: str = Field(min_length=1)
    bucket: str = Field(min_length=1, max_length=63)
    location: str = Field(default="", max_length=64)
    object: str = Field(min_length=1, max_length=1024)

    @field_validator("primary_key")
    @classmethod
    def _key_size(cls, value: str) -> str:
        return check_primary_key(value)

    def input_file(self) -> InputFile:
        return InputFile(bucket=self.bucket, location=self.location or "local", object=self.object)


class ImportFpShotJobRequest(WireModel):
    fp_db_id: str = Field(min_length=1, alias="FpDBId")
    input: json_string_of(InputFile)  # type: ignore[valid-type]
    fp_import_config: json_string_of(FpImportConfig)  # type: ignore[valid-type]
    pipeline_id: str | None = None
    user_data: str | None = None

    @field_validator("user_data")
    @classmethod
    def _user_data_rules(cls, value: str | None) -> str | None:
        return _user_data(value)


class FpShotImportJob(WireModel):
    id: str
    fp_db_id: str | None = Field(default=None, alias="FpDBId")
    input: str | None = None
    fp_import_config: str | None = None
    status: str
    code: str | None = None
    message: str | None = None
    process_message: str | None = None
    pipeline_id: str | None = None
    user_data: str | None = None
    create_time: str | None = None
    finish_time: str | None = None


class ListFpShotImportJobResponse(WireModel):
    request_id: str
    fp_shot_import_job_list: list[FpShotImportJob] = Field(default_factory=list)
    non_exist_ids: list[str] | None = None


# ---------------------------------------------------------------------------------------------- pipelines


class NotifyConfig(WireModel):
    """Where finished jobs of a pipeline are announced: an MNS topic or queue (RocketMQ fields kept, unused)."""

    topic: str | None = None
    queue_name: str | None = None
    mq_topic: str | None = None
    mq_tag: str | None = None

    def target(self) -> tuple[str, str] | None:
        """("topic", name) or ("queue", name); a topic wins if both are set, as one message is published."""
        if self.topic:
            return "topic", self.topic
        if self.queue_name:
            return "queue", self.queue_name
        return None


class Pipeline(WireModel):
    id: str
    name: str
    state: str
    speed: str
    speed_level: int | None = None
    role: str | None = None
    quota_allocate: int | None = None
    notify_config: NotifyConfig = Field(default_factory=NotifyConfig)
    creation_time: str | None = None


class AddPipelineRequest(WireModel):
    name: str = Field(min_length=1, max_length=128)
    speed: str = "Standard"
    speed_level: int | None = Field(default=None, ge=1, le=3)
    notify_config: json_string_of(NotifyConfig) | None = None  # type: ignore[valid-type]
    role: str | None = None

    @field_validator("speed")
    @classmethod
    def _known_speed(cls, value: str) -> str:
        if value not in PIPELINE_SPEEDS:
            raise ValueError(f"unknown Speed {value!r}; e.g. AIVideoFPShot or Standard")
        return value


class UpdatePipelineRequest(WireModel):
    pipeline_id: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=128)
    state: PipelineState
    notify_config: json_string_of(NotifyConfig) | None = None  # type: ignore[valid-type]
    role: str | None = None


class PipelineResponse(WireModel):
    """AddPipeline and UpdatePipeline: `{"RequestId","Pipeline":{…}}`."""

    request_id: str
    pipeline: Pipeline


class PipelineIdsRequest(WireModel):
    pipeline_ids: CommaList

    @field_validator("pipeline_ids")
    @classmethod
    def _limit(cls, value: list[str]) -> list[str]:
        return _at_most(MAX_LIST_IDS, "PipelineIds", value) or []


class PipelineList(WireModel):
    pipeline: list[Pipeline] = Field(default_factory=list)


class QueryPipelineListResponse(WireModel):
    request_id: str
    pipeline_list: PipelineList = Field(default_factory=PipelineList)
    non_exist_pids: StringList | None = None


class SearchPipelineRequest(WireModel):
    state: Literal["All", "Active", "Paused"] = "All"
    page_number: int = Field(default=1, ge=1)
    page_size: int = Field(default=10, ge=1, le=100)


class SearchPipelineResponse(WireModel):
    request_id: str
    total_count: int
    page_number: int
    page_size: int
    pipeline_list: PipelineList = Field(default_factory=PipelineList)
