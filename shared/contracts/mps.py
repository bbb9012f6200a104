"""MPS (Mts 2014-06-18) media fingerprint API: requests, responses and result shapes, field for field.

Lists are wrapped the way MPS wraps them (`FpShotJobList.FpShotJob[]`, `NonExistIds.String[]`), numbers that
MPS sends as strings are floats here and strings again on the wire. Source: ../shared/spec (seed pages, reference).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from shared.contracts.modalities import MODALITIES, SPEC_BY_NAME

# CreateFpShotDB ModelId (which media a library holds), defined with the modality table and re-exported here.
from shared.contracts.modalities import MODEL_AUDIO as MODEL_AUDIO
from shared.contracts.modalities import MODEL_TEXT as MODEL_TEXT
from shared.contracts.modalities import MODEL_VIDEO as MODEL_VIDEO
from shared.contracts.wire import FROM_JSON_STRING, TO_JSON_STRING, StrFloat, WireModel
from shared.vocabulary import (
    ANALYSING,
    JOB_STATES,
    MAX_BUCKET_LENGTH,
    MAX_LOCATION_LENGTH,
    MAX_OBJECT_LENGTH,
    MAX_QUERY_PAGE_SIZE,
    MAX_USER_DATA_BYTES,
    JobState,
    QueryState,
)
from shared.vocabulary import FINAL_STATES as FINAL_STATES  # re-exported (with the two below) for older importers
from shared.vocabulary import MAX_QUERY_JOB_IDS as MAX_QUERY_JOB_IDS
from shared.vocabulary import STATE_RANK as STATE_RANK

API_VERSION = "2014-06-18"


SaveType = Literal["nosave", "save", "forcesave", "onlysave"]
TextType = Literal["Text", "ASR"]

_SPECIAL_LEADING = re.compile(r"^[^0-9A-Za-z\u0080-\uffff]")


def validate_user_data(value: str) -> str:
    """MPS rule: at most 128 bytes and must not start with a special character."""
    if len(value.encode("utf-8")) > MAX_USER_DATA_BYTES:
        raise ValueError(f"UserData is {len(value.encode('utf-8'))} bytes; MPS allows {MAX_USER_DATA_BYTES}")
    if value and _SPECIAL_LEADING.match(value):
        raise ValueError("UserData must not start with a special character")
    return value


def _split_ids(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# `JobIds=a,b,c` on the wire, a list in Python.
CommaList = Annotated[
    list[str],
    BeforeValidator(_split_ids),
    PlainSerializer(lambda ids: ",".join(ids), return_type=str, when_used="json"),
]


def _int_from_wire(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        return int(float(text)) if text else 0
    return value


# Integers that MPS usually sends as JSON numbers but may send as strings (Duration, ModelId).
WireInt = Annotated[int, BeforeValidator(_int_from_wire)]


class InputFile(WireModel):
    """The OSS triple of a job input: `{"Bucket","Location","Object"}` (Object is URL-encoded UTF-8).

    MPS limits the Object to 1,024 bytes of UTF-8 (an OSS key is at most 1,023): the limit applies to the key,
    not to its percent-encoded form, which is up to three times longer (a 372-byte Chinese key is 1,116
    characters encoded and perfectly valid)."""

    bucket: str = Field(min_length=1, max_length=MAX_BUCKET_LENGTH)
    location: str = Field(min_length=1, max_length=MAX_LOCATION_LENGTH)
    object: str = Field(min_length=1)

    @field_validator("object")
    @classmethod
    def _key_bytes_within_limit(cls, value: str) -> str:
        size = len(unquote(value).encode("utf-8", errors="surrogatepass"))
        if size > MAX_OBJECT_LENGTH:
            raise ValueError(f"Object is a {size}-byte key; MPS allows {MAX_OBJECT_LENGTH} bytes")
        return value


class FpShotConfig(WireModel):
    primary_key: str = Field(min_length=1)
    save_type: SaveType
    fp_db_id: str | None = Field(default=None, alias="FpDBId")
    text_type: TextType | None = None
    similarity_threshold: float | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("similarity_threshold", mode="before")
    @classmethod
    def _threshold_from_string(cls, value: Any) -> Any:
        return _parse_optional_float(value)


def _parse_optional_float(value: Any) -> Any:
    if isinstance(value, str):
        return float(value) if value.strip() else None
    return value


class SubmitFpShotJobRequest(WireModel):
    input: Annotated[InputFile, FROM_JSON_STRING, TO_JSON_STRING]
    fp_shot_config: Annotated[FpShotConfig, FROM_JSON_STRING, TO_JSON_STRING]
    pipeline_id: str | None = None
    user_data: str | None = None

    @field_validator("user_data")
    @classmethod
    def _user_data_rules(cls, value: str | None) -> str | None:
        return None if value is None else validate_user_data(value)


class SubmitFpShotJobResponse(WireModel):
    request_id: str
    job_id: str


class QueryFpShotJobListRequest(WireModel):
    job_ids: CommaList | None = None
    pipeline_id: str | None = None
    state: QueryState | None = None
    start_of_job_created_time_range: str | None = None
    end_of_job_created_time_range: str | None = None
    maximum_page_size: int | None = Field(default=None, ge=1, le=MAX_QUERY_PAGE_SIZE)
    next_page_token: str | None = None

    @field_validator("job_ids")
    @classmethod
    def _at_most_ten(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(value) > MAX_QUERY_JOB_IDS:
            raise ValueError(f"at most {MAX_QUERY_JOB_IDS} JobIds per query, got {len(value)}")
        return value


class TimeSpan(WireModel):
    """`{"Start","Duration"}` in seconds (text jobs on plain text: characters)."""

    start: StrFloat = 0.0
    duration: StrFloat = 0.0

    @property
    def end(self) -> float:
        return self.start + self.duration


class FpShotSlice(WireModel):
    input: TimeSpan
    duplication: TimeSpan
    similarity: StrFloat = 0.0


class FpShotSlices(WireModel):
    fp_shot_slice: list[FpShotSlice] = Field(default_factory=list)


class FpShot(WireModel):
    """One matched library item (video or audio) with its aligned slices."""

    primary_key: str
    similarity: StrFloat = 0.0
    fp_shot_slices: FpShotSlices = Field(default_factory=FpShotSlices)

    @property
    def slices(self) -> list[FpShotSlice]:
        return self.fp_shot_slices.fp_shot_slice


class FpShots(WireModel):
    fp_shot: list[FpShot] = Field(default_factory=list)


class TextFpShotSlice(WireModel):
    similarity: StrFloat = 0.0
    input_text: str = ""
    duplication_text: str = ""
    input_fragment: TimeSpan = Field(default_factory=TimeSpan)


class TextFpShotSlices(WireModel):
    text_fp_shot_slice: list[TextFpShotSlice] = Field(default_factory=list)


class TextFpShot(WireModel):
    primary_key: str
    similarity: StrFloat = 0.0
    text_fp_shot_slices: TextFpShotSlices = Field(default_factory=TextFpShotSlices)

    @property
    def slices(self) -> list[TextFpShotSlice]:
        return self.text_fp_shot_slices.text_fp_shot_slice


class TextFpShots(WireModel):
    text_fp_shot: list[TextFpShot] = Field(default_factory=list)


class FpShotResult(WireModel):
    fp_shots: FpShots | None = None
    audio_fp_shots: FpShots | None = None
    text_fp_shots: TextFpShots | None = None

    def video_matches(self) -> list[FpShot]:
        return self.fp_shots.fp_shot if self.fp_shots else []

    def audio_matches(self) -> list[FpShot]:
        return self.audio_fp_shots.fp_shot if self.audio_fp_shots else []

    def text_matches(self) -> list[TextFpShot]:
        return self.text_fp_shots.text_fp_shot if self.text_fp_shots else []

    def matches_of(self, modality: str) -> list[FpShot] | list[TextFpShot]:
        """The matched items a modality reports (`shared.contracts.modalities`), [] when its key is absent."""
        spec = SPEC_BY_NAME[modality]
        shots: FpShots | TextFpShots | None = getattr(self, spec.result_field)
        if shots is None:
            return []
        return shots.text_fp_shot if isinstance(shots, TextFpShots) else shots.fp_shot

    def has_matches(self) -> bool:
        return any(self.matches_of(spec.name) for spec in MODALITIES)


def _known_state(data: Any) -> Any:
    """A State MPS may add one day (not in JOB_STATES) must not fail the whole QueryFpShotJobList response:
    it is kept in `UnknownState` and the job counts as still running (Analysing) until a known state comes."""
    if isinstance(data, dict):
        for key in ("State", "state"):  # by alias (the wire) or by name (built in Python)
            state = data.get(key)
            if isinstance(state, str) and state not in JOB_STATES:
                return {**data, key: ANALYSING, "UnknownState": state}
    return data


class FpShotJob(WireModel):
    id: str
    pipeline_id: str | None = None
    state: JobState
    unknown_state: str | None = Field(default=None, exclude=True)  # the State MPS sent, when not ours
    code: str | None = None
    message: str | None = None
    user_data: str | None = None
    creation_time: str | None = None
    finish_time: str | None = None
    duration: WireInt | None = None
    file_id: str | None = None
    input: str | None = None
    input_file: InputFile | None = None
    fp_shot_config: FpShotConfig | None = None
    fp_shot_result: FpShotResult | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_unknown_state(cls, data: Any) -> Any:
        return _known_state(data)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class FpShotJobList(WireModel):
    fp_shot_job: list[FpShotJob] = Field(default_factory=list)


class StringList(WireModel):
    string: list[str] = Field(default_factory=list)


class QueryFpShotJobListResponse(WireModel):
    request_id: str
    next_page_token: str | None = None
    fp_shot_job_list: FpShotJobList = Field(default_factory=FpShotJobList)
    non_exist_ids: StringList | None = None

    @property
    def jobs(self) -> list[FpShotJob]:
        return self.fp_shot_job_list.fp_shot_job

    @property
    def missing_ids(self) -> list[str]:
        return self.non_exist_ids.string if self.non_exist_ids else []


class ReportFpShotJobResultRequest(WireModel):
    job_id: str = Field(min_length=1)
    result: str = Field(min_length=1)
    details: str | None = None


class ReportFpShotJobResultResponse(WireModel):
    request_id: str
    job_id: str


class FpShotDB(WireModel):
    """A fingerprint library. CreateFpShotDB answers with `State`, ListFpShotDB with `Status`."""

    fp_db_id: str = Field(alias="FpDBId")
    name: str | None = None
    model_id: WireInt | None = None
    state: str | None = None
    status: str | None = None
    description: str | None = None
    config: str | None = None


class ErrorResponse(WireModel):
    """Alibaba's error body: `{"RequestId","HostId","Code","Message"}` with a 4xx/5xx status."""

    request_id: str
    host_id: str
    code: str
    message: str
