"""The review view of stored screening results (`fpscreen results`): one row per upload, with its verdict,
the library items it copies and the aligned ranges (seconds; characters for a plain-text upload's text slices)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shared.contracts.modalities import text_type_for
from shared.ports import JobRecord, MatchRow, ResultStore
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


def screening_results(store: ResultStore, *, limit: int = 500, include_library: bool = True) -> list[ScreeningResult]:
    jobs = store.recent_jobs(limit)
    library_objects = {
        job.primary_key: job.object_key for job in jobs if job.save_type in LIBRARY_SAVE_TYPES and job.primary_key
    }
    results: list[ScreeningResult] = []
    for job in jobs:
        if not include_library and job.save_type in LIBRARY_SAVE_TYPES:
            continue
        results.append(
            ScreeningResult(
                upload=job.object_key or job.job_id,
                job_id=job.job_id,
                state=job.state,
                verdict=_verdict(job),
                save_type=job.save_type,
                code=job.code,
                message=job.message,
                matches=(
                    _matched(store.matches_for_job(job.job_id), library_objects, _text_unit(job))
                    if job.match_count
                    else []
                ),
            )
        )
    return results
