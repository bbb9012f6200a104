"""What each kind of job does when a worker runs it: fingerprint, delete files, delete/purge a library, import.

Every failure the engine can name (`engine.errors`: missing/empty/undecodable input, unknown library…) becomes a
`Fail` with that error's MPS-style `Code` and `Message`; the worker pool turns anything else into `InternalError`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.errors import EngineError, MediaError
from engine.library import LibraryStore
from engine.matcher import JobOutcome, Matcher
from engine.modalities import kind_of
from engine.service import jobs as j
from engine.service.inputs import input_file_url, open_input
from engine.service.models import FpImportEntry, NotifyConfig
from engine.service.notify import Notification, fp_shot_notify_body
from engine.service.pipelines import PipelineStore
from shared.contracts.mps import MODEL_TEXT, FpShotConfig, InputFile

log = logging.getLogger(__name__)

PIPELINE_PAUSED = "InvalidParameter.PipelinePaused"
MAX_IMPORT_ENTRIES = 10_000
IMPORT_LIST_INVALID = "InvalidInput.ImportListInvalid"


@dataclass
class JobExecutor:
    """The `JobHandler` of the service's `JobRunner`."""

    store: LibraryStore
    matcher: Matcher
    pipelines: PipelineStore
    oss_root: Path

    def run(self, job: j.EmulatedJob) -> j.JobFinish:
        try:
            self._check_pipeline(job)
            if job.kind == j.FP_SHOT:
                result = self._fp_shot(job)
            elif job.kind == j.FILE_DELETE:
                result = self._file_delete(job)
            elif job.kind == j.DB_DELETE:
                result = self._db_delete(job)
            elif job.kind == j.IMPORT:
                return self._import(job)
            else:
                raise EngineError(f"unknown job kind {job.kind!r}")
        except EngineError as exc:
            return self.failed(job, exc.code, exc.message)
        return self._finished(job, j.SUCCESS, result)

    def failed(self, job: j.EmulatedJob, code: str, message: str) -> j.JobFinish:
        return self._finished(job, j.FAIL, None, code, message)

    # ------------------------------------------------------------------------------------------ kinds

    def _fp_shot(self, job: j.EmulatedJob) -> dict[str, Any]:
        input_file = InputFile.model_validate(job.params["InputFile"])
        config = FpShotConfig.model_validate(job.params["FpShotConfig"])
        outcome = self._run_matcher(input_file, config)
        return {
            "FpShotResult": outcome.result.to_wire(),
            "Duration": round(outcome.duration),
            "FileId": outcome.file_id,
            "FpDBId": outcome.library.fp_db_id,
            "Duplicate": outcome.duplicate,
        }

    def _file_delete(self, job: j.EmulatedJob) -> dict[str, Any]:
        removed = self.store.delete_items(
            job.params["FpDBId"],
            primary_keys=job.params.get("PrimaryKeys") or [],
            file_ids=job.params.get("FileIds") or [],
        )
        return {"RemovedFileIds": [item.file_id for item in removed]}

    def _db_delete(self, job: j.EmulatedJob) -> dict[str, Any]:
        fp_db_id = job.params["FpDBId"]
        if job.params.get("DelType") == "Delete":
            self.store.delete_library(fp_db_id)
            return {"Removed": "library"}
        return {"RemovedItems": self.store.purge_library(fp_db_id)}

    def _import(self, job: j.EmulatedJob) -> j.JobFinish:
        """Each line of the list file: `{"PrimaryKey","Bucket","Location","Object"}` of a text file to store.

        Every line is attempted; the job fails if the list cannot be read or any line failed (those that
        worked stay stored), and `ProcessMessage` counts what happened.
        """
        fp_db_id = job.params["FpDBId"]
        save_type = job.params["FpImportConfig"]["SaveType"]
        library = self.store.get_library(fp_db_id)
        if library.model_id != MODEL_TEXT:
            raise EngineError(
                f"ImportFpShotJob imports text only; library {fp_db_id} is a {kind_of(library.model_id)} library",
                code="InvalidParameter",
            )
        listing = open_input(self.oss_root, InputFile.model_validate(job.params["InputFile"]))
        try:
            lines = listing.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise MediaError(f"the import list is not UTF-8 text: {exc}", code=IMPORT_LIST_INVALID) from exc
        entries = [(n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
        if not entries:
            raise MediaError("the import list has no entries", code=IMPORT_LIST_INVALID)
        if len(entries) > MAX_IMPORT_ENTRIES:
            raise MediaError(
                f"the import list has {len(entries)} entries; at most {MAX_IMPORT_ENTRIES} per job",
                code=IMPORT_LIST_INVALID,
            )
        stored = duplicates = 0
        errors: list[tuple[int, str, str]] = []
        for number, line in entries:
            try:
                entry = FpImportEntry.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                errors.append((number, IMPORT_LIST_INVALID, f"not a valid entry: {exc}"[:300]))
                continue
            config = FpShotConfig(primary_key=entry.primary_key, save_type=save_type, fp_db_id=fp_db_id)
            try:
                outcome = self._run_matcher(entry.input_file(), config)
            except EngineError as exc:
                errors.append((number, exc.code, exc.message))
                continue
            if outcome.stored is not None:
                stored += 1
            elif outcome.duplicate:
                duplicates += 1
        summary = f"{len(entries)} entries: {stored} stored, {duplicates} duplicates skipped, {len(errors)} failed"
        result = {"ProcessMessage": summary, "Stored": stored, "Duplicates": duplicates, "Failed": len(errors)}
        if errors:
            number, code, message = errors[0]
            return self._finished(job, j.FAIL, result, code, f"line {number}: {message} ({summary})")
        return self._finished(job, j.SUCCESS, result)

    # ------------------------------------------------------------------------------------------ helpers

    def _run_matcher(self, input_file: InputFile, config: FpShotConfig) -> JobOutcome:
        path = open_input(self.oss_root, input_file)
        try:
            return self.matcher.run_job(path, config, input_file=input_file.to_wire_json())
        except EngineError as exc:
            # Decoders name the local file; the caller knows it as an OSS object.
            exc.message = exc.message.replace(str(path), input_file_url(input_file))
            raise

    def _check_pipeline(self, job: j.EmulatedJob) -> None:
        if not job.pipeline_id:
            return
        pipeline = self.pipelines.get(job.pipeline_id)
        if pipeline is not None and pipeline.state == "Paused":
            # MPS: jobs using a paused pipeline fail (UpdatePipeline doc).
            raise EngineError(f"The pipeline {job.pipeline_id} is paused.", code=PIPELINE_PAUSED)

    def _finished(
        self,
        job: j.EmulatedJob,
        state: str,
        result: dict[str, Any] | None,
        code: str | None = None,
        message: str | None = None,
    ) -> j.JobFinish:
        return j.JobFinish(state, result, code, message, self._notification(job, state, result, code, message))

    def _notification(
        self, job: j.EmulatedJob, state: str, result: dict[str, Any] | None, code: str | None, message: str | None
    ) -> Notification | None:
        """The `AliyunFpShotJobNotify` owed for a fingerprint job of a pipeline with a NotifyConfig."""
        if job.kind != j.FP_SHOT or not job.pipeline_id:
            return None
        pipeline = self.pipelines.get(job.pipeline_id)
        target = (pipeline.notify_config if pipeline else NotifyConfig()).target()
        if target is None:
            return None
        body = fp_shot_notify_body(
            job.id,
            state,
            user_data=job.user_data,
            code=code,
            message=message,
        )
        return Notification(target[0], target[1], body)
