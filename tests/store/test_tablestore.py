"""Tablestore specifics, on the fake OTSClient: batching, retries, pagination, conditions, provisioning."""

from __future__ import annotations

from typing import Any

import pytest
from tablestore import (
    CapacityUnit,
    Condition,
    OTSServiceError,
    ReservedThroughput,
    Row,
    SecondaryIndexMeta,
    TableMeta,
    TableOptions,
)

from shared.ports import ClaimOutcome
from shared.store import schema
from shared.store.tablestore import BatchWriteError, TablestoreStore, create_tables

from .fake_ots import FakeOTSClient
from .records import make_claim, make_failed, make_job, make_match


def _store(client: FakeOTSClient, **options: Any) -> tuple[TablestoreStore, list[float]]:
    sleeps: list[float] = []
    # rand = 0.5: every full-jitter wait is half its ceiling, so the waits are exact.
    return TablestoreStore(client, sleep=sleeps.append, random=lambda: 0.5, **options), sleeps


def test_create_tables_declares_the_schema_once() -> None:
    client = FakeOTSClient()
    names = [spec.name for spec in schema.TABLES] + [schema.JOB_RESULT_PARTS]
    assert create_tables(client) == names
    assert create_tables(client) == []
    assert set(client.list_table()) == set(names)
    assert client.calls["CreateTable"] == len(names)
    for spec in schema.TABLES:  # every index exists and can be ranged over
        for index in spec.indexes:
            assert client.rows(index.name) == {}


def test_retention_sets_time_to_live_and_forbids_updates_where_indexed() -> None:
    client = FakeOTSClient()
    create_tables(client, retention_seconds=90 * 86400)
    ttl = {name: client.options(name).time_to_live for name in client.list_table()}  # type: ignore[union-attr]
    assert ttl == {
        "fp_jobs": 90 * 86400,
        "fp_matches": 90 * 86400,
        "fp_verdicts": 90 * 86400,
        "fp_job_results": 90 * 86400,
        "fp_objects": -1,
        "fp_failed_jobs": -1,
        "fp_parked_messages": -1,
    }
    assert client.options("fp_jobs").allow_update is False  # type: ignore[union-attr]
    # The store writes expiring indexed tables whole (PutRow), so it works on them as created.
    store, _ = _store(client)
    assert store.save_job(make_job("j1", "Queuing", updated_at=5.0))
    assert store.save_job(make_job("j1", "Success", updated_at=6.0))
    assert store.get_job("j1").state == "Success"  # type: ignore[union-attr]
    with pytest.raises(OTSServiceError):
        client.update_row("fp_jobs", Row([("job_id", "j1")], {"put": [("x", 1)]}), Condition("EXPECT_EXIST"))


def test_an_index_with_a_ttl_on_an_updatable_table_is_refused_as_the_service_does() -> None:
    client = FakeOTSClient()
    meta = TableMeta("t", [("id", "STRING")], [("c", "STRING")])
    with pytest.raises(OTSServiceError, match="allow update"):
        client.create_table(
            meta,
            TableOptions(time_to_live=86400),
            ReservedThroughput(CapacityUnit(0, 0)),
            [SecondaryIndexMeta("t_by_c", ["c", "id"], [])],
        )


