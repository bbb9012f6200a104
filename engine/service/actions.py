"""One function per MPS action: validated parameters in, Alibaba's response JSON out.

Every function takes the service context, the business parameters (envelope parameters already stripped by
`engine.service.auth`) and the request id, and either returns the response body or raises `ActionError` with
Alibaba's code and HTTP status. Parameter conventions, as MPS answers them:
- a required parameter absent (or empty) → `Missing<Name>` (400);
- a JSON parameter that does not parse → `InvalidParameter.JsonFormatInvalid`, not an object →
  `InvalidParameter.JsonObjectFormatInvalid`;
- a number out of its range → `InvalidParameter.OutOfRange`; anything else malformed → `InvalidParameter`;
- an unknown library → `InvalidParameter.DBNotExist` (400); an unknown job or pipeline →
  `InvalidParameter.ResourceNotFound` (404).
"""

from __future__ import annotations

import functools
import json
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from engine.errors import EngineError
from engine.library import ItemInfo, LibraryInfo, LibraryStore
from engine.service import jobs as j
from engine.service.inputs import InputRefused, resolve_input
from engine.service.models import (
    AddPipelineRequest,
    CreateFpShotDBRequest,
    CreateFpShotDBResponse,
    FpDBDeleteJob,
    FpDBDeleteJobList,
    FpFileDeleteJob,
    FpFileDeleteJobList,
    FpShotDBList,
    FpShotFile,
    FpShotFileInput,
    FpShotFileList,
    FpShotImportJob,
    ImportFpShotJobRequest,
    JobIdResponse,
    JobIdsRequest,
    ListFpShotDBRequest,
    ListFpShotDBResponse,
    ListFpShotFilesRequest,
    ListFpShotFilesResponse,
    ListFpShotImportJobResponse,
    PipelineIdsRequest,
    PipelineList,
    PipelineResponse,
    QueryFpDBDeleteJobListResponse,
    QueryFpFileDeleteJobListResponse,
    QueryPipelineListResponse,
    SearchPipelineRequest,
    SearchPipelineResponse,
    SubmitFpDBDeleteJobRequest,
    SubmitFpFileDeleteJobRequest,
    UpdatePipelineRequest,
    check_primary_key,
)
from engine.service.pipelines import PipelineStore
from shared.contracts.mps import (
    FpShotConfig,
    FpShotDB,
    FpShotJob,
    InputFile,
    QueryFpShotJobListRequest,
    ReportFpShotJobResultRequest,
    ReportFpShotJobResultResponse,
    StringList,
    SubmitFpShotJobRequest,
    SubmitFpShotJobResponse,
)
from shared.contracts.wire import WireModel

M = TypeVar("M", bound=WireModel)
RECENT_JOBS = 20  # Query*JobList without JobIds: the most recent jobs (MPS doc: "最近20个")
DEFAULT_PAGE_SIZE = 10
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_FILE_SCAN_CHUNK = 200


