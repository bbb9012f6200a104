"""Submit on upload: each new object version gets exactly one SubmitFpShotJob per target library."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from pydantic import ValidationError

from shared.config import Route, Settings
from shared.contracts.events import OssEvent, OssEventRecord
from shared.contracts.modalities import suffix_of
from shared.contracts.mps import FpShotConfig, InputFile, QueryFpShotJobListRequest, SubmitFpShotJobRequest
from shared.idempotency import AlreadyInProgress, Idempotency, object_version_key, primary_key_for
from shared.log import get_logger
from shared.ports import ClaimStore, JobRecord, JobStore, MpsError, MpsPort, ObjectClaim, ParkingLot
from shared.services.actions import ActionError
from shared.services.parking import park
from shared.services.subtitles import SUBTITLE_SUFFIXES, SubtitleError, subtitles_to_asr
from shared.vocabulary import CLAIM_IN_PROGRESS, MAX_QUERY_PAGE_SIZE, QUEUING, SubmitStatus

log = get_logger("fpscreen.submit")

USER_DATA_PREFIX = "fpscreen:"
MAX_RECONCILE_PAGES = 20


def _utc(epoch: float) -> str:
    """MPS time-range format: `YYYY-MM-DDThh:mm:ssZ`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(epoch, 0.0)))


@dataclass(frozen=True, slots=True)
class UploadedObject:
    bucket: str
    key: str
    version_tag: str  # version id or ETag: tells two uploads of the same key apart
    location: str  # MPS Input.Location, e.g. "oss-cn-shanghai"

    @classmethod
    def from_record(cls, record: OssEventRecord) -> UploadedObject:
        return cls(record.bucket, record.key, record.version_tag, record.location)


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    object_key: str
    fp_db_id: str
    status: SubmitStatus
    job_id: str = ""
    reason: str = ""
    retry_at: float | None = None  # in_progress: when the holder's lease runs out


def user_data_for(claim_key: str) -> str:
    """UserData that traces a job back to its claim row (and so to bucket and key): 49 bytes, starts with a
    letter, as MPS requires."""
    return USER_DATA_PREFIX + claim_key


def claim_key_from_user_data(user_data: str | None) -> str | None:
    if user_data and user_data.startswith(USER_DATA_PREFIX):
        return user_data[len(USER_DATA_PREFIX) :]
    return None


class SubmitStores(ClaimStore, JobStore, ParkingLot, Protocol):
    """What submitting touches: claims, the queued job row, and the parking lot for rejected requests."""


class ObjectFiles(Protocol):
    """The bucket's objects, read and written whole (`shared.services.actions.OssObjectActions`). Failures
    raise `ActionError` (retryable or not)."""

    def read(self, bucket: str, key: str) -> bytes: ...

    def write(self, bucket: str, key: str, data: bytes, content_type: str) -> None: ...


# Converted inputs live under this prefix, which no trigger watches (template.yml: library/ and uploads/ only).
DERIVED_PREFIX = "derived/"


def derived_asr_key(obj: UploadedObject) -> str:
    """Where the ASR JSON of a subtitle upload goes: per object version, so a newer upload of the same key
    never changes what an earlier job reads."""
    version = hashlib.sha256(obj.version_tag.encode("utf-8")).hexdigest()[:12]
    return f"{DERIVED_PREFIX}asr/{obj.key}.{version}.json"


