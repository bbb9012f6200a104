"""The results store's tables, keys and column layout: the one place both backends (and the deploy
template's test) read them from.

A row holds the fields of one `shared.ports` record, column for column, plus a few derived columns the
backends filter on (`state_rank`, `reported`). Column values are plain scalars (str, int, float) so the same
row fits SQLite and Tablestore; a dict field is stored as a JSON string.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from shared.ports import FailedJob, JobRecord, MatchRow, ObjectClaim, ParkedMessage, VerdictRecord
from shared.vocabulary import CLAIM_COMPLETED, CLAIM_IN_PROGRESS, CLAIM_MAYBE_SUBMITTED, state_rank

Scalar = str | int | float
PkType = Literal["STRING", "INTEGER", "BINARY"]
Kind = Literal["str", "int", "float", "json"]


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A secondary index: rows ordered by `columns`, then the table's own key (appended, so keys stay unique).
    On Tablestore a global secondary index whose key columns are predefined STRING/INTEGER columns; the index
    holds keys only, and a read fetches the rows themselves from the table (BatchGetRow)."""

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    primary_key: tuple[tuple[str, PkType], ...]  # in key order; the first column is the partition key
    record: type
    derived: tuple[tuple[str, Kind], ...] = ()  # stored columns that are not record fields
    indexes: tuple[IndexSpec, ...] = ()
    expires: bool = False  # rows expire after the configured retention (Tablestore time_to_live)

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.primary_key)

    def index(self, name: str) -> IndexSpec:
        return next(index for index in self.indexes if index.name == name)

    def index_key(self, index: IndexSpec) -> tuple[str, ...]:
        """The index table's primary key: the index columns, then the table's key columns not among them."""
        return index.columns + tuple(n for n in self.key_names if n not in index.columns)


# Which index serves which query (each read ranges over one index, never over a whole table):
#   fp_jobs_by_state      jobs_in_states (the timer's sweep): per state, updated_ms below the cut-off, oldest first
#   fp_jobs_by_submitted  recent_jobs (results view, review page): newest first, the first `limit` keys
#   fp_jobs_by_item       jobs_for_item (library item lengths and names for verdicts and the review page)
#   fp_failed_pending     pending_failed (the timer's reports): reported = 0, per attempt count, oldest first
#   fp_parked_by_time     parked_messages: newest first
#   fp_verdicts_by_submitted  recent_verdicts (review page): newest first
#   fp_verdicts_by_object     verdicts_for_object (reviewer allow-list, versions of an upload)
# Time columns of an index key are integer milliseconds (`*_ms`): a Tablestore key column can't be a DOUBLE.
OBJECTS = TableSpec("fp_objects", (("key", "STRING"),), ObjectClaim)
JOBS = TableSpec(
    "fp_jobs",
    (("job_id", "STRING"),),
    JobRecord,
    (("state_rank", "int"), ("updated_ms", "int"), ("submitted_ms", "int")),
    (
        IndexSpec("fp_jobs_by_state", ("state", "updated_ms")),
        IndexSpec("fp_jobs_by_submitted", ("submitted_ms",)),
        IndexSpec("fp_jobs_by_item", ("primary_key",)),
    ),
    expires=True,
)
MATCHES = TableSpec("fp_matches", (("job_id", "STRING"), ("slice_id", "STRING")), MatchRow, expires=True)
# A result too big for one cell (Tablestore: 2 MB a cell, 4 MB a request) is stored here in parts, one row
# each, keyed by the job and "<digest>:<part>"; the job row names the digest and part count (`result_parts`).
JOB_RESULT_PARTS = "fp_job_results"
FAILED_JOBS = TableSpec(
    "fp_failed_jobs",
    (("job_id", "STRING"),),
    FailedJob,
    (("reported", "int"), ("failed_ms", "int")),
    (IndexSpec("fp_failed_pending", ("reported", "attempts", "failed_ms")),),
)
PARKED_MESSAGES = TableSpec(
    "fp_parked_messages",
    (("message_id", "STRING"),),
    ParkedMessage,
    (("parked_ms", "int"),),
    (IndexSpec("fp_parked_by_time", ("parked_ms",)),),
)
VERDICTS = TableSpec(
    "fp_verdicts",
    (("job_id", "STRING"),),
    VerdictRecord,
    (("submitted_ms", "int"),),
    (
        IndexSpec("fp_verdicts_by_submitted", ("submitted_ms",)),
        IndexSpec("fp_verdicts_by_object", ("object_key",)),
    ),
    expires=True,
)

TABLES: tuple[TableSpec, ...] = (OBJECTS, JOBS, MATCHES, FAILED_JOBS, PARKED_MESSAGES, VERDICTS)


@dataclass(slots=True)
class ResultPart:
    """Key of one part of a big result (Tablestore only; the part's bytes are its `data` cell)."""

    job_id: str
    part: str  # "<digest>:<n>", n zero-padded so parts sort in order


RESULT_PARTS = TableSpec(JOB_RESULT_PARTS, (("job_id", "STRING"), ("part", "STRING")), ResultPart, expires=True)
# What a Tablestore deployment holds (template.yml declares exactly these): the tables plus the parts table.
CLOUD_TABLES: tuple[TableSpec, ...] = (*TABLES, RESULT_PARTS)

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


_KINDS: dict[type, dict[str, tuple[Kind, bool]]] = {spec.record: _field_kinds(spec.record) for spec in CLOUD_TABLES}


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
        row["updated_ms"] = millis(record.updated_at)
        row["submitted_ms"] = millis(record.submitted_at)
    elif isinstance(record, FailedJob):
        row["reported"] = 0 if record.reported_at is None else 1
        row["failed_ms"] = millis(record.failed_at)
    elif isinstance(record, ParkedMessage):
        row["parked_ms"] = millis(record.parked_at)
    elif isinstance(record, VerdictRecord):
        row["submitted_ms"] = millis(record.submitted_at)
    return row


def millis(seconds: float) -> int:
    """Epoch seconds → the integer milliseconds an index key holds (floor, so `ms <= millis(t)` covers `<= t`)."""
    return math.floor(seconds * 1000)


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