class ActionError(Exception):
    """An error answer: HTTP status, Alibaba code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass
class ServiceContext:
    store: LibraryStore
    jobs: j.JobRunner
    pipelines: PipelineStore
    oss_root: Path


Action = Callable[[ServiceContext, dict[str, str], str], dict[str, Any]]
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return register


@functools.cache
def mps_action_names() -> frozenset[str]:
    """Every action of Mts 2014-06-18, from the CoreSDK's request modules (to tell "not served here" from
    "no such API")."""
    try:
        from aliyunsdkmts.request import v20140618
    except ImportError:
        return frozenset()
    modules = pkgutil.iter_modules(v20140618.__path__)
    return frozenset(info.name.removesuffix("Request") for info in modules if info.name.endswith("Request"))


def run_action(ctx: ServiceContext, name: str, params: dict[str, str], request_id: str) -> dict[str, Any]:
    fn = ACTIONS.get(name)
    if fn is None:
        if name in mps_action_names():
            raise ActionError(400, "UnsupportedOperation", f"The specified action {name} is not supported here.")
        raise ActionError(
            404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."
        )
    # Absent and empty are the same to MPS; the SDKs never send empty values for unset fields anyway.
    cleaned = {k: v for k, v in params.items() if v != ""}
    _check_shapes(cleaned)
    try:
        return fn(ctx, cleaned, request_id)
    except (RecursionError, OverflowError) as exc:  # a parser or a conversion pushed past its limits
        raise ActionError(400, "InvalidParameter", "A parameter is nested or sized beyond limits.") from exc
    except InputRefused as exc:
        raise ActionError(400, exc.code, exc.message) from exc
    except EngineError as exc:
        raise ActionError(404 if exc.code.endswith("ResourceNotFound") else 400, exc.code, exc.message) from exc


# ------------------------------------------------------------------------------------------ helpers

MAX_JSON_DEPTH = 16  # MPS's JSON parameters are at most 3 levels deep
# Integer parameters: digits only (no exponent, no float), and few enough that SQLite and int() take them.
_INT_PARAMS = frozenset({"ModelId", "PageNumber", "PageSize", "MaximumPageSize", "SpeedLevel", "QuotaAllocate"})
_INT = re.compile(r"-?[0-9]{1,9}")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(raw: str) -> int:
    """The deepest nesting of `{}`/`[]` in a JSON text (brackets inside strings do not count); linear time."""
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRING.sub("", raw)):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _check_shapes(params: dict[str, str]) -> None:
    """Refuse, before any parser sees them, integers that are not small integers and JSON nested too deep."""
    for name, value in params.items():
        if name in _INT_PARAMS and not _INT.fullmatch(value.strip()):
            raise ActionError(
                400, "InvalidParameter", f'The specified parameter "{name}" is not valid: it must be an integer.'
            )
        if value.lstrip()[:1] in ("{", "[") and json_depth(value) > MAX_JSON_DEPTH:
            raise ActionError(
                400,
                "InvalidParameter.JsonFormatInvalid",
                f'The parameter "{name}" is not a valid JSON string: nested deeper than {MAX_JSON_DEPTH} levels.',
            )


def _require(params: dict[str, str], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise ActionError(400, f"Missing{name}", f"{name} is mandatory for this action.")


def _json_object(params: dict[str, str], name: str) -> None:
    raw = params.get(name)
    if raw is None:
        return
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ActionError(
            400, "InvalidParameter.JsonFormatInvalid", f'The parameter "{name}" is not a valid JSON string.'
        ) from exc
    if not isinstance(value, dict):
        raise ActionError(
            400, "InvalidParameter.JsonObjectFormatInvalid", f'The parameter "{name}" must be a JSON object.'
        )


_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _validate(model: type[M], params: dict[str, str]) -> M:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "request"
        if err["type"] == "missing" and len(err["loc"]) == 1:
            raise ActionError(400, f"Missing{where}", f"{where} is mandatory for this action.") from exc
        code = "InvalidParameter.OutOfRange" if err["type"] in _RANGE_ERRORS else "InvalidParameter"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ActionError(400, code, f'The specified parameter "{where}" is not valid: {message}') from exc


def _utc_param(params: dict[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        datetime.strptime(value, _TIME_FORMAT)
    except ValueError as exc:
        raise ActionError(
            400, "InvalidParameter", f'The specified parameter "{name}" is not valid: use UTC YYYY-MM-DDThh:mm:ssZ.'
        ) from exc
    return value


def _library(ctx: ServiceContext, fp_db_id: str) -> LibraryInfo:
    try:
        return ctx.store.get_library(fp_db_id)
    except EngineError as exc:
        raise ActionError(400, "InvalidParameter.DBNotExist", "The DNA database does not exist.") from exc


def _not_found(name: str) -> ActionError:
    return ActionError(404, "InvalidParameter.ResourceNotFound", f'The resource operated "{name}" cannot be found.')


def _check_pipeline(ctx: ServiceContext, pipeline_id: str | None) -> None:
    if pipeline_id and ctx.pipelines.get(pipeline_id) is None:
        raise _not_found("PipelineId")


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _non_exist(missing: list[str]) -> StringList | None:
    # MPS: "无数据时该参数不返回" — absent when every id exists.
    return StringList(string=missing) if missing else None


def _by_ids_or_recent(ctx: ServiceContext, kind: str, params: dict[str, str]) -> tuple[list[j.EmulatedJob], list[str]]:
    """The Query*JobList lookup: the jobs named by `JobIds` (+ the unknown ids), else the most recent ones."""
    request = _validate(JobIdsRequest, params)
    if not request.job_ids:
        return ctx.jobs.store.recent(kind, RECENT_JOBS), []
    ids = _unique(request.job_ids)
    found = ctx.jobs.store.get_many(ids, kind)
    return [found[i] for i in ids if i in found], [i for i in ids if i not in found]


# ------------------------------------------------------------------------------------------ fingerprint jobs


def fp_shot_job(job: j.EmulatedJob) -> dict[str, Any]:
    """A job as `QueryFpShotJobList` reports it."""
    result = job.result or {}
    config = dict(job.params["FpShotConfig"])
    if not config.get("FpDBId") and result.get("FpDBId"):
        config["FpDBId"] = result["FpDBId"]  # the default library the job used
    wire = FpShotJob(
        id=job.id,
        pipeline_id=job.pipeline_id,
        state=job.state,  # type: ignore[arg-type]
        code=job.code,
        message=job.message,
        user_data=job.user_data,
        creation_time=job.created_at,
        finish_time=job.finished_at,
        duration=result.get("Duration"),
        file_id=result.get("FileId"),
        input=job.params["Input"],
        input_file=InputFile.model_validate(job.params["InputFile"]),
        fp_shot_config=FpShotConfig.model_validate(config),
    ).to_wire()
    if job.state == j.SUCCESS and "FpShotResult" in result:
        wire["FpShotResult"] = result["FpShotResult"]  # stored in wire form already
    return wire


@action("SubmitFpShotJob")
def submit_fp_shot_job(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "Input", "FpShotConfig")
    _json_object(params, "Input")
    _json_object(params, "FpShotConfig")
    request = _validate(SubmitFpShotJobRequest, params)
    try:
        check_primary_key(request.fp_shot_config.primary_key, "FpShotConfig.PrimaryKey")
    except ValueError as exc:
        raise ActionError(
            400, "InvalidParameter", f'The specified parameter "FpShotConfig.PrimaryKey" is not valid: {exc}'
        ) from exc
    resolve_input(ctx.oss_root, request.input)  # refuse escapes now; existence is the job's business
    if request.fp_shot_config.fp_db_id:
        _library(ctx, request.fp_shot_config.fp_db_id)
    _check_pipeline(ctx, request.pipeline_id)
    job = ctx.jobs.submit(
        j.FP_SHOT,
        {
            "Input": params["Input"],
            "InputFile": request.input.to_wire(),
            "FpShotConfig": request.fp_shot_config.to_wire(),
        },
        pipeline_id=request.pipeline_id,
        user_data=request.user_data,
    )
    return SubmitFpShotJobResponse(request_id=request_id, job_id=job.id).to_wire()


@action("QueryFpShotJobList")
def query_fp_shot_job_list(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    request = _validate(QueryFpShotJobListRequest, params)
    body: dict[str, Any] = {"RequestId": request_id}
    if request.job_ids:
        ids = _unique(request.job_ids)
        found = ctx.jobs.store.get_many(ids, j.FP_SHOT)
        body["FpShotJobList"] = {"FpShotJob": [fp_shot_job(found[i]) for i in ids if i in found]}
        missing = _non_exist([i for i in ids if i not in found])
        if missing is not None:
            body["NonExistIds"] = missing.to_wire()
        return body
    created_from = _utc_param(params, "StartOfJobCreatedTimeRange")
    created_to = _utc_param(params, "EndOfJobCreatedTimeRange")
    from_seq = 0
    if request.next_page_token:
        anchor = ctx.jobs.store.get(request.next_page_token, j.FP_SHOT)
        if anchor is None:
            raise ActionError(400, "InvalidParameter", 'The specified parameter "NextPageToken" is not valid.')
        from_seq = anchor.seq
    size = request.maximum_page_size or DEFAULT_PAGE_SIZE
    rows = ctx.jobs.store.page(
        j.FP_SHOT,
        state=None if request.state in (None, "All") else request.state,
        pipeline_id=request.pipeline_id,
        created_from=created_from,
        created_to=created_to,
        from_seq=from_seq,
        limit=size + 1,
    )
    if len(rows) > size:
        body["NextPageToken"] = rows[size].id  # the first job of the next page, like MPS's job-id tokens
    body["FpShotJobList"] = {"FpShotJob": [fp_shot_job(job) for job in rows[:size]]}
    return body


@action("ReportFpShotJobResult")
def report_fp_shot_job_result(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "JobId", "Result")
    request = _validate(ReportFpShotJobResultRequest, params)
    state = ctx.jobs.store.add_report(request.job_id, request.result, request.details)
    if state is None:
        raise _not_found("JobId")
    if state != j.FAIL:
        # MPS: "provides feedback only on the results of failed media fingerprint analysis jobs".
        raise ActionError(
            400,
            "InvalidParameter",
            f'The specified parameter "JobId" is not valid: job {request.job_id} is {state}; '
            "ReportFpShotJobResult takes failed jobs only.",
        )
    return ReportFpShotJobResultResponse(request_id=request_id, job_id=request.job_id).to_wire()


# ------------------------------------------------------------------------------------------ libraries


@action("CreateFpShotDB")
def create_fp_shot_db(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "Name", "ModelId")
    request = _validate(CreateFpShotDBRequest, params)
    if request.config is not None:
        try:
            json.loads(request.config)
        except ValueError as exc:
            raise ActionError(
                400, "InvalidParameter.JsonFormatInvalid", 'The parameter "Config" is not a valid JSON string.'
            ) from exc
    library = ctx.store.create_library(
        request.name, request.model_id, description=request.description, config=request.config
    )
    db = FpShotDB(
        fp_db_id=library.fp_db_id,
        name=library.name,
        model_id=library.model_id,
        state=library.status,  # usable at once: no "offline" phase locally
        description=library.description,
        config=library.config,
    )
    return CreateFpShotDBResponse(request_id=request_id, fp_shot_db=db).to_wire()


@action("ListFpShotDB")
def list_fp_shot_db(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    request = _validate(ListFpShotDBRequest, params)
    missing: list[str] = []
    if request.fp_db_ids:
        ids = _unique(request.fp_db_ids)
        found = {lib.fp_db_id: lib for lib in ctx.store.list_libraries(ids)}
        libraries = [found[i] for i in ids if i in found]
        missing = [i for i in ids if i not in found]
    else:
        libraries = ctx.store.list_libraries()
    dbs = [lib.to_fp_shot_db().model_copy(update={"config": None}) for lib in libraries]  # List has no Config
    return ListFpShotDBResponse(
        request_id=request_id, fp_shot_db_list=FpShotDBList(fp_shot_db=dbs), non_exist_ids=_non_exist(missing)
    ).to_wire()


def _file_input(raw: str | None) -> FpShotFileInput | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return FpShotFileInput.model_validate(value)
    return FpShotFileInput(object=raw)  # stored by the CLI from a plain path


@action("ListFpShotFiles")
def list_fp_shot_files(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "FpDBId")
    request = _validate(ListFpShotFilesRequest, params)
    start, end = _utc_param(params, "StartTime"), _utc_param(params, "EndTime")
    _library(ctx, request.fp_db_id)
    cursor = 0
    if request.next_page_token:
        if not re.fullmatch(r"[0-9]{1,18}", request.next_page_token):
            raise ActionError(400, "InvalidParameter", 'The specified parameter "NextPageToken" is not valid.')
        cursor = int(request.next_page_token)
    size = request.page_size
    # The store pages by item id only, so a time window is applied while scanning (see the final report).
    picked: list[ItemInfo] = []
    while len(picked) <= size:
        chunk = ctx.store.list_items(request.fp_db_id, limit=max(size + 1, _FILE_SCAN_CHUNK), after_item_id=cursor)
        if not chunk:
            break
        for item in chunk:
            cursor = item.item_id
            if (start is None or item.store_time >= start) and (end is None or item.store_time <= end):
                picked.append(item)
                if len(picked) > size:
                    break
    files = [
        FpShotFile(
            file_id=item.file_id,
            primary_key=item.primary_key,
            store_time=item.store_time,
            input_file=_file_input(item.input_file),
        )
        for item in picked[:size]
    ]
    token = str(picked[size - 1].item_id) if len(picked) > size else None
    return ListFpShotFilesResponse(
        request_id=request_id, next_page_token=token, fp_shot_file_list=FpShotFileList(fp_shot_file=files)
    ).to_wire()


# ------------------------------------------------------------------------------------------ delete jobs


@action("SubmitFpFileDeleteJob")
def submit_fp_file_delete_job(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "FpDBId")
    request = _validate(SubmitFpFileDeleteJobRequest, params)
    if not request.file_ids and not request.primary_keys:
        raise ActionError(400, "InvalidParameter", 'At least one of "FileIds" and "PrimaryKeys" must be specified.')
    _library(ctx, request.fp_db_id)
    _check_pipeline(ctx, request.pipeline_id)
    job = ctx.jobs.submit(
        j.FILE_DELETE,
        {"FpDBId": request.fp_db_id, "FileIds": request.file_ids or [], "PrimaryKeys": request.primary_keys or []},
        pipeline_id=request.pipeline_id,
        user_data=request.user_data,
    )
    return JobIdResponse(request_id=request_id, job_id=job.id).to_wire()


def _file_delete_job(job: j.EmulatedJob) -> FpFileDeleteJob:
    # Before it ran: the FileIds asked for; once done: the FileIds actually removed (PrimaryKeys resolved).
    ids = (job.result or {}).get("RemovedFileIds") if job.state == j.SUCCESS else job.params.get("FileIds")
    return FpFileDeleteJob(
        id=job.id,
        pipeline_id=job.pipeline_id,
        status=job.state,
        code=job.code,
        message=job.message,
        user_data=job.user_data,
        fp_db_id=job.params["FpDBId"],
        file_ids=",".join(ids) if ids else None,
        creation_time=job.created_at,
        finish_time=job.finished_at,
    )


@action("QueryFpFileDeleteJobList")
def query_fp_file_delete_job_list(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    jobs, missing = _by_ids_or_recent(ctx, j.FILE_DELETE, params)
    return QueryFpFileDeleteJobListResponse(
        request_id=request_id,
        fp_file_delete_job_list=FpFileDeleteJobList(fp_file_delete_job=[_file_delete_job(x) for x in jobs]),
        non_exist_ids=_non_exist(missing),
    ).to_wire()


@action("SubmitFpDBDeleteJob")
def submit_fp_db_delete_job(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "FpDBId")
    request = _validate(SubmitFpDBDeleteJobRequest, params)
    _library(ctx, request.fp_db_id)
    _check_pipeline(ctx, request.pipeline_id)
    job = ctx.jobs.submit(
        j.DB_DELETE,
        {"FpDBId": request.fp_db_id, "DelType": request.del_type},
        pipeline_id=request.pipeline_id,
        user_data=request.user_data,
    )
    return JobIdResponse(request_id=request_id, job_id=job.id).to_wire()


@action("QueryFpDBDeleteJobList")
def query_fp_db_delete_job_list(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    jobs, missing = _by_ids_or_recent(ctx, j.DB_DELETE, params)
    listed = [
        FpDBDeleteJob(
            id=job.id,
            pipeline_id=job.pipeline_id,
            status=job.state,
            code=job.code,
            message=job.message,
            user_data=job.user_data,
            fp_db_id=job.params["FpDBId"],
            del_type=job.params["DelType"],
            creation_time=job.created_at,
            finish_time=job.finished_at,
        )
        for job in jobs
    ]
    return QueryFpDBDeleteJobListResponse(
        request_id=request_id,
        fp_db_delete_job_list=FpDBDeleteJobList(fp_db_delete_job=listed),
        non_exist_ids=_non_exist(missing),
    ).to_wire()


# ------------------------------------------------------------------------------------------ text import


@action("ImportFpShotJob")
def import_fp_shot_job(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "FpDBId", "Input", "FpImportConfig")
    _json_object(params, "Input")
    _json_object(params, "FpImportConfig")
    request = _validate(ImportFpShotJobRequest, params)
    resolve_input(ctx.oss_root, request.input)
    library = _library(ctx, request.fp_db_id)
    if library.kind != "text":
        raise ActionError(
            400,
            "InvalidParameter",
            f'The specified parameter "FpDBId" is not valid: ImportFpShotJob needs a text library (ModelId 11), '
            f"{request.fp_db_id} holds {library.kind}.",
        )
    _check_pipeline(ctx, request.pipeline_id)
    job = ctx.jobs.submit(
        j.IMPORT,
        {
            "FpDBId": request.fp_db_id,
            "Input": params["Input"],
            "InputFile": request.input.to_wire(),
            "FpImportConfig": request.fp_import_config.to_wire(),
            "FpImportConfigRaw": params["FpImportConfig"],
        },
        pipeline_id=request.pipeline_id,
        user_data=request.user_data,
    )
    return JobIdResponse(request_id=request_id, job_id=job.id).to_wire()


@action("ListFpShotImportJob")
def list_fp_shot_import_job(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    jobs, missing = _by_ids_or_recent(ctx, j.IMPORT, params)
    listed = [
        FpShotImportJob(
            id=job.id,
            fp_db_id=job.params["FpDBId"],
            input=job.params["Input"],
            fp_import_config=job.params["FpImportConfigRaw"],
            status=job.state if job.is_final else "Processing",  # this API knows Processing|Success|Fail only
            code=job.code,
            message=job.message,
            process_message=(job.result or {}).get("ProcessMessage"),
            pipeline_id=job.pipeline_id,
            user_data=job.user_data,
            create_time=job.created_at,
            finish_time=job.finished_at,
        )
        for job in jobs
    ]
    return ListFpShotImportJobResponse(
        request_id=request_id, fp_shot_import_job_list=listed, non_exist_ids=missing or None
    ).to_wire()


# ------------------------------------------------------------------------------------------ pipelines


@action("AddPipeline")
def add_pipeline(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "Name")
    _json_object(params, "NotifyConfig")
    request = _validate(AddPipelineRequest, params)
    pipeline = ctx.pipelines.add(
        request.name,
        speed=request.speed,
        speed_level=request.speed_level,
        role=request.role,
        notify_config=request.notify_config,
    )
    shown = pipeline.model_copy(update={"creation_time": None})  # AddPipeline's response has no CreationTime
    return PipelineResponse(request_id=request_id, pipeline=shown).to_wire()


@action("UpdatePipeline")
def update_pipeline(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "PipelineId", "Name", "State")
    _json_object(params, "NotifyConfig")
    request = _validate(UpdatePipelineRequest, params)
    pipeline = ctx.pipelines.update(
        request.pipeline_id,
        name=request.name,
        state=request.state,
        notify_config=request.notify_config,
        role=request.role,
    )
    if pipeline is None:
        raise _not_found("PipelineId")
    # UpdatePipeline's response has neither SpeedLevel nor CreationTime (TeaSDK model).
    trimmed = pipeline.model_copy(update={"creation_time": None, "speed_level": None})
    return PipelineResponse(request_id=request_id, pipeline=trimmed).to_wire()


@action("QueryPipelineList")
def query_pipeline_list(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    _require(params, "PipelineIds")
    request = _validate(PipelineIdsRequest, params)
    ids = _unique(request.pipeline_ids)
    found = ctx.pipelines.get_many(ids)
    pipelines = [found[i].model_copy(update={"creation_time": None}) for i in ids if i in found]
    return QueryPipelineListResponse(
        request_id=request_id,
        pipeline_list=PipelineList(pipeline=pipelines),
        non_exist_pids=_non_exist([i for i in ids if i not in found]),
    ).to_wire()


@action("SearchPipeline")
def search_pipeline(ctx: ServiceContext, params: dict[str, str], request_id: str) -> dict[str, Any]:
    request = _validate(SearchPipelineRequest, params)
    total, pipelines = ctx.pipelines.search(
        None if request.state == "All" else request.state,
        offset=(request.page_number - 1) * request.page_size,
        limit=request.page_size,
    )
    return SearchPipelineResponse(
        request_id=request_id,
        total_count=total,
        page_number=request.page_number,
        page_size=request.page_size,
        pipeline_list=PipelineList(pipeline=pipelines),
    ).to_wire()
