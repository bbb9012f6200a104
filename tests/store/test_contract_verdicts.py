"""The verdict table on both backends (the `store` fixture runs each test on SQLite and on Tablestore)."""

from __future__ import annotations

from shared.ports import ResultStore, VerdictRecord
from shared.store import schema


def _verdict(job_id: str, submitted_at: float, **overrides: object) -> VerdictRecord:
    values: dict[str, object] = {
        "job_id": job_id,
        "object_key": f"uploads/{job_id} [red]x[/red].mp4",
        "verdict": "review",
        "rule": "partial-match",
        "evidence": {"unit": "s", "items": [{"primary_key": "lib-1", "matched": 12.5}]},
        "actions": {"tag": "review"},
        "submitted_at": submitted_at,
    }
    values.update(overrides)
    return VerdictRecord(**values)  # type: ignore[arg-type]


def test_a_verdict_round_trips_with_its_evidence(store: ResultStore) -> None:
    record = _verdict("j1", 10.0)
    store.save_verdict(record)
    assert store.get_verdict("j1") == record
    assert store.get_verdict("nope") is None


def test_saving_again_replaces_every_field(store: ResultStore) -> None:
    store.save_verdict(_verdict("j1", 10.0, review_decision="dismiss", reviewer="ann"))
    replaced = _verdict("j1", 10.0, verdict="block", actions={})
    store.save_verdict(replaced)
    assert store.get_verdict("j1") == replaced  # the old decision did not survive the replacement


def test_recent_verdicts_newest_first_and_limited(store: ResultStore) -> None:
    for n in range(9):  # more than one fake-OTS page
        store.save_verdict(_verdict(f"j{n}", float(n)))
    assert [v.job_id for v in store.recent_verdicts(4)] == ["j8", "j7", "j6", "j5"]
    assert len(store.recent_verdicts(100)) == 9
    assert store.recent_verdicts(0) == []


def test_round_trip_through_the_codec() -> None:
    record = _verdict("j", 1.0, reviewed_at=2.5)
    assert schema.decode(VerdictRecord, schema.encode(record)) == record


def test_verdicts_for_object_are_that_keys_versions_newest_first(store: ResultStore) -> None:
    for n in range(10):
        store.save_verdict(_verdict(f"j{n}", float(n)))
    store.save_verdict(_verdict("v1", 1.0, object_key="uploads/same.mp4"))
    store.save_verdict(_verdict("v2", 5.0, object_key="uploads/same.mp4", review_decision="allowlist"))
    assert [v.job_id for v in store.verdicts_for_object("uploads/same.mp4")] == ["v2", "v1"]
    assert store.verdicts_for_object("uploads/same.mp4")[0] == _verdict(
        "v2", 5.0, object_key="uploads/same.mp4", review_decision="allowlist"
    )
    assert store.verdicts_for_object("uploads/none.mp4") == []
    store.save_verdict(_verdict("anon", 3.0, object_key=""))
    assert store.get_verdict("anon") == _verdict("anon", 3.0, object_key="")
    assert store.verdicts_for_object("") == []
    # Saving a verdict under another key moves it (an index entry follows its row).
    store.save_verdict(_verdict("v1", 1.0, object_key="uploads/other.mp4"))
    assert [v.job_id for v in store.verdicts_for_object("uploads/same.mp4")] == ["v2"]
