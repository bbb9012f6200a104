"""Tablestore specifics, on the fake OTSClient: batching, retries, pagination, conditions, provisioning."""

from __future__ import annotations

from typing import Any

import pytest
from tablestore import OTSServiceError

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
    assert create_tables(client) == [spec.name for spec in schema.TABLES]
    assert create_tables(client) == []
    assert set(client.list_table()) == {spec.name for spec in schema.TABLES}
    assert client.calls["CreateTable"] == len(schema.TABLES)


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


def test_too_many_states_for_one_filter_are_refused(fake_ots: FakeOTSClient) -> None:
    store, _ = _store(fake_ots)
    with pytest.raises(ValueError, match="at most 9 states"):
        store.jobs_in_states([f"S{n}" for n in range(10)], updated_before=1, limit=1)
    assert store.jobs_in_states([f"S{n}" for n in range(9)], updated_before=1, limit=1) == []
