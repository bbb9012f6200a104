"""The results store on Alibaba Cloud Tablestore (OTS), through the official `tablestore` SDK.

Every conditional rule is a server-side condition, so concurrent function instances need no other lock:
- claims and outbox/parked inserts: `Condition(EXPECT_NOT_EXIST)`;
- lease takeover: `EXPECT_EXIST` + a compare-and-swap on the lease that was read (status, owner, expiry);
- complete/release: `EXPECT_EXIST` + owner (and status) column conditions;
- jobs: the numeric `state_rank` column and a `state_rank < new` (or `<=`) condition, so a state never
  moves backwards whatever order the writes arrive in.
`OTSConditionCheckFail` means "condition not met" and becomes the protocol's False/outcome; any other
service error propagates (the SDK's retry policy has already retried throttling by then).

This module imports the SDK at the top: `shared.store` only imports it when a Tablestore store is opened.
"""

from __future__ import annotations

import hashlib
import random as _random
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from typing import Any, Protocol

from tablestore import (
    INF_MAX,
    INF_MIN,
    BatchGetRowRequest,
    BatchGetRowResponse,
    BatchWriteRowRequest,
    BatchWriteRowResponse,
    CapacityUnit,
    ColumnCondition,
    ComparatorType,
    CompositeColumnCondition,
    Condition,
    DeleteRowItem,
    Direction,
    LogicalOperator,
    OTSClient,
    OTSServiceError,
    PutRowItem,
    ReservedThroughput,
    Row,
    RowExistenceExpectation,
    RowItem,
    SecondaryIndexMeta,
    SingleColumnCondition,
    TableInBatchGetRowItem,
    TableInBatchWriteRowItem,
    TableMeta,
    TableOptions,
)
from tablestore.credentials import Credentials as OtsCredentials
from tablestore.credentials import CredentialsProvider

from shared.credentials import Credentials, resolve_credentials
from shared.ports import (
    ClaimOutcome,
    ClaimResult,
    FailedJob,
    JobRecord,
    MatchRow,
    ObjectClaim,
    ParkedMessage,
    VerdictRecord,
)
from shared.retry import Backoff
from shared.store import schema
from shared.store.schema import COMPLETED, IN_PROGRESS, MAYBE_SUBMITTED, TableSpec
from shared.vocabulary import TABLESTORE_MAX_BATCH_ROWS, TABLESTORE_MAX_FILTER_CONDITIONS, JobState, overwrite_rule

CONDITION_CHECK_FAIL = "OTSConditionCheckFail"
MAX_BATCH_ROWS = TABLESTORE_MAX_BATCH_ROWS
# Tablestore: a BatchWriteRow request carries at most 4 MB, a cell at most 2 MB, a BatchGetRow at most 100
# rows. Writes are packed below the request limit with room for the request's own framing; a result bigger
# than one cell is stored in parts (`schema.JOB_RESULT_PARTS`) of RESULT_PART_BYTES each.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
BATCH_BYTES = MAX_REQUEST_BYTES - 256 * 1024
RESULT_PART_BYTES = 1024 * 1024
MAX_BATCH_GET_ROWS = 100
MAX_FILTER_CONDITIONS = TABLESTORE_MAX_FILTER_CONDITIONS
# Row-level BatchWriteRow errors worth another try (throttling, conflicts, transient server states).
RETRYABLE_ROW_ERRORS = frozenset(
    {
        "OTSRowOperationConflict",
        "OTSNotEnoughCapacityUnit",
        "OTSTableNotReady",
        "OTSPartitionUnavailable",
        "OTSServerBusy",
        "OTSOperationThrottled",
        "OTSTimeout",
        "OTSInternalServerError",
        "OTSServerUnavailable",
    }
)
_CLAIM_ROUNDS = 4  # insert / read / compare-and-swap rounds before giving up to a busy competitor

PrimaryKey = list[tuple[str, Any]]


