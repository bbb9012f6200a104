"""Review page fixtures: both store backends (the store suite's fixtures) filled with screened uploads."""

from __future__ import annotations

from shared.contracts.mps import FpShotJob
from shared.ports import ResultStore
from shared.services.job_rows import job_record, match_rows
from shared.verdicts.service import VerdictService
from tests.store.conftest import fake_ots, sqlite_path, store
from tests.verdicts.media import job, media_shot, text_shot

__all__ = ["fake_ots", "fill", "sqlite_path", "store"]

NASTY_KEY = "uploads/x[/x]y <b>bold</b>.mp4"
ESSAY = "It was the best of times, it was the worst of times, it was the age of wisdom"
ESSAY_TYPO = "It was the best of tmes, it was the worst of times, it was the age of wisdom"


def _put(store: ResultStore, fp_job: FpShotJob, submitted_at: float, *, save_type: str = "nosave") -> str:
    record = job_record(fp_job, now=submitted_at)
    record.save_type = save_type
    if save_type != "nosave":
        record.primary_key = fp_job.input_file.object.rsplit("/", 1)[-1] if fp_job.input_file else ""
    store.save_job(record)
    store.replace_matches(record.job_id, match_rows(fp_job))
    return record.job_id


def fill(store: ResultStore) -> dict[str, str]:
    """A library item, a full copy with an awkward name, a partial match, a text quote and a clean upload."""
    ids = {
        "library": _put(store, job(duration=120, job_id="lib-1", key="library/film.mp4"), 10.0, save_type="forcesave"),
        "copy": _put(
            store,
            job(
                duration=60,
                job_id="job-copy",
                key=NASTY_KEY,
                video=[media_shot("film.mp4", 0.99, (0, 45, 10, 0.99))],
                audio=[media_shot("film.mp4", 0.97, (1, 44, 11, 0.97))],
            ),
            1_767_225_600.0,  # 2026-01-01
        ),
        "partial": _put(
            store,
            job(duration=600, job_id="job-partial", video=[media_shot("film.mp4", 0.9, (100, 12, 5, 0.9))]),
            1_780_000_000.0,  # 2026-05-28
        ),
        "essay": _put(
            store,
            job(
                duration=5000,
                job_id="job-essay",
                key="uploads/essay.txt",
                text=[text_shot("novel", (120, 300, ESSAY_TYPO, ESSAY, 0.96))],
                text_type="Text",
            ),
            1_780_000_100.0,
        ),
        "clean": _put(store, job(duration=30, job_id="job-clean", key="uploads/own.mp4"), 1_780_000_200.0),
    }
    service = VerdictService(store, [])
    for name, job_id in ids.items():
        if name != "library":
            service.evaluate(job_id)
    return ids
