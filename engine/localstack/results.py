"""The review view of stored screening results (`fpscreen results`): one row per screened job, with its match
outcome (`verdict`: copy, clean, failed, pending, stored), the policy's verdict and the rule that decided it
(block, review, allow; `shared.verdicts`), a reviewer's decision, the evidence per matched library item, the
aligned ranges (seconds; characters for a plain-text upload's text slices), times, and which job is the current
version of its object key (a re-upload supersedes the earlier job)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shared.contracts.modalities import text_type_for
from shared.ports import JobRecord, MatchRow, ResultStore, VerdictRecord
from shared.vocabulary import FAIL, SUCCESS

LIBRARY_SAVE_TYPES = {"forcesave", "save", "onlysave"}


class ResultsDamaged(Exception):
    """The results database cannot be read; the message says what to run."""


def read_screening_results(path: Path, *, limit: int = 500, include_library: bool = True) -> list[ScreeningResult]:
    """`screening_results` of the SQLite results database at `path`; a garbled file raises `ResultsDamaged`
    (naming it and the repair command) instead of a traceback."""
    from shared.store.sqlite import SqliteStore

    try:
        store = SqliteStore(path)
        try:
            return screening_results(store, limit=limit, include_library=include_library)
        finally:
            store.close()
    except sqlite3.DatabaseError as exc:
        raise ResultsDamaged(
            f"the results database {path} is damaged ({exc}); run `fpscreen verify --repair` to rebuild it"
        ) from exc


@dataclass(frozen=True, slots=True)
class AlignedSlice:
    kind: str  # video | audio | text
    input_start: float
    input_end: float
    library_start: float
    library_end: float
    similarity: float
    unit: str = "s"  # "s", or "chars" for text slices of a plain text
    # Text slices: MPS reports the input range and both texts, not the library range (library_* are then 0).
    input_text: str = ""
    library_text: str = ""

    def describe(self, snippet: int = 32) -> str:
        """One line for a table: `video 0.0–12.0s ↔ 5.0–17.0s`, `text chars 812–1706 ↔ “the copied text…”`."""
        if self.unit == "chars":
            upload = f"chars {self.input_start:.0f}–{self.input_end:.0f}"
        else:
            upload = f"{self.input_start:.1f}–{self.input_end:.1f}s"
        if self.kind == "text" and self.library_end <= self.library_start:
            text = " ".join(self.library_text.split())
            library = f"“{text[:snippet]}…”" if len(text) > snippet else f"“{text}”"
        else:
            library = f"{self.library_start:.1f}–{self.library_end:.1f}s"
        return f"{self.kind} {upload} ↔ {library}"


@dataclass(slots=True)
class MatchedItem:
    primary_key: str
    library_object: str  # the library upload that PrimaryKey came from, when known
    similarity: float
    slices: list[AlignedSlice] = field(default_factory=list)
    # shared.verdicts.evidence.ItemEvidence as a dict: matched, upload_share, library_share, modalities, ...
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ScreeningResult:
    upload: str
    job_id: str
    state: str
    verdict: str  # "copy" | "clean" | "failed" | "pending" | "stored" (a library item)
    save_type: str
    code: str = ""
    message: str = ""
    matches: list[MatchedItem] = field(default_factory=list)
    policy_verdict: str = ""  # block | review | allow after any reviewer decision ("" when not screened)
    rule: str = ""  # the policy rule that decided
    policy: str = ""  # "<name> <version>"
    review: str = ""  # "dismiss by ana at 2026-… UTC"
    submitted: str = ""  # when the job was submitted (UTC)
    finished: str = ""  # MPS FinishTime
    version: str = "current"  # or "superseded by <job id>" when the same key was screened again later

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _verdict(job: JobRecord) -> str:
    if job.state == FAIL:
        return "failed"
    if job.state != SUCCESS:
        return "pending"
    if job.match_count:
        return "copy"
    return "stored" if job.save_type in LIBRARY_SAVE_TYPES else "clean"


def _text_unit(job: JobRecord) -> str:
    """Characters when the job read its input as plain text (TextType Text, or a plain-text suffix), else seconds
    (ASR: JSON, .srt, .vtt carry timings)."""
    try:
        config = json.loads(job.result_json or "{}").get("FpShotConfig") or {}
    except (ValueError, AttributeError):
        config = {}
    text_type = config.get("TextType") if isinstance(config, dict) else None
    if text_type in ("Text", "ASR"):
        return "chars" if text_type == "Text" else "s"
    return "chars" if text_type_for(job.object_key) == "Text" else "s"


def _matched(rows: list[MatchRow], library_objects: dict[str, str], text_unit: str = "s") -> list[MatchedItem]:
    items: dict[str, MatchedItem] = {}
    for row in rows:
        item = items.get(row.matched_key)
        if item is None:
            item = MatchedItem(row.matched_key, library_objects.get(row.matched_key, ""), row.item_similarity)
            items[row.matched_key] = item
        item.similarity = max(item.similarity, row.item_similarity)
        item.slices.append(
            AlignedSlice(
                row.kind,
                row.input_start,
                row.input_start + row.input_duration,
                row.duplication_start,
                row.duplication_start + row.duplication_duration,
                row.similarity,
                unit=text_unit if row.kind == "text" else "s",
                input_text=row.input_text,
                library_text=row.duplication_text,
            )
        )
    return sorted(items.values(), key=lambda m: -m.similarity)


def _utc(epoch: float) -> str:
    if not epoch:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _with_verdict(result: ScreeningResult, record: VerdictRecord | None) -> None:
    if record is None:
        return
    result.policy_verdict = record.final_verdict or record.verdict
    result.rule = record.rule
    result.policy = f"{record.policy_name} {record.policy_version}".strip()
    if record.review_decision:
        result.review = f"{record.review_decision} by {record.reviewer} at {_utc(record.reviewed_at)}"
        if record.final_verdict != record.verdict:
            result.review += f" (policy said {record.verdict})"
    evidence = {item.get("primary_key"): item for item in record.evidence.get("items", [])}
    for match in result.matches:
        match.evidence = dict(evidence.get(match.primary_key) or {})


def screening_results(store: ResultStore, *, limit: int = 500, include_library: bool = True) -> list[ScreeningResult]:
    jobs = store.recent_jobs(limit)
    newer: dict[str, str] = {}  # object key → the newest job seen so far (jobs come newest first)
    library_objects = {
        job.primary_key: job.object_key for job in jobs if job.save_type in LIBRARY_SAVE_TYPES and job.primary_key
    }
    results: list[ScreeningResult] = []
    for job in jobs:
        key = f"{job.bucket}/{job.object_key}|{job.fp_db_id}"
        superseding = newer.get(key)
        newer.setdefault(key, job.job_id)
        if not include_library and job.save_type in LIBRARY_SAVE_TYPES:
            continue
        result = ScreeningResult(
            upload=job.object_key or job.job_id,
            job_id=job.job_id,
            state=job.state,
            verdict=_verdict(job),
            save_type=job.save_type,
            code=job.code,
            message=job.message,
            matches=(
                _matched(store.matches_for_job(job.job_id), library_objects, _text_unit(job)) if job.match_count else []
            ),
            submitted=_utc(job.submitted_at),
            finished=job.finish_time,
            version=f"superseded by {superseding}" if superseding else "current",
        )
        if job.save_type not in LIBRARY_SAVE_TYPES and job.state == SUCCESS:
            _with_verdict(result, store.get_verdict(job.job_id))
        results.append(result)
    return results


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the pipeline set aside instead of finishing, with the reason a reviewer needs."""

    kind: str  # "parked" | "dead letter" | "report"
    item: str  # the message id, invocation id or job id
    source: str  # where it came from: "oss:<bucket>", "mns:<topic>", a function name, the object key
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def problems(
    store: ResultStore, dead_letters: Sequence[tuple[str, str, str]] = (), *, limit: int = 500
) -> list[Problem]:
    """Every parked message, dead-lettered invocation (`StackState.dead_letters()`: id, function, error) and
    failed-job report that did not plainly succeed (refused, or closed with an unknown outcome), with reasons."""
    found = [Problem("parked", m.message_id, m.source, m.reason) for m in store.parked_messages(limit)]
    found += [Problem("dead letter", inv, function, error or "") for inv, function, error in dead_letters]
    for job in store.recent_jobs(limit):
        if job.state != FAIL:
            continue
        failed = store.get_failed(job.job_id)
        if failed is not None and failed.last_error:
            status = "not reported" if failed.reported_at is None else "closed"
            found.append(Problem("report", job.job_id, job.object_key, f"{status}: {failed.last_error}"))
    return found
