"""The invariants every fault scenario ends with: per upload exactly one MPS job and one stored result, at most
one report per failed job, nothing lost, and every parked message, dead letter or closed report explained."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from urllib.parse import unquote

from engine.localstack.results import Problem, problems
from shared.contracts.mps import QueryFpShotJobListRequest
from shared.mps import MpsClient
from shared.ports import ResultStore


def engine_jobs_per_object(mps: MpsClient) -> Counter[str]:
    """Object key → how many jobs the engine (MPS) holds for it, over every job it ever accepted."""
    per_object: Counter[str] = Counter()
    token: str | None = None
    while True:
        page = mps.query_fp_shot_job_list(
            QueryFpShotJobListRequest(
                state="All",
                start_of_job_created_time_range="2000-01-01T00:00:00Z",
                end_of_job_created_time_range="2100-01-01T00:00:00Z",
                maximum_page_size=100,
                next_page_token=token,
            )
        )
        per_object.update(unquote(job.input_file.object) for job in page.jobs if job.input_file)
        token = page.next_page_token
        if not token or not page.jobs:
            return per_object


def all_final(store: ResultStore, keys: list[str]) -> bool:
    states: dict[str, list[str]] = {}
    for job in store.recent_jobs(1000):
        states.setdefault(job.object_key, []).append(job.state)
    return all(key in states and all(s in ("Success", "Fail") for s in states[key]) for key in keys)


def failed_settled(store: ResultStore) -> bool:
    """Every failed job's report was sent or closed with a reason (no row still waiting)."""
    return all(
        (row := store.get_failed(job.job_id)) is not None and row.reported_at is not None
        for job in store.recent_jobs(1000)
        if job.state == "Fail"
    )


def assert_exactly_once(
    store: ResultStore,
    mps: MpsClient,
    keys: list[str],
    reports_of: Callable[[str], int],
    dead_letters: list[tuple[str, str, str]],
) -> list[Problem]:
    # One job per upload at MPS, one final result per upload in the store: nothing lost, nothing doubled.
    per_object = engine_jobs_per_object(mps)
    assert {k: per_object[k] for k in keys} == dict.fromkeys(keys, 1), per_object
    rows: Counter[str] = Counter(job.object_key for job in store.recent_jobs(1000))
    assert {k: rows[k] for k in keys} == dict.fromkeys(keys, 1), rows
    assert all_final(store, keys)
    # At most one report per failed job, and every failed job settled (reported, or closed with a reason).
    failed = [job.job_id for job in store.recent_jobs(1000) if job.object_key in keys and job.state == "Fail"]
    assert failed, "each scenario has a failing upload, so reports are exercised"
    assert all(reports_of(job_id) <= 1 for job_id in failed), {j: reports_of(j) for j in failed}
    assert failed_settled(store)
    # Nothing unexplained: every set-aside item carries a reason the `fpscreen problems` command shows.
    found = problems(store, dead_letters)
    assert all(p.reason.strip() for p in found), found
    return found