class SubmitService:
    def __init__(
        self,
        mps: MpsPort,
        store: SubmitStores,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        objects: ObjectFiles | None = None,
    ) -> None:
        self._mps = mps
        self._store = store
        # With the bucket's objects, subtitles are converted to ASR JSON before they are submitted; without
        # (the local stack, whose engine reads .srt/.vtt itself) they are submitted as they are.
        self._objects = objects
        self._settings = settings
        self._clock = clock
        self._idempotency = Idempotency(store, lease_seconds=settings.claim_lease_seconds, clock=clock)

    def handle_event(self, event: OssEvent, *, owner: str) -> list[SubmitOutcome]:
        """Process every record; if some were held by a concurrent delivery, raise after the others are done
        so FC retries the event (the finished records are then no-ops)."""
        outcomes: list[SubmitOutcome] = []
        busy: list[SubmitOutcome] = []
        for record in event.events:
            if not record.is_object_created:
                outcomes.append(SubmitOutcome(record.key, "", "skipped", reason=f"event {record.event_name}"))
                continue
            for outcome in self.submit_object(UploadedObject.from_record(record), owner=owner):
                if outcome.status == "in_progress":
                    busy.append(outcome)
                outcomes.append(outcome)
        if busy:
            retry_at = max((o.retry_at for o in busy if o.retry_at is not None), default=None)
            raise AlreadyInProgress("; ".join(o.reason for o in busy), retry_at=retry_at)
        return outcomes

    def submit_object(self, obj: UploadedObject, *, owner: str) -> list[SubmitOutcome]:
        routes = self._settings.routes_for(obj.key)
        if not routes:
            log.info("no route for object", extra={"bucket": obj.bucket, "key": obj.key})
            return [SubmitOutcome(obj.key, "", "skipped", reason="no route matches this key")]
        return [self._submit_route(obj, route, owner) for route in routes]

    def _submit_route(self, obj: UploadedObject, route: Route, owner: str) -> SubmitOutcome:
        db = route.fp_db_id or ""
        key = object_version_key(obj.bucket, obj.key, obj.version_tag, route.fp_db_id)
        claim = ObjectClaim(
            key=key,
            owner=owner,
            status=CLAIM_IN_PROGRESS,
            expires_at=0.0,
            bucket=obj.bucket,
            object_key=obj.key,
            primary_key=primary_key_for(obj.bucket, obj.key),
            fp_db_id=db,
            save_type=route.save_type,
        )
        text_type = route.text_type_for(obj.key)
        input_key = obj.key
        if text_type == "ASR" and suffix_of(obj.key) in SUBTITLE_SUFFIXES and self._objects is not None:
            try:
                input_key = self._convert_subtitles(obj)
            except SubtitleError as exc:
                return self._park_unconvertible(obj, key, db, str(exc))
        try:
            request = SubmitFpShotJobRequest(
                # MPS documents InputFile.Object as URL-encoded UTF-8: a key holding "%41" must not reach it as "A".
                input=InputFile(bucket=obj.bucket, location=obj.location, object=quote(input_key, safe="/")),
                fp_shot_config=FpShotConfig(
                    primary_key=claim.primary_key,
                    save_type=route.save_type,
                    fp_db_id=route.fp_db_id,
                    text_type=text_type,
                    similarity_threshold=route.similarity_threshold if route.save_type == "save" else None,
                ),
                pipeline_id=self._settings.mps_pipeline_id,
                user_data=user_data_for(key),
            )
        except ValidationError as exc:
            # Outside what MPS accepts (e.g. a Location over 64 bytes): no retry can help, so park it with the
            # reason instead of failing the invocation into the dead-letter queue.
            return self._park_unsubmittable(obj, key, db, exc)
        try:
            job_id, ran = self._idempotency.run(
                claim, lambda prior, reaching_out: self._adopt_or_submit(request, claim, prior, reaching_out)
            )
        except AlreadyInProgress as busy:
            return SubmitOutcome(obj.key, db, "in_progress", reason=str(busy), retry_at=busy.retry_at)
        except MpsError as exc:
            if exc.retryable or exc.maybe_accepted:
                raise  # throttled, transient or maybe submitted: FC's async retry comes back (and reconciles)
            # A request MPS will never accept: keep it for review instead of retrying forever.
            park(
                self._store,
                source=f"oss:{obj.bucket}",
                body=request.to_wire_json(),
                reason=f"SubmitFpShotJob rejected: {exc.code}: {exc.message}",
                now=self._clock(),
                message_id=key,
                attrs={"object_key": obj.key, "fp_db_id": db},
            )
            return SubmitOutcome(obj.key, db, "rejected", reason=f"{exc.code}: {exc.message}")
        status: SubmitStatus = "submitted" if ran else "duplicate"
        log.info(f"job {status}", extra={"key": obj.key, "job_id": job_id, "fp_db_id": db})
        return SubmitOutcome(obj.key, db, status, job_id=job_id)

    def _convert_subtitles(self, obj: UploadedObject) -> str:
        """Write the upload's ASR JSON under derived/ and return its key. Idempotent (the same object version
        gives the same bytes at the same key), so a retried delivery may simply write it again."""
        assert self._objects is not None
        try:
            data = self._objects.read(obj.bucket, obj.key)
        except ActionError as exc:
            if exc.retryable:
                raise  # FC's async retry comes back
            raise SubtitleError(f"the subtitles could not be read: {exc}") from exc
        converted = subtitles_to_asr(data, obj.key)
        target = derived_asr_key(obj)
        try:
            self._objects.write(obj.bucket, target, converted, "application/json")
        except ActionError as exc:
            if exc.retryable:
                raise
            raise SubtitleError(f"the converted ASR JSON could not be written to {target}: {exc}") from exc
        log.info("subtitles converted to ASR JSON", extra={"key": obj.key, "derived": target})
        return target

    def _park_unconvertible(self, obj: UploadedObject, key: str, db: str, why: str) -> SubmitOutcome:
        body = {"Bucket": obj.bucket, "Object": obj.key, "VersionTag": obj.version_tag}
        return self._park(obj, key, db, body, f"subtitles not converted to ASR JSON: {why}")

    def _park_unsubmittable(self, obj: UploadedObject, key: str, db: str, exc: ValidationError) -> SubmitOutcome:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        body = {"Bucket": obj.bucket, "Location": obj.location, "Object": obj.key, "VersionTag": obj.version_tag}
        return self._park(obj, key, db, body, f"cannot be submitted to MPS: {problems}")

    def _park(self, obj: UploadedObject, key: str, db: str, body: dict[str, str], reason: str) -> SubmitOutcome:
        """Set an object aside with its reason (shown by `fpscreen problems`), keyed by its claim: never retried."""
        park(
            self._store,
            source=f"oss:{obj.bucket}",
            body=json.dumps(body, ensure_ascii=False),
            reason=reason,
            now=self._clock(),
            message_id=key,
            attrs={"object_key": obj.key, "fp_db_id": db},
        )
        return SubmitOutcome(obj.key, db, "rejected", reason=reason)

    def _adopt_or_submit(
        self,
        request: SubmitFpShotJobRequest,
        claim: ObjectClaim,
        prior: ObjectClaim | None,
        reaching_out: Callable[[], None],
    ) -> str:
        """Submit, unless an earlier invocation whose claim we took over (it crashed, timed out or failed after
        its submit may have reached MPS) had already submitted: MPS has no idempotency token, so look for a job
        carrying our UserData created since that claim was made."""
        if prior is not None:
            adopted = self._reconcile(request, since=prior.created_at or prior.updated_at)
            if adopted:
                log.warning("adopting an earlier invocation's job", extra={"job_id": adopted, "key": claim.key})
                self._save_queued(adopted, request, claim)
                return adopted
        since = self._clock()
        reaching_out()  # from here on a failure keeps the claim as MAYBE_SUBMITTED
        try:
            response = self._mps.submit_fp_shot_job(request)
        except MpsError as exc:
            if not exc.maybe_accepted:
                raise
            # Timed out, reset or 5xx after sending: the job may exist. Look once now (MPS usually lists it at
            # once); if it is not there yet, fail retryably and the next delivery reconciles again first.
            log.warning("submit outcome unknown: reconciling", extra={"key": claim.key, "error": str(exc)})
            adopted = self._reconcile(request, since=prior.created_at if prior else since)
            if adopted is None:
                raise _outcome_unknown(exc, "the submit may have reached MPS; its job is not listed yet") from exc
            log.warning("adopting the job of a submit that timed out", extra={"job_id": adopted, "key": claim.key})
            self._save_queued(adopted, request, claim)
            return adopted
        self._save_queued(response.job_id, request, claim)
        return response.job_id

    def _reconcile(self, request: SubmitFpShotJobRequest, *, since: float) -> str | None:
        """`_find_submitted`, where any failure to look is retryable: the answer decides whether a job exists,
        so it must never end in parking the request (or in a blind submit)."""
        try:
            return self._find_submitted(request, since=since)
        except MpsError as exc:
            raise _outcome_unknown(exc, "reconciling by UserData failed") from exc

    def _find_submitted(self, request: SubmitFpShotJobRequest, *, since: float) -> str | None:
        slack = 300.0  # clock skew between us and MPS
        token: str | None = None
        for _ in range(MAX_RECONCILE_PAGES):
            page = self._mps.query_fp_shot_job_list(
                QueryFpShotJobListRequest(
                    pipeline_id=request.pipeline_id,
                    state="All",
                    start_of_job_created_time_range=_utc(since - slack),
                    end_of_job_created_time_range=_utc(self._clock() + slack),
                    maximum_page_size=MAX_QUERY_PAGE_SIZE,
                    next_page_token=token,
                )
            )
            for job in page.jobs:
                if job.user_data == request.user_data:
                    return job.id
            token = page.next_page_token
            if not token or not page.jobs:
                return None
        return None

    def _save_queued(self, job_id: str, request: SubmitFpShotJobRequest, claim: ObjectClaim) -> None:
        now = self._clock()
        # The job row exists before the claim completes: a lost notification can still be swept.
        self._store.save_job(
            JobRecord(
                job_id=job_id,
                state=QUEUING,
                user_data=request.user_data or "",
                primary_key=claim.primary_key,
                fp_db_id=claim.fp_db_id,
                save_type=claim.save_type,
                bucket=claim.bucket,
                object_key=claim.object_key,
                pipeline_id=request.pipeline_id or "",
                submitted_at=now,
                updated_at=now,
            )
        )


def _outcome_unknown(exc: MpsError, why: str) -> MpsError:
    """`exc` re-raised as retryable and possibly accepted: FC's retry must reconcile by UserData before anything."""
    return MpsError(
        exc.code,
        f"{why}: {exc.message}",
        http_status=exc.http_status,
        request_id=exc.request_id,
        retryable=True,
        maybe_accepted=True,
    )
