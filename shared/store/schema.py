"""The results store's tables, keys and column layout: the one place both backends (and the deploy
template's test) read them from.

A row holds the fields of one `shared.ports` record, column for column, plus a few derived columns the
backends filter on (`state_rank`, `reported`). Column values are plain scalars (str, int, float) so the same
row fits SQLite and Tablestore; a dict field is stored as a JSON string.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from shared.ports import FailedJob, JobRecord, MatchRow, ObjectClaim, ParkedMessage, VerdictRecord
from shared.vocabulary import CLAIM_COMPLETED, CLAIM_IN_PROGRESS, CLAIM_MAYBE_SUBMITTED, state_rank

Scalar = str | int | float
PkType = Literal["STRING", "INTEGER", "BINARY"]
Kind = Literal["str", "int", "float", "json"]


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    primary_key: tuple[tuple[str, PkType], ...]  # in key order; the first column is the partition key
    record: type
    derived: tuple[tuple[str, Kind], ...] = ()  # stored columns that are not record fields

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.primary_key)


OBJECTS = TableSpec("fp_objects", (("key", "STRING"),), ObjectClaim)
JOBS = TableSpec("fp_jobs", (("job_id", "STRING"),), JobRecord, (("state_rank", "int"),))
MATCHES = TableSpec("fp_matches", (("job_id", "STRING"), ("slice_id", "STRING")), MatchRow)
FAILED_JOBS = TableSpec("fp_failed_jobs", (("job_id", "STRING"),), FailedJob, (("reported", "int"),))
PARKED_MESSAGES = TableSpec("fp_parked_messages", (("message_id", "STRING"),), ParkedMessage)
VERDICTS = TableSpec("fp_verdicts", (("job_id", "STRING"),), VerdictRecord)

TABLES: tuple[TableSpec, ...] = (OBJECTS, JOBS, MATCHES, FAILED_JOBS, PARKED_MESSAGES, VERDICTS)

# Claim statuses (ObjectClaim.status).
IN_PROGRESS: Final = CLAIM_IN_PROGRESS
COMPLETED: Final = CLAIM_COMPLETED
MAYBE_SUBMITTED: Final = CLAIM_MAYBE_SUBMITTED


# --------------------------------------------------------------------------------------------- codec

R = TypeVar("R")
# Annotations as written in ports.py; the vocabulary's Literal aliases are strings on the wire and in a column.
_SCALAR_KINDS: dict[str, Kind] = {"str": "str", "int": "int", "float": "float", "JobState": "str", "ClaimStatus": "str"}


def _field_kinds(record: type) -> dict[str, tuple[Kind, bool]]:
    """`{field: (kind, optional)}` from the dataclass annotations (strings, as ports.py defers them)."""
    kinds: dict[str, tuple[Kind, bool]] = {}
    for f in dataclasses.fields(record):
        annotation = str(f.type).replace(" ", "")
        optional = annotation.endswith("|None")
        base = annotation.removesuffix("|None")
        if base.startswith("dict["):
            kinds[f.name] = ("json", optional)
        elif base in _SCALAR_KINDS:
            kinds[f.name] = (_SCALAR_KINDS[base], optional)
        else:  # fail at import, not on the first write, if a record gains a type the store can't hold
            raise TypeError(f"{record.__name__}.{f.name}: no column kind for {f.type!r}")
    return kinds


_KINDS: dict[type, dict[str, tuple[Kind, bool]]] = {spec.record: _field_kinds(spec.record) for spec in TABLES}


def columns_of(spec: TableSpec) -> dict[str, Kind]:
    """Every stored column of `spec` and its kind, key columns first."""
    kinds = {name: kind for name, (kind, _) in _KINDS[spec.record].items()}
    ordered = {name: kinds.pop(name) for name in spec.key_names}
    return ordered | kinds | dict(spec.derived)


def _coerce(kind: Kind, value: Any) -> Scalar:
    # Tablestore types a cell by its Python type, and its column conditions compare only like types:
    # a float field must always be written as a float (DOUBLE), never as an int that happens to be whole.
    if kind == "float":
        return float(value)
    if kind == "int":
        return int(value)
    if kind == "json":
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def encode(record: Any) -> dict[str, Scalar | None]:
    """Record → `{column: value}` (None where an optional field is unset; derived columns included)."""
    row: dict[str, Scalar | None] = {}
    for name, (kind, _) in _KINDS[type(record)].items():
        value = getattr(record, name)
        row[name] = None if value is None else _coerce(kind, value)
    if isinstance(record, JobRecord):
        row["state_rank"] = state_rank(record.state)
    elif isinstance(record, FailedJob):
        row["reported"] = 0 if record.reported_at is None else 1
    return row


def decode(record: type[R], row: Mapping[str, Any]) -> R:
    """`{column: value}` → record; missing optional columns become None, other missing ones the default."""
    values: dict[str, Any] = {}
    for name, (kind, optional) in _KINDS[record].items():
        value = row.get(name)
        if value is None:
            if optional:
                values[name] = None
            continue  # the dataclass default applies; a missing required field raises TypeError below
        values[name] = json.loads(value) if kind == "json" else _coerce(kind, value)
    return record(**values)


def check_match_rows(job_id: str, rows: list[MatchRow]) -> None:
    """Both backends refuse rows of another job and duplicate slice ids (they would share a primary key)."""
    seen: set[str] = set()
    for row in rows:
        if row.job_id != job_id:
            raise ValueError(f"match row {row.slice_id!r} belongs to job {row.job_id!r}, not {job_id!r}")
        if row.slice_id in seen:
            raise ValueError(f"duplicate slice id {row.slice_id!r} for job {job_id!r}")
        seen.add(row.slice_id)
