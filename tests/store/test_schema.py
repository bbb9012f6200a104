"""The schema module is the single source of table names and keys (the deploy template is checked against it)."""

from __future__ import annotations

import pytest

from shared.ports import FailedJob, JobRecord, ObjectClaim, ParkedMessage
from shared.store import schema
from shared.vocabulary import overwrite_rule, state_rank

from .records import make_claim, make_failed, make_job, make_match, make_parked


def test_the_tables_and_their_keys() -> None:
    assert {spec.name: spec.primary_key for spec in schema.TABLES} == {
        "fp_objects": (("key", "STRING"),),
        "fp_jobs": (("job_id", "STRING"),),
        "fp_matches": (("job_id", "STRING"), ("slice_id", "STRING")),
        "fp_failed_jobs": (("job_id", "STRING"),),
        "fp_parked_messages": (("message_id", "STRING"),),
        "fp_verdicts": (("job_id", "STRING"),),
    }
    for spec in schema.TABLES:
        assert 1 <= len(spec.primary_key) <= 4  # Tablestore's limit
        assert set(spec.key_names) <= set(schema.columns_of(spec))  # every key column is a record field


@pytest.mark.parametrize(
    "record",
    [
        make_claim("k", "o", now=1.0),
        make_job("j", "Analysing"),
        make_match("j", 3, kind="text"),
        make_failed("j", failed_at=1.0, reported_at=2.0),
        make_parked("m", parked_at=1.0),
    ],
)
def test_encode_decode_round_trip(record: object) -> None:
    row = schema.encode(record)
    assert all(value is None or isinstance(value, str | int | float) for value in row.values())
    assert schema.decode(type(record), row) == record


def test_derived_columns_and_coercion() -> None:
    job = schema.encode(JobRecord(job_id="j", state="Success", duration=3, submitted_at=5))  # type: ignore[arg-type]
    assert (job["state_rank"], job["duration"], job["submitted_at"]) == (2, 3.0, 5.0)
    assert isinstance(job["duration"], float)
    assert schema.encode(FailedJob(job_id="j"))["reported"] == 0
    assert schema.encode(FailedJob(job_id="j", reported_at=1.0))["reported"] == 1
    assert (
        schema.encode(ParkedMessage("m", "s", "r", "b", attrs={"b": "2", "a": "1"}))["attrs"] == '{"a": "1", "b": "2"}'
    )


def test_decode_fills_defaults_and_refuses_missing_required_fields() -> None:
    claim = schema.decode(ObjectClaim, {"key": "k", "owner": "o", "status": "IN_PROGRESS", "expires_at": 3})
    assert claim.job_id is None and claim.bucket == "" and claim.expires_at == 3.0
    with pytest.raises(TypeError):
        schema.decode(ObjectClaim, {"key": "k"})


def test_state_rules() -> None:
    assert overwrite_rule("Queuing") == (0, True)
    assert overwrite_rule("Analysing") == (1, True)
    assert overwrite_rule("Success") == (2, False)
    assert overwrite_rule("Fail") == (2, False)
    with pytest.raises(ValueError):
        state_rank("Done")
    with pytest.raises(ValueError):
        schema.encode(make_job("j1", "Done"))