class OtsClient(Protocol):
    """The `tablestore.OTSClient` methods this store calls (the test fake implements exactly these)."""

    def put_row(self, table_name: str, row: Row, condition: Condition | None = None) -> Any: ...

    def update_row(self, table_name: str, row: Row, condition: Condition) -> Any: ...

    def delete_row(self, table_name: str, row: Row, condition: Condition | None = None) -> Any: ...

    def get_row(self, table_name: str, primary_key: PrimaryKey, max_version: int = 1) -> Any: ...

    def get_range(
        self,
        table_name: str,
        direction: str,
        inclusive_start_primary_key: PrimaryKey,
        exclusive_end_primary_key: PrimaryKey,
        columns_to_get: list[str] | None = None,
        limit: int | None = None,
        column_filter: ColumnCondition | None = None,
    ) -> Any: ...

    def batch_write_row(self, request: BatchWriteRowRequest) -> BatchWriteRowResponse: ...

    def batch_get_row(self, request: BatchGetRowRequest) -> BatchGetRowResponse: ...

    def update_table(self, table_name: str, table_options: TableOptions) -> Any: ...

    def list_table(self) -> Any: ...

    def create_table(
        self,
        table_meta: TableMeta,
        table_options: TableOptions,
        reserved_throughput: ReservedThroughput,
        secondary_indexes: list[SecondaryIndexMeta] | None = None,
    ) -> Any: ...


class BatchWriteError(RuntimeError):
    """Rows of a BatchWriteRow that still failed after retries (or failed with a non-retryable error)."""

    def __init__(self, table: str, errors: list[tuple[str, str]]) -> None:
        codes = sorted({code for code, _ in errors})
        super().__init__(f"{len(errors)} row(s) of {table} not written: {', '.join(codes)}")
        self.table = table
        self.errors = errors


# ------------------------------------------------------------------------------------ conditions


def _eq(column: str, value: Any) -> SingleColumnCondition:
    return SingleColumnCondition(column, value, ComparatorType.EQUAL, pass_if_missing=False)


def _combine(operator: int, conditions: list[ColumnCondition]) -> ColumnCondition:
    if len(conditions) == 1:  # AND/OR of a single condition is just that condition
        return conditions[0]
    combined = CompositeColumnCondition(operator)
    for condition in conditions:
        combined.add_sub_condition(condition)
    return combined


def _all(*conditions: ColumnCondition) -> ColumnCondition:
    return _combine(LogicalOperator.AND, list(conditions))


def _any(*conditions: ColumnCondition) -> ColumnCondition:
    return _combine(LogicalOperator.OR, list(conditions))


def _attempt(call: Callable[..., Any], *args: Any) -> bool:
    """Run a conditional write: True if applied, False if its condition was not met."""
    try:
        call(*args)
    except OTSServiceError as exc:
        if exc.get_error_code() == CONDITION_CHECK_FAIL:
            return False
        raise
    return True


# ---------------------------------------------------------------------------------------- rows


def _row(spec: TableSpec, columns: dict[str, Any]) -> Row:
    """A full row for put_row: key columns in key order, then every attribute that has a value. An empty
    string in an index column is left out (the row is then simply not in that index, and reads back as "")."""
    keys = spec.key_names
    indexed = {c for index in spec.indexes for c in index.columns}
    attributes = [
        (name, value)
        for name, value in columns.items()
        if name not in keys and value is not None and not (value == "" and name in indexed)
    ]
    return Row([(name, columns[name]) for name in keys], attributes)


def _columns(row: Row) -> dict[str, Any]:
    columns = dict(row.primary_key)
    columns.update((cell[0], cell[1]) for cell in row.attribute_columns or [])
    return columns


def _whole_table(spec: TableSpec) -> tuple[PrimaryKey, PrimaryKey]:
    return [(n, INF_MIN) for n in spec.key_names], [(n, INF_MAX) for n in spec.key_names]


def _index_bounds(
    spec: TableSpec, index_name: str, fixed: PrimaryKey, low: Any, high: Any
) -> tuple[PrimaryKey, PrimaryKey]:
    """[start, end) over an index: the leading columns `fixed`, the next column from `low` to `high`, and
    every later column open (INF_MIN on both sides, so `high` itself is excluded)."""
    key = spec.index_key(spec.index(index_name))
    rest = key[len(fixed) + 1 :]
    column = key[len(fixed)]
    start = [*fixed, (column, low), *[(n, INF_MIN) for n in rest]]
    end = [*fixed, (column, high), *[(n, INF_MIN if high is not INF_MAX else INF_MAX) for n in rest]]
    return start, end


def _newest(spec: TableSpec, index_name: str) -> tuple[PrimaryKey, PrimaryKey]:
    """A whole index from its end to its start, for a backward read (newest first)."""
    key = spec.index_key(spec.index(index_name))
    return [(n, INF_MAX) for n in key], [(n, INF_MIN) for n in key]


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    return 8