def test_timer_queries_read_index_keys_not_the_table(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    for n in range(300):  # history: finished, reported and old rows the timer must not pay for
        store.save_job(make_job(f"done-{n:03d}", "Success", updated_at=float(n), submitted_at=float(n)))
        store.add_failed(make_failed(f"rep-{n:03d}", failed_at=float(n), reported_at=float(n) + 1))
        store.record_failed_attempt(f"rep-{n:03d}", "x")
    for n in range(3):
        store.save_job(make_job(f"stuck-{n}", "Analysing", updated_at=float(n)))
        store.add_failed(make_failed(f"pending-{n}", failed_at=float(n)))
    for n in range(5):  # tried too often: left out of the timer's reads as well
        store.add_failed(make_failed(f"given-up-{n}", failed_at=float(n)))
        for _ in range(5):
            store.record_failed_attempt(f"given-up-{n}", "refused")
    fake_ots.rows_read.clear()
    stuck = store.jobs_in_states(["Queuing", "Analysing"], updated_before=100.0, limit=50)
    pending = store.pending_failed(50, max_attempts=5)
    assert [j.job_id for j in stuck] == ["stuck-0", "stuck-1", "stuck-2"]
    assert [f.job_id for f in pending] == ["pending-0", "pending-1", "pending-2"]
    # Never a GetRange over the tables; the rows fetched are exactly the answers.
    assert fake_ots.rows_read == {"fp_jobs_by_state": 3, "fp_jobs": 3, "fp_failed_pending": 3, "fp_failed_jobs": 3}

    fake_ots.rows_read.clear()
    newest = store.recent_jobs(5)
    assert [j.job_id for j in newest] == [f"done-{n:03d}" for n in range(299, 294, -1)]
    assert fake_ots.rows_read == {"fp_jobs_by_submitted": 5, "fp_jobs": 5}


def test_a_result_bigger_than_a_cell_is_stored_in_parts(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    big = '{"x":"' + "é" * (3 * 1024 * 1024) + '"}'  # 6 MB of UTF-8: over a cell and over a request
    job = make_job("j1", "Success")
    job.result_json = big
    assert store.save_job(job)
    [row] = fake_ots.rows("fp_jobs").values()
    assert row["result_json"] == "" and row["result_parts"].endswith(":7")  # 6 MiB and a few bytes
    assert len(fake_ots.rows("fp_job_results")) == 7
    assert max(fake_ots.request_bytes) <= 4 * 1024 * 1024
    assert store.get_job("j1").result_json == big  # type: ignore[union-attr]
    assert store.recent_jobs(1)[0].result_json == big


def test_batches_are_split_by_size_as_well_as_rows(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    rows = [make_match("j1", n) for n in range(30)]
    for row in rows:
        row.input_text = "t" * (500 * 1024)  # 30 × 0.5 MB: 15 MB of matched text
    store.replace_matches("j1", rows)
    assert len(fake_ots.batch_sizes) >= 4 and sum(fake_ots.batch_sizes) == 30
    assert max(fake_ots.request_bytes) <= 4 * 1024 * 1024
    assert store.matches_for_job("j1") == rows


def test_match_writes_are_chunked_to_200_rows(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    rows = [make_match("j1", n) for n in range(450)]
    store.replace_matches("j1", rows)
    assert fake_ots.batch_sizes == [200, 200, 50]
    fake_ots.batch_sizes.clear()
    store.replace_matches("j1", rows[:120])  # 120 puts + 330 deletes
    assert fake_ots.batch_sizes == [200, 200, 50]
    assert len(fake_ots.rows("fp_matches")) == 120


def test_transiently_failed_batch_rows_are_retried(fake_ots: FakeOTSClient) -> None:
    store, sleeps = _store(fake_ots, retry_delay=0.1)
    fake_ots.fail_next_rows("OTSServerBusy", "OTSRowOperationConflict", "OTSServerBusy")
    rows = [make_match("j1", n) for n in range(5)]
    store.replace_matches("j1", rows)
    assert store.matches_for_job("j1") == rows
    # First request: rows 0-2 failed; the retry resends exactly those three.
    assert fake_ots.batch_sizes == [5, 3]
    assert sleeps == [0.05]


def test_persistently_failing_rows_raise_after_the_last_attempt(fake_ots: FakeOTSClient) -> None:
    store, sleeps = _store(fake_ots, max_batch_attempts=3, retry_delay=0.1)
    fake_ots.fail_next_rows(*["OTSServerBusy"] * 10)
    with pytest.raises(BatchWriteError, match="OTSServerBusy") as caught:
        store.replace_matches("j1", [make_match("j1", 0)])
    assert caught.value.table == "fp_matches"
    assert fake_ots.batch_sizes == [1, 1, 1]
    assert sleeps == [0.05, 0.1]  # full jitter below a doubling ceiling


def test_a_non_retryable_row_error_raises_at_once(fake_ots: FakeOTSClient) -> None:
    store, sleeps = _store(fake_ots)
    fake_ots.fail_next_rows("OTSParameterInvalid")
    with pytest.raises(BatchWriteError, match="OTSParameterInvalid"):
        store.replace_matches("j1", [make_match("j1", n) for n in range(3)])
    assert fake_ots.batch_sizes == [3]
    assert sleeps == []


def test_scans_follow_next_start_primary_key(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    for n in range(20):
        store.save_job(make_job(f"j{n:02d}", "Queuing", submitted_at=float(n)))
    fake_ots.calls.clear()
    assert len(store.recent_jobs(limit=100)) == 20
    assert fake_ots.calls["GetRange"] == 3  # 7 + 7 + 6 rows


def test_job_rows_carry_a_state_rank_the_condition_compares(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    store.save_job(make_job("j1", "Analysing"))
    assert fake_ots.rows("fp_jobs")[("j1",)]["state_rank"] == 1
    store.save_job(make_job("j1", "Fail"))
    assert fake_ots.rows("fp_jobs")[("j1",)]["state_rank"] == 2
    fake_ots.calls.clear()
    assert store.save_job(make_job("j1", "Queuing")) is False
    assert fake_ots.calls["PutRow"] == 2  # insert refused, then the conditional overwrite refused


def test_outbox_rows_carry_a_reported_flag(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    store.add_failed(make_failed("j1", failed_at=1))
    assert fake_ots.rows("fp_failed_jobs")[("j1",)]["reported"] == 0
    assert "reported_at" not in fake_ots.rows("fp_failed_jobs")[("j1",)]  # None is left out, not stored
    store.mark_failed_reported("j1", now=5)
    assert fake_ots.rows("fp_failed_jobs")[("j1",)]["reported"] == 1


class _RacingClient(FakeOTSClient):
    """Lets a competitor take over an expired lease between our read of it and our compare-and-swap."""

    def __init__(self) -> None:
        super().__init__()
        self.competitor: TablestoreStore | None = None

    def get_row(self, *args: Any, **kwargs: Any) -> Any:
        answer = super().get_row(*args, **kwargs)
        if self.competitor is not None:
            competitor, self.competitor = self.competitor, None
            assert (
                competitor.claim_object(make_claim("k1", "fast", now=2000), now=2000).outcome is ClaimOutcome.ACQUIRED
            )
        return answer


def test_takeover_is_a_compare_and_swap_on_the_lease_read() -> None:
    client = _RacingClient()
    create_tables(client)
    store, _ = _store(client)
    store.claim_object(make_claim("k1", "crashed", now=1000), now=1000)
    client.competitor = TablestoreStore(client)
    result = store.claim_object(make_claim("k1", "slow", now=2000), now=2000)
    # We read the expired "crashed" lease, but "fast" swapped it first: our swap must fail, and the
    # re-read then shows fast's live lease.
    assert result.outcome is ClaimOutcome.IN_PROGRESS
    assert result.claim.owner == "fast"
    assert store.get_object("k1").owner == "fast"  # type: ignore[union-attr]


def test_service_errors_other_than_a_failed_condition_propagate() -> None:
    store, _ = _store(FakeOTSClient())  # no tables: every call fails with OTSObjectNotExist
    calls = [
        lambda: store.claim_object(make_claim("k1", "a", now=1), now=1),
        lambda: store.complete_object("k1", "a", "j", now=1),
        lambda: store.release_object("k1", "a"),
        lambda: store.save_job(make_job("j1", "Queuing")),
        lambda: store.add_failed(make_failed("j1", failed_at=1)),
        lambda: store.mark_failed_reported("j1", now=1),
        lambda: store.record_failed_attempt("j1", "x"),
        lambda: store.pending_failed(10),
        lambda: store.replace_matches("j1", []),
    ]
    for call in calls:
        with pytest.raises(OTSServiceError) as caught:
            call()
        assert caught.value.get_error_code() == "OTSObjectNotExist"


def test_any_number_of_states_is_one_index_range_each(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    assert store.jobs_in_states([f"S{n}" for n in range(12)], updated_before=1, limit=1) == []
    assert fake_ots.calls["GetRange"] == 12
