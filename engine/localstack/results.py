"""The review view of stored screening results (`fpscreen results`): one row per upload, with its verdict,
the library items it copies and the aligned time ranges."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from shared.ports import JobRecord, MatchRow, ResultStore

LIBRARY_SAVE_TYPES = {"forcesave", "save", "onlysave"}


@dataclass(frozen=True, slots=True)
class AlignedSlice:
    kind: str  # video | audio | text
    input_start: float
    input_end: float
    library_start: float
    library_end: float
    similarity: float


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
    if job.state == "Fail":
        return "failed"
    if job.state != "Success":
        return "pending"
    if job.match_count:
        return "copy"
    return "stored" if job.save_type in LIBRARY_SAVE_TYPES else "clean"


def _matched(rows: list[MatchRow], library_objects: dict[str, str]) -> list[MatchedItem]:
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
                matches=_matched(store.matches_for_job(job.job_id), library_objects) if job.match_count else [],
            )
        )
    return results