def _item_bytes(item: RowItem) -> int:
    """A row item's size as the service counts it, closely enough: names and values plus a little framing."""
    row = item.row
    cells: list[Any] = list(row.primary_key)
    columns = row.attribute_columns
    if isinstance(columns, dict):
        cells += [c for group in columns.values() for c in group if isinstance(c, tuple)]
    elif columns:
        cells += list(columns)
    return 64 + sum(len(str(cell[0])) + _value_bytes(cell[1]) + 16 for cell in cells)


def _batches(items: list[RowItem]) -> Iterator[list[RowItem]]:
    """`items` split into BatchWriteRow requests of at most 200 rows and BATCH_BYTES."""
    batch: list[RowItem] = []
    size = 0
    for item in items:
        item_size = _item_bytes(item)
        if item_size > BATCH_BYTES:
            raise ValueError(f"a row of {item_size} bytes exceeds one request ({BATCH_BYTES})")
        if batch and (len(batch) >= MAX_BATCH_ROWS or size + item_size > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


class TablestoreStore:
    """`ResultStore` on Tablestore. `client` is a `tablestore.OTSClient` (or anything with its methods)."""

    def __init__(
        self,
        client: OtsClient,
        *,
        max_batch_attempts: int = 4,
        retry_delay: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._client = client
        self._max_batch_attempts = max(1, max_batch_attempts)
        self._backoff = Backoff(base=retry_delay, cap=retry_delay * 2 ** (self._max_batch_attempts - 1))
        self._sleep = sleep
        self._random = random

    # ------------------------------------------------------------------------------------ helpers

    def _get(self, spec: TableSpec, *key: str) -> dict[str, Any] | None:
        _, row, _ = self._client.get_row(spec.name, list(zip(spec.key_names, key, strict=True)), max_version=1)
        return None if row is None else _columns(row)

    def _scan(
        self,
        spec: TableSpec,
        start: PrimaryKey,
        end: PrimaryKey,
        column_filter: ColumnCondition | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every row in [start, end), page by page. A filtered page may come back empty while
        `next_start_primary_key` still points further on, so only a missing next key ends the scan."""
        next_start: PrimaryKey | None = start
        while next_start:
            _, next_start, rows, _ = self._client.get_range(
                spec.name, Direction.FORWARD, next_start, end, column_filter=column_filter
            )
            for row in rows:
                yield _columns(row)

    def _index_keys(
        self,
        spec: TableSpec,
        index_name: str,
        start: PrimaryKey,
        end: PrimaryKey,
        *,
        backward: bool = False,
        limit: int | None = None,
    ) -> Iterator[PrimaryKey]:
        """The table keys an index holds in [start, end) (or (end, start] backward), in index order, page by
        page: the index table holds keys only, so each row read here costs one small read, never a scan of the
        table. `limit` stops after that many keys (the service caps a page anyway)."""
        index = spec.index(index_name)
        next_start: PrimaryKey | None = start
        direction = Direction.BACKWARD if backward else Direction.FORWARD
        seen = 0
        while next_start:
            page_limit = None if limit is None else limit - seen
            _, next_start, rows, _ = self._client.get_range(index.name, direction, next_start, end, limit=page_limit)
            for row in rows:
                keys = dict(row.primary_key)
                yield [(name, keys[name]) for name in spec.key_names]
                seen += 1
                if limit is not None and seen >= limit:
                    return

    def _fetch(self, spec: TableSpec, keys: list[PrimaryKey]) -> list[dict[str, Any]]:
        """The rows of `keys` (BatchGetRow, ≤100 a request), in the order given; rows gone since the index
        was read (a global secondary index trails its table by milliseconds) are left out."""
        found: list[dict[str, Any]] = []
        for first in range(0, len(keys), MAX_BATCH_GET_ROWS):
            chunk = keys[first : first + MAX_BATCH_GET_ROWS]
            request = BatchGetRowRequest()
            request.add(TableInBatchGetRowItem(spec.name, chunk, max_version=1))
            response = self._client.batch_get_row(request)
            for item in response.get_result_by_table(spec.name) or []:
                if not item.is_ok:
                    raise OTSServiceError(500, item.error_code or "", item.error_message or "", "")
                if item.row is not None and item.row.primary_key:
                    found.append(_columns(item.row))
        return found

    def _batch_write(self, table: str, items: list[RowItem]) -> None:
        """Write `items` in requests of at most 200 rows and under 4 MB; retry rows that failed transiently."""
        for pending in _batches(items):
            for attempt in range(self._max_batch_attempts):
                request = BatchWriteRowRequest()
                request.add(TableInBatchWriteRowItem(table, pending))
                response = self._client.batch_write_row(request)
                if response.is_all_succeed():
                    break
                # Row failures don't raise: each failed item carries its index into `pending`.
                failed = sorted(
                    response.get_failed_of_put() + response.get_failed_of_update() + response.get_failed_of_delete(),
                    key=lambda item: item.index,
                )
                errors = [(item.error_code or "", item.error_message or "") for item in failed]
                fatal = any(code not in RETRYABLE_ROW_ERRORS for code, _ in errors)
                if fatal or attempt == self._max_batch_attempts - 1:
                    raise BatchWriteError(table, errors)
                pending = [pending[item.index] for item in failed]
                self._sleep(self._backoff.delay(attempt + 1, self._random()))

    # ------------------------------------------------------------------------------ object claims

    def claim_object(self, claim: ObjectClaim, *, now: float) -> ClaimResult:
        lease = replace(claim, status=IN_PROGRESS, job_id=None)
        row = _row(schema.OBJECTS, schema.encode(lease))
        table = schema.OBJECTS.name
        existing: ObjectClaim | None = None
        for _ in range(_CLAIM_ROUNDS):
            if _attempt(self._client.put_row, table, row, Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)):
                return ClaimResult(ClaimOutcome.ACQUIRED, lease)
            existing = self.get_object(claim.key)
            if existing is None:
                continue  # released between our insert and our read: insert again
            if existing.status == COMPLETED:
                return ClaimResult(ClaimOutcome.COMPLETED, existing)
            if existing.expires_at > now:
                return ClaimResult(ClaimOutcome.IN_PROGRESS, existing)
            # Expired: take it over only if it is still the very lease we read (compare-and-swap), so of
            # two invocations racing for the same expired lease exactly one wins.
            seen = _all(
                _eq("status", existing.status),  # IN_PROGRESS or MAYBE_SUBMITTED
                _eq("owner", existing.owner),
                _eq("expires_at", float(existing.expires_at)),
            )
            if _attempt(self._client.put_row, table, row, Condition(RowExistenceExpectation.EXPECT_EXIST, seen)):
                return ClaimResult(ClaimOutcome.ACQUIRED, lease)
        if existing is None:
            raise RuntimeError(f"claim {claim.key!r}: the row kept appearing and vanishing; retry later")
        return ClaimResult(ClaimOutcome.IN_PROGRESS, existing)

    def complete_object(self, key: str, owner: str, job_id: str, *, now: float) -> bool:
        # Only the owner; completing twice with the same job id is an idempotent success.
        condition = _all(_eq("owner", owner), _any(_eq("status", IN_PROGRESS), _eq("job_id", job_id)))
        row = Row([("key", key)], {"put": [("status", COMPLETED), ("job_id", job_id), ("updated_at", float(now))]})
        return _attempt(
            self._client.update_row,
            schema.OBJECTS.name,
            row,
            Condition(RowExistenceExpectation.EXPECT_EXIST, condition),
        )

    def release_object(self, key: str, owner: str) -> bool:
        condition = _all(_eq("owner", owner), _eq("status", IN_PROGRESS))
        return _attempt(
            self._client.delete_row,
            schema.OBJECTS.name,
            Row([("key", key)]),
            Condition(RowExistenceExpectation.EXPECT_EXIST, condition),
        )

    def suspend_object(self, key: str, owner: str, *, now: float) -> bool:
        condition = _all(_eq("owner", owner), _eq("status", IN_PROGRESS))
        put = [("status", MAYBE_SUBMITTED), ("expires_at", float(now)), ("updated_at", float(now))]
        return _attempt(
            self._client.update_row,
            schema.OBJECTS.name,
            Row([("key", key)], {"put": put}),
            Condition(RowExistenceExpectation.EXPECT_EXIST, condition),
        )

    def get_object(self, key: str) -> ObjectClaim | None:
        columns = self._get(schema.OBJECTS, key)
        return None if columns is None else schema.decode(ObjectClaim, columns)

    # --------------------------------------------------------------------------------------- jobs

    def save_job(self, job: JobRecord) -> bool:
        rank, allow_equal = overwrite_rule(job.state)
        columns = schema.encode(job)
        result = str(columns.get("result_json") or "")
        if len(result.encode("utf-8")) > RESULT_PART_BYTES:
            # Parts first, then the row naming them: a reader never sees a row whose parts are missing.
            columns["result_json"] = ""
            columns["result_parts"] = self._save_result_parts(job.job_id, result)
        row = _row(schema.JOBS, columns)
        table = schema.JOBS.name
        if _attempt(self._client.put_row, table, row, Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)):
            return True
        # The job exists: overwrite it only if that moves its state forward (or refreshes a non-final one).
        # Two requests rather than IGNORE + pass_if_missing: each relies only on documented semantics.
        comparator = ComparatorType.LESS_EQUAL if allow_equal else ComparatorType.LESS_THAN
        forward = SingleColumnCondition("state_rank", rank, comparator, pass_if_missing=False)
        return _attempt(self._client.put_row, table, row, Condition(RowExistenceExpectation.EXPECT_EXIST, forward))

    def _save_result_parts(self, job_id: str, result: str) -> str:
        """Store `result` as rows of ≤ RESULT_PART_BYTES (binary cells, so a part may split a character);
        returns the `<digest>:<count>` the job row keeps. The same result gives the same rows; parts of a
        result the job row no longer names expire with the table's retention."""
        data = result.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()[:16]
        parts = [data[i : i + RESULT_PART_BYTES] for i in range(0, len(data), RESULT_PART_BYTES)]
        ignore = Condition(RowExistenceExpectation.IGNORE)
        items: list[RowItem] = [
            PutRowItem(Row([("job_id", job_id), ("part", f"{digest}:{n:05d}")], [("data", bytearray(part))]), ignore)
            for n, part in enumerate(parts)
        ]
        self._batch_write(schema.JOB_RESULT_PARTS, items)
        return f"{digest}:{len(parts)}"

    def _job(self, columns: dict[str, Any]) -> JobRecord:
        parts = columns.get("result_parts")
        if parts:
            digest, count = str(parts).split(":")
            start = [("job_id", columns["job_id"]), ("part", f"{digest}:")]
            end = [("job_id", columns["job_id"]), ("part", f"{digest};")]  # ';' sorts right after ':'
            chunks = []
            next_start: PrimaryKey | None = start
            while next_start:
                _, next_start, rows, _ = self._client.get_range(
                    schema.JOB_RESULT_PARTS, Direction.FORWARD, next_start, end
                )
                chunks += [bytes(_columns(row)["data"]) for row in rows]
            if len(chunks) != int(count):
                raise RuntimeError(f"job {columns['job_id']}: {len(chunks)} of {count} result parts found")
            columns = {**columns, "result_json": b"".join(chunks).decode("utf-8")}
        return schema.decode(JobRecord, columns)

    def get_job(self, job_id: str) -> JobRecord | None:
        columns = self._get(schema.JOBS, job_id)
        return None if columns is None else self._job(columns)

    def jobs_in_states(self, states: Collection[JobState], *, updated_before: float, limit: int) -> list[JobRecord]:
        wanted = sorted(set(states))
        if not wanted or limit <= 0:
            return []
        # fp_jobs_by_state: per state, the oldest `limit` keys with updated_ms up to the cut-off; merged, then
        # checked again on the rows themselves (the index trails the table, and ms round the cut-off down).
        keys: list[PrimaryKey] = []
        for state in wanted:
            start, end = _index_bounds(
                schema.JOBS, "fp_jobs_by_state", [("state", state)], INF_MIN, schema.millis(updated_before) + 1
            )
            keys += self._index_keys(schema.JOBS, "fp_jobs_by_state", start, end, limit=limit)
        jobs = [self._job(c) for c in self._fetch(schema.JOBS, keys)]
        jobs = [job for job in jobs if job.state in wanted and job.updated_at < updated_before]
        jobs.sort(key=lambda job: (job.updated_at, job.job_id))
        return jobs[:limit]

    def recent_jobs(self, limit: int = 100) -> list[JobRecord]:
        if limit <= 0:
            return []
        # fp_jobs_by_submitted read backward: the newest `limit` keys, whatever the table's size.
        start, end = _newest(schema.JOBS, "fp_jobs_by_submitted")
        keys = list(self._index_keys(schema.JOBS, "fp_jobs_by_submitted", start, end, backward=True, limit=limit))
        jobs = [self._job(c) for c in self._fetch(schema.JOBS, keys)]
        jobs.sort(key=lambda job: (job.submitted_at, job.job_id), reverse=True)
        return jobs[:limit]

    def jobs_for_item(self, primary_key: str) -> list[JobRecord]:
        # fp_jobs_by_item: the jobs of one PrimaryKey (a library item's own job, or an upload's).
        if not primary_key:
            return []  # an empty PrimaryKey is not indexed (_row) and names no item
        start, end = _index_bounds(schema.JOBS, "fp_jobs_by_item", [("primary_key", primary_key)], INF_MIN, INF_MAX)
        keys = list(self._index_keys(schema.JOBS, "fp_jobs_by_item", start, end))
        jobs = [self._job(c) for c in self._fetch(schema.JOBS, keys)]
        jobs = [job for job in jobs if job.primary_key == primary_key]
        jobs.sort(key=lambda job: (job.submitted_at, job.job_id), reverse=True)
        return jobs

    # ------------------------------------------------------------------------------------ matches

    def _job_range(self, job_id: str) -> tuple[PrimaryKey, PrimaryKey]:
        return [("job_id", job_id), ("slice_id", INF_MIN)], [("job_id", job_id), ("slice_id", INF_MAX)]

    def replace_matches(self, job_id: str, rows: list[MatchRow]) -> None:
        schema.check_match_rows(job_id, rows)
        wanted = {row.slice_id for row in rows}
        stale = [
            columns["slice_id"]
            for columns in self._scan(schema.MATCHES, *self._job_range(job_id))
            if columns["slice_id"] not in wanted
        ]
        ignore = Condition(RowExistenceExpectation.IGNORE)
        items: list[RowItem] = [PutRowItem(_row(schema.MATCHES, schema.encode(r)), ignore) for r in rows]
        items += [DeleteRowItem(Row([("job_id", job_id), ("slice_id", s)]), ignore) for s in stale]
        # Not atomic across requests: puts go first, so a concurrent reader may briefly see the union of the
        # old and new rows, never fewer than either. Rewriting the same result converges to the same rows.
        self._batch_write(schema.MATCHES.name, items)

    def matches_for_job(self, job_id: str) -> list[MatchRow]:
        return [schema.decode(MatchRow, c) for c in self._scan(schema.MATCHES, *self._job_range(job_id))]

    # ------------------------------------------------------------------------------- failed outbox

    def add_failed(self, failed: FailedJob) -> bool:
        row = _row(schema.FAILED_JOBS, schema.encode(failed))
        return _attempt(
            self._client.put_row,
            schema.FAILED_JOBS.name,
            row,
            Condition(RowExistenceExpectation.EXPECT_NOT_EXIST),
        )

    def pending_failed(self, limit: int, *, max_attempts: int | None = None) -> list[FailedJob]:
        if limit <= 0:
            return []
        # fp_failed_pending, keyed (reported, attempts, failed_ms): reported rows are never read, and with
        # `max_attempts` neither are rows given up on; per attempt count the oldest `limit` keys, merged.
        spec, name = schema.FAILED_JOBS, "fp_failed_pending"
        keys: list[PrimaryKey] = []
        if max_attempts is None:
            start, end = _index_bounds(spec, name, [("reported", 0)], INF_MIN, INF_MAX)
            keys += self._index_keys(spec, name, start, end)
        else:
            for attempts in range(max(0, int(max_attempts))):
                start, end = _index_bounds(spec, name, [("reported", 0), ("attempts", attempts)], INF_MIN, INF_MAX)
                keys += self._index_keys(spec, name, start, end, limit=limit)
        failed = [schema.decode(FailedJob, c) for c in self._fetch(spec, keys)]
        failed = [f for f in failed if f.reported_at is None and (max_attempts is None or f.attempts < max_attempts)]
        failed.sort(key=lambda job: (job.failed_at, job.job_id))
        return failed[:limit]

    def claim_failed(self, job_id: str, owner: str, *, now: float, lease_seconds: float) -> bool:
        # Rows written before the lease columns existed have neither: missing counts as free.
        expired = SingleColumnCondition("claim_expires_at", float(now), ComparatorType.LESS_EQUAL, True)
        free = _any(expired, _eq("claim_owner", owner))
        put = [("claim_owner", owner), ("claim_expires_at", float(now + lease_seconds))]
        return _attempt(
            self._client.update_row,
            schema.FAILED_JOBS.name,
            Row([("job_id", job_id)], {"put": put}),
            Condition(RowExistenceExpectation.EXPECT_EXIST, _all(_eq("reported", 0), free)),
        )

    def release_failed(self, job_id: str, owner: str) -> bool:
        return _attempt(
            self._client.update_row,
            schema.FAILED_JOBS.name,
            Row([("job_id", job_id)], {"put": [("claim_owner", ""), ("claim_expires_at", 0.0)]}),
            Condition(RowExistenceExpectation.EXPECT_EXIST, _all(_eq("reported", 0), _eq("claim_owner", owner))),
        )

    def mark_failed_reported(self, job_id: str, *, now: float) -> bool:
        row = Row([("job_id", job_id)], {"put": [("reported", 1), ("reported_at", float(now))]})
        return _attempt(
            self._client.update_row,
            schema.FAILED_JOBS.name,
            row,
            Condition(RowExistenceExpectation.EXPECT_EXIST, _eq("reported", 0)),
        )

    def record_failed_attempt(self, job_id: str, error: str) -> None:
        # An atomic server-side increment; a job that isn't in the outbox is a no-op (as on SQLite).
        row = Row([("job_id", job_id)], {"put": [("last_error", error)], "increment": [("attempts", 1)]})
        _attempt(self._client.update_row, schema.FAILED_JOBS.name, row, Condition(RowExistenceExpectation.EXPECT_EXIST))

    def get_failed(self, job_id: str) -> FailedJob | None:
        columns = self._get(schema.FAILED_JOBS, job_id)
        return None if columns is None else schema.decode(FailedJob, columns)

    # ----------------------------------------------------------------------------- parked messages

    def park_message(self, message: ParkedMessage) -> bool:
        row = _row(schema.PARKED_MESSAGES, schema.encode(message))
        return _attempt(
            self._client.put_row,
            schema.PARKED_MESSAGES.name,
            row,
            Condition(RowExistenceExpectation.EXPECT_NOT_EXIST),
        )

    def parked_messages(self, limit: int = 100) -> list[ParkedMessage]:
        """Newest first: fp_parked_by_time read backward, the first `limit` keys."""
        if limit <= 0:
            return []
        spec = schema.PARKED_MESSAGES
        keys = list(
            self._index_keys(spec, "fp_parked_by_time", *_newest(spec, "fp_parked_by_time"), backward=True, limit=limit)
        )
        parked = [schema.decode(ParkedMessage, c) for c in self._fetch(spec, keys)]
        parked.sort(key=lambda message: (message.parked_at, message.message_id), reverse=True)
        return parked[:limit]

    # ------------------------------------------------------------------------------------ verdicts

    def save_verdict(self, verdict: VerdictRecord) -> None:
        # A plain put replaces every cell: the row is exactly this verdict.
        self._client.put_row(schema.VERDICTS.name, _row(schema.VERDICTS, schema.encode(verdict)))

    def get_verdict(self, job_id: str) -> VerdictRecord | None:
        columns = self._get(schema.VERDICTS, job_id)
        return None if columns is None else schema.decode(VerdictRecord, columns)

    def recent_verdicts(self, limit: int = 100) -> list[VerdictRecord]:
        if limit <= 0:
            return []
        # fp_verdicts_by_submitted read backward: the newest `limit` keys.
        spec = schema.VERDICTS
        keys = list(
            self._index_keys(
                spec, "fp_verdicts_by_submitted", *_newest(spec, "fp_verdicts_by_submitted"), backward=True, limit=limit
            )
        )
        verdicts = [schema.decode(VerdictRecord, c) for c in self._fetch(spec, keys)]
        verdicts.sort(key=lambda v: (v.submitted_at, v.job_id), reverse=True)
        return verdicts[:limit]

    def verdicts_for_object(self, object_key: str) -> list[VerdictRecord]:
        # fp_verdicts_by_object: every verdict of one object key (its uploads' versions), newest first.
        if not object_key:
            return []
        spec = schema.VERDICTS
        start, end = _index_bounds(spec, "fp_verdicts_by_object", [("object_key", object_key)], INF_MIN, INF_MAX)
        keys = list(self._index_keys(spec, "fp_verdicts_by_object", start, end))
        verdicts = [schema.decode(VerdictRecord, c) for c in self._fetch(spec, keys)]
        verdicts = [v for v in verdicts if v.object_key == object_key]
        verdicts.sort(key=lambda v: (v.submitted_at, v.job_id), reverse=True)
        return verdicts


# --------------------------------------------------------------------------------- provisioning


_OTS_TYPES = {"str": "STRING", "int": "INTEGER"}


def defined_columns(spec: TableSpec) -> list[tuple[str, str]]:
    """The predefined columns a table declares: those its secondary indexes are keyed on (STRING/INTEGER)."""
    names = dict.fromkeys(c for index in spec.indexes for c in index.columns if c not in spec.key_names)
    kinds = schema.columns_of(spec) if names else {}
    return [(name, _OTS_TYPES[kinds[name]]) for name in names]


def table_options(spec: TableSpec, retention_seconds: int = -1) -> TableOptions:
    """max_version=1 (a put replaces the row's cells, no history); rows of an expiring table live
    `retention_seconds` (-1: forever). Tablestore accepts a time_to_live on a table with a secondary index
    only if UpdateRow is disallowed on it: the expiring indexed tables (fp_jobs, fp_verdicts) are only ever
    written whole, with PutRow."""
    ttl = retention_seconds if spec.expires else -1
    if ttl != -1 and spec.indexes:
        return TableOptions(time_to_live=ttl, max_version=1, allow_update=False)
    return TableOptions(time_to_live=ttl, max_version=1)


def create_tables(client: OtsClient, *, retention_seconds: int = -1) -> list[str]:
    """Create whichever of the schema's tables (with their global secondary indexes) are missing — local
    stacks, integration tests; template.yml declares the same tables and indexes in the cloud. Returns the
    names created."""
    existing = set(client.list_table())
    created: list[str] = []
    for spec in schema.CLOUD_TABLES:
        if spec.name in existing:
            continue
        meta = TableMeta(spec.name, list(spec.primary_key), defined_columns(spec))
        indexes = [SecondaryIndexMeta(index.name, list(spec.index_key(index)), []) for index in spec.indexes]
        client.create_table(
            meta, table_options(spec, retention_seconds), ReservedThroughput(CapacityUnit(0, 0)), indexes or None
        )
        created.append(spec.name)
    return created


def indexed_expiring_tables() -> list[TableSpec]:
    """The expiring tables whose retention ROS cannot declare (an index needs UpdateRow disallowed with it)."""
    return [spec for spec in schema.CLOUD_TABLES if spec.expires and spec.indexes]


def apply_retention(client: OtsClient, retention_seconds: int) -> list[str]:
    """Set the retention (time_to_live; -1: forever) of the expiring indexed tables, fp_jobs and fp_verdicts,
    disallowing UpdateRow on them as Tablestore requires (the store writes them whole, with PutRow). The
    unindexed expiring tables get theirs from template.yml. scripts/deploy.py calls this after the stack is up.
    Returns the tables updated."""
    names = []
    for spec in indexed_expiring_tables():
        client.update_table(spec.name, table_options(spec, retention_seconds))
        names.append(spec.name)
    return names


# ---------------------------------------------------------------------------------- connecting

CredentialsSource = Credentials | Callable[[], Credentials] | None


class _ResolvingCredentials(CredentialsProvider):  # type: ignore[misc]  # the SDK ships no types
    """Resolves credentials on every request, so a rotated STS token is used without a new client."""

    def __init__(self, source: Callable[[], Credentials]) -> None:
        self._source = source

    def get_credentials(self) -> OtsCredentials:
        creds = self._source()
        return OtsCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token)


def connect(
    endpoint: str, instance: str, credentials: CredentialsSource = None, **client_options: Any
) -> TablestoreStore:
    """A store on `instance` at `endpoint` (`https://<instance>.<region>.ots.aliyuncs.com`, or the VPC one).

    `credentials`: fixed credentials, a callable returning the current ones, or None to resolve them from the
    environment on each request. `client_options` go to `OTSClient` (e.g. `socket_timeout`, `retry_policy`).
    """
    if credentials is None:
        source: Callable[[], Credentials] = resolve_credentials
    elif isinstance(credentials, Credentials):
        fixed = credentials
        source = lambda: fixed  # noqa: E731
    else:
        source = credentials
    client = OTSClient(
        endpoint, instance_name=instance, credentials_provider=_ResolvingCredentials(source), **client_options
    )
    return TablestoreStore(client)
