"""The `ResultStore` contract, run on both backends (the `store` fixture is parametrized)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import replace

import pytest

from shared.ports import ClaimOutcome, ResultStore

from .records import make_claim, make_failed, make_job, make_match, make_parked

# ------------------------------------------------------------------------------------------ claims


def test_new_key_is_acquired_and_stored_as_given(store: ResultStore) -> None:
    claim = make_claim("k1", "req-a", now=1000)
    result = store.claim_object(claim, now=1000)
    assert result.outcome is ClaimOutcome.ACQUIRED
    assert result.claim == claim
    assert store.get_object("k1") == claim
    assert store.get_object("nope") is None


def test_a_live_lease_is_reported_in_progress_to_everyone_else(store: ResultStore) -> None:
    store.claim_object(make_claim("k1", "req-a", now=1000), now=1000)
    for owner, now in (("req-b", 1001.0), ("req-b", 1029.999), ("req-a", 1005.0)):
        # Not re-entrant, even for the same owner: the idempotency layer raises so FC retries later.
        result = store.claim_object(make_claim("k1", owner, now=now), now=now)
        assert result.outcome is ClaimOutcome.IN_PROGRESS
        assert result.claim.owner == "req-a"
        assert result.claim.expires_at == 1030.0
    assert store.get_object("k1").owner == "req-a"  # type: ignore[union-attr]


def test_an_expired_lease_is_taken_over_by_the_new_owner(store: ResultStore) -> None:
    store.claim_object(make_claim("k1", "req-a", now=1000), now=1000)
    takeover = make_claim("k1", "req-b", now=1030)  # expires_at 1030 <= now: expired
    result = store.claim_object(takeover, now=1030)
    assert result.outcome is ClaimOutcome.ACQUIRED
    assert store.get_object("k1") == takeover
    # The old owner lost its lease: it can neither complete nor release it.
    assert store.complete_object("k1", "req-a", "job-a", now=1031) is False
    assert store.release_object("k1", "req-a") is False
    assert store.complete_object("k1", "req-b", "job-b", now=1032) is True
    assert store.get_object("k1").job_id == "job-b"  # type: ignore[union-attr]


def test_complete_only_by_the_owner_then_completed_for_everyone(store: ResultStore) -> None:
    store.claim_object(make_claim("k1", "req-a", now=1000), now=1000)
    assert store.complete_object("k1", "req-b", "job-x", now=1001) is False
    assert store.complete_object("k1", "req-a", "job-1", now=1002) is True
    stored = store.get_object("k1")
    assert stored is not None
    assert (stored.status, stored.job_id, stored.updated_at) == ("COMPLETED", "job-1", 1002.0)

    # Completed is final: long after the lease would have expired, a new delivery gets the job id.
    later = store.claim_object(make_claim("k1", "req-c", now=9999), now=9999)
    assert later.outcome is ClaimOutcome.COMPLETED
    assert later.claim.job_id == "job-1"
    assert later.claim.owner == "req-a"

    assert store.complete_object("k1", "req-a", "job-1", now=1003) is True  # idempotent repeat
    assert store.complete_object("k1", "req-a", "job-2", now=1004) is False  # a different job: refused
    assert store.release_object("k1", "req-a") is False  # a completed claim is never released
    assert store.get_object("k1").job_id == "job-1"  # type: ignore[union-attr]


def test_release_lets_a_retry_claim_at_once(store: ResultStore) -> None:
    store.claim_object(make_claim("k1", "req-a", now=1000), now=1000)
    assert store.release_object("k1", "req-b") is False
    assert store.release_object("k1", "req-a") is True
    assert store.get_object("k1") is None
    assert store.release_object("k1", "req-a") is False
    retry = store.claim_object(make_claim("k1", "req-b", now=1001), now=1001)
    assert retry.outcome is ClaimOutcome.ACQUIRED
    assert store.get_object("k1").owner == "req-b"  # type: ignore[union-attr]


def test_suspend_keeps_a_maybe_submitted_claim_that_the_next_delivery_takes_over(store: ResultStore) -> None:
    store.claim_object(make_claim("k1", "req-a", now=1000), now=1000)
    assert store.suspend_object("k1", "req-b", now=1001) is False  # only the lease owner
    assert store.suspend_object("k1", "req-a", now=1001) is True
    kept = store.get_object("k1")
    assert kept is not None and (kept.status, kept.owner, kept.expires_at) == ("MAYBE_SUBMITTED", "req-a", 1001.0)
    assert store.release_object("k1", "req-a") is False  # no longer a plain lease: it is never deleted
    assert store.suspend_object("k1", "req-a", now=1002) is False
    # The lease has run out at once: the next delivery takes it over without waiting for the lease period.
    retry = store.claim_object(make_claim("k1", "req-b", now=1001.5), now=1001.5)
    assert retry.outcome is ClaimOutcome.ACQUIRED
    assert store.get_object("k1").status == "IN_PROGRESS"  # type: ignore[union-attr]
    assert store.complete_object("k1", "req-b", "job-1", now=1003) is True


def test_threads_taking_over_one_maybe_submitted_claim_yield_one_owner(store: ResultStore) -> None:
    store.claim_object(make_claim("k1", "req-a", now=1000), now=1000)
    store.suspend_object("k1", "req-a", now=1001)
    results = _race(16, lambda i: store.claim_object(make_claim("k1", f"req-{i}", now=1002), now=1002).outcome)
    assert Counter(results)[ClaimOutcome.ACQUIRED] == 1


def test_unknown_keys_cannot_be_completed_or_released(store: ResultStore) -> None:
    assert store.complete_object("ghost", "req-a", "job-1", now=1) is False
    assert store.release_object("ghost", "req-a") is False
    assert store.get_object("ghost") is None


def test_claim_stores_in_progress_and_no_job_whatever_it_is_given(store: ResultStore) -> None:
    sloppy = replace(make_claim("k1", "req-a", now=1000), status="COMPLETED", job_id="stale")
    result = store.claim_object(sloppy, now=1000)
    assert result.outcome is ClaimOutcome.ACQUIRED
    assert (result.claim.status, result.claim.job_id) == ("IN_PROGRESS", None)
    assert store.get_object("k1") == result.claim


def test_whole_number_times_round_trip_as_floats(store: ResultStore) -> None:
    claim = replace(make_claim("k1", "req-a", now=1000), expires_at=1030, created_at=1000, updated_at=1000)
    store.claim_object(claim, now=1000)
    stored = store.get_object("k1")
    assert stored is not None and isinstance(stored.expires_at, float) and stored.expires_at == 1030.0
    # ...so the takeover's compare-and-swap on expires_at still matches the stored value.
    assert store.claim_object(make_claim("k1", "req-b", now=1031), now=1031).outcome is ClaimOutcome.ACQUIRED


# -------------------------------------------------------------------------------------------- jobs


def test_job_round_trips(store: ResultStore) -> None:
    job = make_job("j1", "Queuing", match_count=3, max_similarity=0.75, code="", message="")
    assert store.save_job(job) is True
    assert store.get_job("j1") == job
    assert store.get_job("nope") is None


def test_job_state_only_moves_forward(store: ResultStore) -> None:
    assert store.save_job(make_job("j1", "Queuing", updated_at=1)) is True
    assert store.save_job(make_job("j1", "Analysing", updated_at=2)) is True
    assert store.save_job(make_job("j1", "Queuing", updated_at=3)) is False  # backwards: ignored
    assert store.get_job("j1").state == "Analysing"  # type: ignore[union-attr]
    success = make_job("j1", "Success", updated_at=4, match_count=2, max_similarity=0.9, finish_time="t4")
    assert store.save_job(success) is True
    late = make_job("j1", "Analysing", updated_at=5, message="late notification")
    assert store.save_job(late) is False
    assert store.get_job("j1") == success  # nothing of the late write leaked in


def test_a_final_job_is_never_rewritten(store: ResultStore) -> None:
    success = make_job("j1", "Success", updated_at=4, match_count=1)
    assert store.save_job(success) is True
    assert store.save_job(success) is False  # the same result redelivered: a no-op
    assert store.save_job(replace(success, updated_at=99, match_count=7)) is False
    assert store.save_job(make_job("j1", "Fail", updated_at=100, code="X")) is False  # final vs final
    assert store.get_job("j1") == success

    fail = make_job("j2", "Fail", code="InvalidInput")
    assert store.save_job(fail) is True
    assert store.save_job(make_job("j2", "Success")) is False
    assert store.get_job("j2") == fail


def test_the_same_open_state_refreshes_the_row(store: ResultStore) -> None:
    # The sweeper re-queries a stuck job and writes it back unchanged but for updated_at.
    store.save_job(make_job("j1", "Analysing", updated_at=10))
    assert store.save_job(make_job("j1", "Analysing", updated_at=20)) is True
    assert store.get_job("j1").updated_at == 20.0  # type: ignore[union-attr]


def test_a_job_may_arrive_already_final(store: ResultStore) -> None:
    assert store.save_job(make_job("j1", "Success", updated_at=5)) is True
    assert store.save_job(make_job("j1", "Queuing", updated_at=1)) is False
    assert store.get_job("j1").state == "Success"  # type: ignore[union-attr]


def test_unknown_states_are_refused(store: ResultStore) -> None:
    with pytest.raises(ValueError, match="unknown job state"):
        store.save_job(make_job("j1", "Paused"))
    assert store.get_job("j1") is None


def test_jobs_in_states_lists_stuck_jobs_oldest_first(store: ResultStore) -> None:
    rows = [
        ("q-old", "Queuing", 10.0),
        ("a-old", "Analysing", 5.0),
        ("a-mid", "Analysing", 20.0),
        ("q-new", "Queuing", 60.0),  # updated after the cut-off
        ("a-cut", "Analysing", 50.0),  # exactly at the cut-off: not before it
        ("s-old", "Success", 1.0),  # final: never stuck
        ("f-old", "Fail", 2.0),
    ]
    for job_id, state, updated in rows:
        store.save_job(make_job(job_id, state, updated_at=updated))
    stuck = store.jobs_in_states(["Queuing", "Analysing"], updated_before=50.0, limit=10)
    assert [j.job_id for j in stuck] == ["a-old", "q-old", "a-mid"]
    assert [j.job_id for j in store.jobs_in_states(["Queuing", "Analysing"], updated_before=50.0, limit=2)] == [
        "a-old",
        "q-old",
    ]
    assert [j.job_id for j in store.jobs_in_states(["Queuing"], updated_before=100.0, limit=10)] == ["q-old", "q-new"]
    assert store.jobs_in_states([], updated_before=100.0, limit=10) == []
    assert store.jobs_in_states(["Queuing"], updated_before=100.0, limit=0) == []
    assert stuck[0] == make_job("a-old", "Analysing", updated_at=5.0)


def test_recent_jobs_newest_first(store: ResultStore) -> None:
    for n in range(20):  # crosses several fake get_range pages
        store.save_job(make_job(f"job-{n:02d}", "Queuing", submitted_at=float((n * 7) % 20)))
    recent = store.recent_jobs(limit=5)
    assert [j.submitted_at for j in recent] == [19.0, 18.0, 17.0, 16.0, 15.0]
    everything = store.recent_jobs()
    assert len(everything) == 20
    assert [j.submitted_at for j in everything] == sorted((j.submitted_at for j in everything), reverse=True)
    assert store.recent_jobs(limit=0) == []


def test_jobs_for_item_finds_one_primary_keys_jobs_newest_first(store: ResultStore) -> None:
    for n in range(12):
        store.save_job(make_job(f"up-{n:02d}", "Success", submitted_at=float(n)))
    store.save_job(make_job("lib-old", "Success", primary_key="item-1", save_type="forcesave", submitted_at=1.0))
    store.save_job(make_job("lib-new", "Queuing", primary_key="item-1", save_type="forcesave", submitted_at=2.0))
    assert [j.job_id for j in store.jobs_for_item("item-1")] == ["lib-new", "lib-old"]
    assert store.jobs_for_item("item-1")[1] == make_job(
        "lib-old", "Success", primary_key="item-1", save_type="forcesave", submitted_at=1.0
    )
    assert [j.job_id for j in store.jobs_for_item("pk-up-03")] == ["up-03"]
    assert store.jobs_for_item("nothing") == []
    # A job without a PrimaryKey round trips and belongs to no item.
    store.save_job(make_job("anon", "Success", primary_key=""))
    assert store.get_job("anon") == make_job("anon", "Success", primary_key="")
    assert store.jobs_for_item("") == []
    # A job that moves on is found under its new state only.
    store.save_job(make_job("lib-new", "Success", primary_key="item-1", save_type="forcesave", submitted_at=2.0))
    assert [j.state for j in store.jobs_for_item("item-1")] == ["Success", "Success"]
    assert [j.job_id for j in store.jobs_in_states(["Queuing"], updated_before=1e9, limit=10)] == []


def test_a_result_over_two_megabytes_round_trips(store: ResultStore) -> None:
    # Tablestore holds at most 2 MB a cell and 4 MB a request: such a result is stored in parts there.
    big = json.dumps({"Id": "big", "Text": "字" * (1_500_000)}, ensure_ascii=False)  # 4.5 MB of UTF-8
    assert len(big.encode("utf-8")) > 4 * 1024 * 1024
    job = make_job("big", "Analysing", result_json=big)
    assert store.save_job(job)
    assert store.get_job("big") == job
    final = make_job("big", "Success", result_json=big + " ")
    assert store.save_job(final)
    assert store.get_job("big") == final
    assert store.recent_jobs(1) == [final]
    small = make_job("big", "Fail")  # a final state is never rewritten, whatever its size
    assert not store.save_job(small)
    assert store.get_job("big").result_json == big + " "  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------- matches


def test_replace_matches_is_idempotent(store: ResultStore) -> None:
    rows = [make_match("j1", n) for n in range(12)] + [make_match("j1", 3, kind="text")]
    store.replace_matches("j1", rows)
    first = store.matches_for_job("j1")
    store.replace_matches("j1", list(reversed(rows)))
    assert store.matches_for_job("j1") == first == sorted(rows, key=lambda r: r.slice_id)


def test_replacing_with_fewer_rows_removes_the_extras(store: ResultStore) -> None:
    store.replace_matches("j1", [make_match("j1", n) for n in range(15)])
    store.replace_matches("j2", [make_match("j2", n) for n in range(3)])
    kept = [make_match("j1", n, similarity=0.5) for n in (2, 7)]
    store.replace_matches("j1", kept)
    assert store.matches_for_job("j1") == kept
    assert len(store.matches_for_job("j2")) == 3  # another job's rows are untouched
    store.replace_matches("j1", [])
    assert store.matches_for_job("j1") == []
    assert store.matches_for_job("nope") == []


def test_many_matches_round_trip(store: ResultStore) -> None:
    rows = [make_match("j1", n) for n in range(450)]  # > 200: several BatchWriteRow requests on Tablestore
    store.replace_matches("j1", rows)
    assert store.matches_for_job("j1") == sorted(rows, key=lambda r: r.slice_id)
    store.replace_matches("j1", rows[:120])
    assert store.matches_for_job("j1") == sorted(rows[:120], key=lambda r: r.slice_id)


def test_match_rows_must_belong_to_the_job_and_be_unique(store: ResultStore) -> None:
    store.replace_matches("j1", [make_match("j1", 1)])
    with pytest.raises(ValueError, match="belongs to job"):
        store.replace_matches("j1", [make_match("j2", 1)])
    with pytest.raises(ValueError, match="duplicate slice id"):
        store.replace_matches("j1", [make_match("j1", 1), make_match("j1", 1)])
    assert store.matches_for_job("j1") == [make_match("j1", 1)]  # a refused call changes nothing


# ------------------------------------------------------------------------------------------ outbox


def test_failed_jobs_are_enqueued_once(store: ResultStore) -> None:
    failed = make_failed("j1", failed_at=10)
    assert store.add_failed(failed) is True
    assert store.add_failed(replace(failed, message="again")) is False
    assert store.get_failed("j1") == failed
    assert store.get_failed("nope") is None


def test_pending_oldest_first_until_reported_once(store: ResultStore) -> None:
    for job_id, at in (("j-c", 30.0), ("j-a", 10.0), ("j-b", 20.0)):
        store.add_failed(make_failed(job_id, failed_at=at))
    store.add_failed(make_failed("j-0", failed_at=1.0, reported_at=2.0))  # enqueued already reported
    assert [f.job_id for f in store.pending_failed(10)] == ["j-a", "j-b", "j-c"]
    assert [f.job_id for f in store.pending_failed(2)] == ["j-a", "j-b"]
    assert store.pending_failed(0) == []

    assert store.mark_failed_reported("j-a", now=50) is True
    assert store.mark_failed_reported("j-a", now=60) is False
    assert store.mark_failed_reported("j-0", now=60) is False
    assert store.mark_failed_reported("nope", now=60) is False
    assert store.get_failed("j-a").reported_at == 50.0  # type: ignore[union-attr]
    assert [f.job_id for f in store.pending_failed(10)] == ["j-b", "j-c"]
    assert store.add_failed(make_failed("j-a", failed_at=70)) is False  # reported or not: once


def test_failed_attempts_are_counted(store: ResultStore) -> None:
    store.add_failed(make_failed("j1", failed_at=10))
    store.record_failed_attempt("j1", "Throttling.User")
    store.record_failed_attempt("j1", "ServiceUnavailable")
    failed = store.get_failed("j1")
    assert failed is not None
    assert (failed.attempts, failed.last_error, failed.reported_at) == (2, "ServiceUnavailable", None)
    assert [f.attempts for f in store.pending_failed(10)] == [2]
    store.record_failed_attempt("nope", "boom")  # not in the outbox: nothing to count
    assert store.get_failed("nope") is None


def test_pending_can_leave_out_jobs_tried_too_often(store: ResultStore) -> None:
    for job_id, at, tries in (("j-a", 10.0, 3), ("j-b", 20.0, 2), ("j-c", 30.0, 0)):
        store.add_failed(make_failed(job_id, failed_at=at))
        for _ in range(tries):
            store.record_failed_attempt(job_id, "Throttling.User")
    assert [f.job_id for f in store.pending_failed(10, max_attempts=3)] == ["j-b", "j-c"]
    assert [f.job_id for f in store.pending_failed(1, max_attempts=3)] == ["j-b"]  # the limit counts after it
    assert [f.job_id for f in store.pending_failed(10, max_attempts=1)] == ["j-c"]
    assert [f.job_id for f in store.pending_failed(10)] == ["j-a", "j-b", "j-c"]


def test_an_outbox_row_is_claimed_by_one_reporter_until_its_lease_runs_out(store: ResultStore) -> None:
    store.add_failed(make_failed("j1", failed_at=1.0))
    assert store.claim_failed("j1", "run-a", now=100, lease_seconds=60) is True
    assert store.claim_failed("j1", "run-b", now=120, lease_seconds=60) is False  # held by run-a
    assert store.claim_failed("j1", "run-a", now=130, lease_seconds=60) is True  # re-entrant for its owner
    assert store.claim_failed("j1", "run-b", now=190, lease_seconds=60) is True  # run-a's lease ran out
    assert store.mark_failed_reported("j1", now=191) is True
    assert store.claim_failed("j1", "run-c", now=10_000, lease_seconds=60) is False  # reported: never again
    assert store.claim_failed("unknown", "run-a", now=100, lease_seconds=60) is False


def test_a_released_outbox_row_is_free_and_unowned(store: ResultStore) -> None:
    store.add_failed(make_failed("j1", failed_at=1.0))
    assert store.claim_failed("j1", "run-a", now=100, lease_seconds=60) is True
    assert store.release_failed("j1", "run-b") is False  # only the holder
    assert store.release_failed("j1", "run-a") is True
    row = store.get_failed("j1")
    assert row is not None and (row.claim_owner, row.claim_expires_at) == ("", 0.0)
    assert store.claim_failed("j1", "run-b", now=101, lease_seconds=60) is True  # no wait for run-a's lease
    store.mark_failed_reported("j1", now=102)
    assert store.release_failed("j1", "run-b") is False  # reported rows stay as they are


def test_threads_claiming_one_outbox_row_yield_one_reporter(store: ResultStore) -> None:
    store.add_failed(make_failed("j1", failed_at=1.0))
    results = _race(16, lambda i: store.claim_failed("j1", f"run-{i}", now=100, lease_seconds=60))
    assert results.count(True) == 1


def test_many_pending_failed_jobs_span_pages(store: ResultStore) -> None:
    for n in range(30):
        store.add_failed(make_failed(f"j{n:02d}", failed_at=float(100 - n)))
    for n in range(25):  # the first pages of the table (by key) are all reported
        store.mark_failed_reported(f"j{n:02d}", now=200)
    assert [f.job_id for f in store.pending_failed(10)] == ["j29", "j28", "j27", "j26", "j25"]


# ----------------------------------------------------------------------------------------- parking


def test_parking_is_idempotent_by_message_id(store: ResultStore) -> None:
    first = make_parked("m1", parked_at=10, reason="bad json")
    assert store.park_message(first) is True
    assert store.park_message(replace(first, reason="second delivery", parked_at=11)) is False
    assert store.park_message(make_parked("m2", parked_at=20)) is True
    assert store.park_message(make_parked("m0", parked_at=5)) is True
    assert store.parked_messages() == [make_parked("m2", parked_at=20), first, make_parked("m0", parked_at=5)]
    assert [m.message_id for m in store.parked_messages(limit=1)] == ["m2"]
    assert store.parked_messages(limit=0) == []


# ------------------------------------------------------------------------------------- concurrency


def _race(n: int, work: object) -> list[object]:
    """Run `work(i)` on n threads released together; return the results in thread order."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)  # type: ignore[operator]
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def test_threads_claiming_one_key_yield_one_owner(store: ResultStore) -> None:
    outcomes = _race(8, lambda i: store.claim_object(make_claim("k1", f"req-{i}", now=1000), now=1000))
    counts = Counter(r.outcome for r in outcomes)  # type: ignore[attr-defined]
    assert counts == {ClaimOutcome.ACQUIRED: 1, ClaimOutcome.IN_PROGRESS: 7}
    winner = next(r.claim.owner for r in outcomes if r.outcome is ClaimOutcome.ACQUIRED)  # type: ignore[attr-defined]
    assert all(r.claim.owner == winner for r in outcomes)  # type: ignore[attr-defined]
    assert store.get_object("k1").owner == winner  # type: ignore[union-attr]


def test_threads_taking_over_one_expired_lease_yield_one_owner(store: ResultStore) -> None:
    store.claim_object(make_claim("k1", "crashed", now=1000), now=1000)
    outcomes = _race(8, lambda i: store.claim_object(make_claim("k1", f"req-{i}", now=2000), now=2000))
    assert Counter(r.outcome for r in outcomes) == {  # type: ignore[attr-defined]
        ClaimOutcome.ACQUIRED: 1,
        ClaimOutcome.IN_PROGRESS: 7,
    }


def test_concurrent_job_writes_end_in_the_furthest_state(store: ResultStore) -> None:
    states = ["Queuing", "Analysing", "Success", "Analysing", "Queuing", "Analysing"]
    _race(len(states), lambda i: store.save_job(make_job("j1", states[i], updated_at=float(i))))
    assert store.get_job("j1").state == "Success"  # type: ignore[union-attr]
