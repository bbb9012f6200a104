"""An in-memory stand-in for the `tablestore.OTSClient` methods `shared.store.tablestore` calls.

It speaks the SDK's own types (`Row`, `Condition`, `SingleColumnCondition`, `CompositeColumnCondition`,
`INF_MIN`/`INF_MAX`, `BatchWriteRowRequest` → `BatchWriteRowResponse`) and raises the SDK's own
`OTSServiceError(http_status, code, message, request_id)`: `OTSConditionCheckFail` for an unmet condition,
`OTSParameterInvalid` for a broken limit or rule, `OTSObjectNotExist` for an unknown table.

Enforced, because the store relies on them: 1–4 primary-key columns of STRING/INTEGER/BINARY, keys that
match the table's schema exactly (names, order, types; STRING/BINARY ≤ 1 KB), ≤ 200 rows and no duplicate
row per BatchWriteRow, ≤ 10 conditions per column condition, ≤ 1024 columns and ≤ 2 MB per value,
row-existence expectations, `pass_if_missing`, and rows returned in primary-key order one page at a time with
`next_start_primary_key`. Where the service's exact behaviour is unclear the fake is stricter, never looser:
comparing a column with a value of another type is rejected, AND/OR need two or more sub-conditions, a
column condition can't be combined with EXPECT_NOT_EXIST, and `limit` caps the rows scanned, so a filtered
page can come back short, even empty, with a next key (as the service does at its 5000-row scan limit).
Global secondary indexes are index tables: created with their table (key = listed primary-key or predefined
STRING/INTEGER columns, holding every key column of the table; keys only), kept in step with every write (a row
missing an index column is not indexed), read with GetRange like a table, never written; a predefined column keeps
its type; a time to live on an indexed table needs allow_update=False, and UpdateRow is then refused (the
service's rules). The service updates an index asynchronously; the fake does it at once, so the store re-checks
what it reads through an index against the rows themselves. BatchGetRow (≤ 100 rows) and the 4 MB request limit
of PutRow/UpdateRow/BatchWriteRow are modelled too.
Anything it doesn't model (versions, time ranges, columns_to_get, regex conditions) raises
NotImplementedError instead of pretending.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tablestore import (
    INF_MAX,
    INF_MIN,
    BatchGetRowRequest,
    BatchGetRowResponse,
    BatchWriteRowRequest,
    BatchWriteRowResponse,
    BatchWriteRowResponseItem,
    BatchWriteRowType,
    CapacityUnit,
    ColumnCondition,
    ComparatorType,
    CompositeColumnCondition,
    Condition,
    Direction,
    LogicalOperator,
    OTSClientError,
    OTSServiceError,
    ReservedThroughput,
    Row,
    RowDataItem,
    RowExistenceExpectation,
    SecondaryIndexMeta,
    SecondaryIndexType,
    SingleColumnCondition,
    TableMeta,
    TableOptions,
)
from tablestore.encoder import OTSProtoBufferEncoder

MAX_BATCH_WRITE_ROWS = 200
MAX_PK_COLUMNS = 4
MAX_PK_BYTES = 1024
MAX_VALUE_BYTES = 2 * 1024 * 1024
MAX_COLUMNS_PER_ROW = 1024
MAX_CONDITIONS = 10
MAX_SCAN_ROWS = 5000
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_BATCH_GET_ROWS = 100
_PK_TYPES = {"STRING", "INTEGER", "BINARY"}
_COMPARE: dict[int, Callable[[Any, Any], bool]] = {
    ComparatorType.EQUAL: operator.eq,
    ComparatorType.NOT_EQUAL: operator.ne,
    ComparatorType.GREATER_THAN: operator.gt,
    ComparatorType.GREATER_EQUAL: operator.ge,
    ComparatorType.LESS_THAN: operator.lt,
    ComparatorType.LESS_EQUAL: operator.le,
}

Key = tuple[Any, ...]


def _error(status: int, code: str, message: str) -> OTSServiceError:
    return OTSServiceError(status, code, message, "fake-request-id")


def param_invalid(message: str) -> OTSServiceError:
    return _error(400, "OTSParameterInvalid", message)


def condition_failed() -> OTSServiceError:
    return _error(403, "OTSConditionCheckFail", "Condition check failed.")


def _value_type(value: Any) -> str:
    """The Tablestore type a Python value is written as (bool before int: bool is an int in Python)."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, bytes | bytearray):
        return "BINARY"
    # What the SDK itself raises, client-side, for e.g. None.
    raise OTSClientError(f"Unsupported column type: {type(value)}")


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    return 8


@dataclass
class _Table:
    pk_schema: list[tuple[str, str]]
    rows: dict[Key, dict[str, Any]] = field(default_factory=dict)
    defined: dict[str, str] = field(default_factory=dict)  # predefined column → type
    options: TableOptions | None = None
    indexes: list[str] = field(default_factory=list)  # names of its global secondary indexes
    base: str | None = None  # for an index table: the table it indexes

    @property
    def pk_names(self) -> list[str]:
        return [name for name, _ in self.pk_schema]


class FakeOTSClient:
    """Thread-safe: each call is atomic, as each request is on the service.

    Test hooks: `calls` counts API calls, `batch_sizes` records the row count of each BatchWriteRow,
    `fail_next_rows(*codes)` makes the next batch row operations fail (unapplied) with those error codes,
    `rows(table)` shows a table's stored rows.
    """

    def __init__(self, *, page_size: int = MAX_SCAN_ROWS) -> None:
        self._tables: dict[str, _Table] = {}
        self._lock = threading.RLock()
        self._page_size = min(page_size, MAX_SCAN_ROWS)
        self._row_faults: list[str] = []
        self._timestamps = itertools.count(1_700_000_000_000)
        self.calls: Counter[str] = Counter()
        self.batch_sizes: list[int] = []
        self.request_bytes: list[int] = []  # data size of each BatchWriteRow
        self.rows_read: Counter[str] = Counter()  # rows read per table or index (GetRange pages, BatchGetRow)
        # The SDK's own request encoder: every call is serialized exactly as OTSClient would send it, so
        # an argument the real client would refuse (a bad Row shape, a None value...) fails here too.
        self._encoder = OTSProtoBufferEncoder("utf8", enable_native=False)

    def _encode(self, api_name: str, *args: Any) -> None:
        self._encoder.encode_request(api_name, *args)

    # ------------------------------------------------------------------------------- test hooks

    def fail_next_rows(self, *codes: str) -> None:
        with self._lock:
            self._row_faults.extend(codes)

    def options(self, table_name: str) -> TableOptions | None:
        with self._lock:
            return self._table(table_name).options

    def rows(self, table_name: str) -> dict[Key, dict[str, Any]]:
        with self._lock:
            return {key: dict(cells) for key, cells in sorted(self._table(table_name).rows.items())}

    # ---------------------------------------------------------------------------------- tables

    def list_table(self) -> tuple[str, ...]:
        with self._lock:
            self.calls["ListTable"] += 1
            # Index tables are not listed (DescribeTable shows them under their table).
            return tuple(sorted(name for name, table in self._tables.items() if table.base is None))

    def create_table(
        self,
        table_meta: TableMeta,
        table_options: TableOptions,
        reserved_throughput: ReservedThroughput,
        secondary_indexes: list[SecondaryIndexMeta] | None = None,
        sse_spec: Any = None,
    ) -> None:
        if sse_spec:
            raise NotImplementedError("the fake models no encryption")
        schema = [tuple(column) for column in table_meta.schema_of_primary_key]
        with self._lock:
            self.calls["CreateTable"] += 1
            if table_meta.table_name in self._tables:
                raise _error(409, "OTSObjectAlreadyExist", f"Requested table already exists: {table_meta.table_name}")
            if not 1 <= len(schema) <= MAX_PK_COLUMNS:
                raise param_invalid(f"The number of primary key columns must be in range: [1, {MAX_PK_COLUMNS}].")
            names = [column[0] for column in schema]
            if len(set(names)) != len(names):
                raise param_invalid("Duplicated primary key name.")
            for column in schema:
                if len(column) != 2 or column[1] not in _PK_TYPES:
                    raise param_invalid(f"Unsupported primary key column {column!r}.")
            # Encoded after the key checks: the SDK itself refuses a DOUBLE key client-side.
            self._encode("CreateTable", table_meta, table_options, reserved_throughput, None, secondary_indexes or [])
            table = _Table([(str(n), str(t)) for n, t in schema], options=table_options)
            table.defined = {str(n): str(t) for n, t in (table_meta.defined_columns or [])}
            indexes = list(secondary_indexes or [])
            ttl = table_options.time_to_live
            if indexes and ttl not in (None, -1) and table_options.allow_update is not False:
                # The service's own rule, message and all.
                raise param_invalid("Don't support allow update operation on table with index and ttl")
            for index in indexes:
                self._create_index(table_meta.table_name, table, index)
            self._tables[table_meta.table_name] = table

    def update_table(
        self, table_name: str, table_options: TableOptions | None = None, reserved_throughput: Any = None
    ) -> None:
        if reserved_throughput is not None:
            raise NotImplementedError("reserved throughput")
        self._encode("UpdateTable", table_name, table_options, reserved_throughput)
        with self._lock:
            self.calls["UpdateTable"] += 1
            table = self._table(table_name)
            if table.base is not None:
                raise param_invalid("An index table cannot be updated.")
            if table_options is None:
                return
            ttl = table_options.time_to_live
            if table.indexes and ttl not in (None, -1) and table_options.allow_update is not False:
                raise param_invalid("Don't support allow update operation on table with index and ttl")
            table.options = table_options

    def _create_index(self, base_name: str, base: _Table, index: SecondaryIndexMeta) -> None:
        """A global secondary index as an index table: its key is the listed columns (primary-key or
        predefined STRING/INTEGER columns) and must hold every key column of the base table."""
        if index.index_type != SecondaryIndexType.GLOBAL_INDEX:
            raise NotImplementedError("local secondary indexes")
        if index.defined_column_names:
            raise NotImplementedError("the fake's indexes hold keys only (no included columns)")
        if index.index_name in self._tables:
            raise _error(409, "OTSObjectAlreadyExist", f"Requested table already exists: {index.index_name}")
        base_types = dict(base.pk_schema)
        key: list[tuple[str, str]] = []
        for name in index.primary_key_names:
            kind = base_types.get(name) or base.defined.get(name)
            if kind is None:
                raise param_invalid(f"Index column {name} is neither a primary key nor a predefined column.")
            if kind not in _PK_TYPES:
                raise param_invalid(f"Index column {name} of type {kind} cannot be a primary key.")
            key.append((name, kind))
        if not set(base.pk_names) <= {name for name, _ in key}:
            raise param_invalid("An index must contain every primary key column of its table.")
        if not 1 <= len(key) <= MAX_PK_COLUMNS:
            raise param_invalid(f"The number of index primary key columns must be in range: [1, {MAX_PK_COLUMNS}].")
        self._tables[index.index_name] = _Table(key, base=base_name)
        base.indexes.append(index.index_name)

    def _table(self, table_name: str) -> _Table:
        table = self._tables.get(table_name)
        if table is None:
            raise _error(404, "OTSObjectNotExist", "Requested table does not exist.")
        return table

    # -------------------------------------------------------------------------- validation

    def _key(self, table: _Table, primary_key: Any, *, bound: bool = False) -> Key:
        """A stored row's key (`bound=False`) or a range bound (INF_MIN/INF_MAX allowed), checked against the
        table's schema. Keys compare as tuples of (0, -) INF_MIN < (1, value) < (2, -) INF_MAX."""
        if not isinstance(primary_key, list):
            raise OTSClientError(f"Primary key is not list, but is {type(primary_key)}")
        if [column[0] for column in primary_key] != table.pk_names:
            raise param_invalid(f"Validate PK name fail. Expect {table.pk_names}.")
        key: list[Any] = []
        for (name, pk_type), (_, value) in zip(table.pk_schema, primary_key, strict=True):
            if value is INF_MIN or value is INF_MAX:
                if not bound:
                    raise param_invalid(f"INF_MIN/INF_MAX is only allowed in a range: {name}.")
                key.append((0, None) if value is INF_MIN else (2, None))
                continue
            actual = _value_type(value)
            if actual != pk_type:
                raise param_invalid(f"Validate PK type fail. Column {name} is {pk_type}, got {actual}.")
            if _size(value) > MAX_PK_BYTES:
                raise param_invalid(f"The length of primary key column {name} exceeds {MAX_PK_BYTES} bytes.")
            value = bytes(value) if pk_type == "BINARY" else value
            key.append((1, value) if bound else value)
        return tuple(key)

    @staticmethod
    def _check_cell(table: _Table, name: Any, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise param_invalid(f"Invalid column name {name!r}.")
        if name in table.pk_names:
            raise param_invalid(f"Attribute column {name} conflicts with a primary key column.")
        _value_type(value)
        if _size(value) > MAX_VALUE_BYTES:
            raise param_invalid(f"The length of attribute column {name} exceeds {MAX_VALUE_BYTES} bytes.")

    def _pk_list(self, table: _Table, key: Key) -> list[tuple[str, Any]]:
        return list(zip(table.pk_names, key, strict=True))

    # -------------------------------------------------------------------------- conditions

    def _count(self, condition: ColumnCondition) -> int:
        if isinstance(condition, SingleColumnCondition):
            return 1
        if isinstance(condition, CompositeColumnCondition):
            subs = condition.sub_conditions
            combinator = condition.get_combinator()
            if combinator == LogicalOperator.NOT and len(subs) != 1:
                raise param_invalid("NOT takes exactly one sub-condition.")
            if combinator in (LogicalOperator.AND, LogicalOperator.OR) and len(subs) < 2:
                raise param_invalid("AND/OR take at least two sub-conditions.")
            return sum(self._count(sub) for sub in subs)
        raise NotImplementedError(f"the fake does not evaluate {type(condition).__name__}")

    def _check_filter(self, condition: ColumnCondition) -> None:
        if self._count(condition) > MAX_CONDITIONS:
            raise param_invalid(f"The number of column conditions exceeds {MAX_CONDITIONS}.")

    def _matches(self, condition: ColumnCondition, cells: dict[str, Any]) -> bool:
        if isinstance(condition, SingleColumnCondition):
            name = condition.get_column_name()
            if name not in cells:
                return condition.get_pass_if_missing()
            stored, wanted = cells[name], condition.get_column_value()
            if _value_type(stored) != _value_type(wanted):
                raise param_invalid(
                    f"Column {name} is {_value_type(stored)}; the condition compares a {_value_type(wanted)}."
                )
            return _COMPARE[condition.get_comparator()](stored, wanted)
        assert isinstance(condition, CompositeColumnCondition)
        results = [self._matches(sub, cells) for sub in condition.sub_conditions]
        combinator = condition.get_combinator()
        if combinator == LogicalOperator.NOT:
            return not results[0]
        return all(results) if combinator == LogicalOperator.AND else any(results)

    def _check_condition(self, table: _Table, condition: Condition | None, key: Key) -> None:
        if condition is None:
            return
        if not isinstance(condition, Condition):
            raise OTSClientError(f"condition should be an instance of Condition, not {type(condition).__name__}")
        expectation = condition.get_row_existence_expectation()
        column_condition = condition.get_column_condition()
        if column_condition is not None:
            if expectation == RowExistenceExpectation.EXPECT_NOT_EXIST:
                raise param_invalid("A column condition cannot be combined with EXPECT_NOT_EXIST.")
            self._check_filter(column_condition)
        existing = table.rows.get(key)
        if expectation == RowExistenceExpectation.EXPECT_EXIST and existing is None:
            raise condition_failed()
        if expectation == RowExistenceExpectation.EXPECT_NOT_EXIST and existing is not None:
            raise condition_failed()
        if column_condition is not None:
            cells = {**dict(self._pk_list(table, key)), **(existing or {})}
            if not self._matches(column_condition, cells):
                raise condition_failed()

    # ---------------------------------------------------------------------------- row writes

    def _put(self, table: _Table, row: Row, condition: Condition | None) -> None:
        if not isinstance(row, Row):
            raise OTSClientError(f"row should be a Row, not {type(row).__name__}")
        key = self._key(table, row.primary_key)
        cells: dict[str, Any] = {}
        for cell in row.attribute_columns or []:
            if not isinstance(cell, tuple) or len(cell) not in (2, 3):
                raise OTSClientError(f"Unsupported column format: {cell!r}")
            self._check_cell(table, cell[0], cell[1])
            if cell[0] in cells:
                raise param_invalid(f"Duplicated attribute column {cell[0]}.")
            cells[cell[0]] = cell[1]
        if len(cells) > MAX_COLUMNS_PER_ROW:
            raise param_invalid(f"The number of columns exceeds {MAX_COLUMNS_PER_ROW}.")
        self._check_condition(table, condition, key)
        self._store(table, key, cells)

    def _update(self, table: _Table, row: Row, condition: Condition | None) -> None:
        if not isinstance(row, Row) or not isinstance(row.attribute_columns, dict):
            raise OTSClientError("update_row takes a Row whose attribute columns are a dict of operations")
        key = self._key(table, row.primary_key)
        if table.options is not None and table.options.allow_update is False:
            raise param_invalid("UpdateRow is not allowed on this table (allow_update is false).")
        self._check_condition(table, condition, key)
        cells = dict(table.rows.get(key) or {})
        for operation, columns in row.attribute_columns.items():
            op = operation.lower()
            for column in columns:
                if op == "put":
                    self._check_cell(table, column[0], column[1])
                    cells[column[0]] = column[1]
                elif op == "delete_all":
                    cells.pop(column if isinstance(column, str) else column[0], None)
                elif op == "increment":
                    name, delta = column[0], column[1]
                    current = cells.get(name, 0)
                    if _value_type(delta) != "INTEGER" or _value_type(current) != "INTEGER":
                        raise param_invalid(f"Increment needs INTEGER values: {name}.")
                    cells[name] = current + delta
                else:  # "delete" removes one version: the fake keeps one version only
                    raise NotImplementedError(f"update operation {operation!r}")
        if len(cells) > MAX_COLUMNS_PER_ROW:
            raise param_invalid(f"The number of columns exceeds {MAX_COLUMNS_PER_ROW}.")
        self._store(table, key, cells)

    def _delete(self, table: _Table, row: Any, condition: Condition | None) -> None:
        primary_key = row.primary_key if isinstance(row, Row) else row
        key = self._key(table, primary_key)
        self._check_condition(table, condition, key)
        self._store(table, key, None)

    def _store(self, table: _Table, key: Key, cells: dict[str, Any] | None) -> None:
        """Write (or delete, `cells=None`) a row and keep its indexes in step. The service updates a global
        secondary index asynchronously (milliseconds behind); the fake does it at once, so a store must and
        does re-check every indexed read against the rows themselves rather than rely on either."""
        if table.base is not None:
            raise param_invalid("An index table cannot be written.")
        for name, value in (cells or {}).items():
            kind = table.defined.get(name)
            if kind is not None and _value_type(value) != kind:
                raise param_invalid(f"Predefined column {name} is {kind}, got {_value_type(value)}.")
        old = table.rows.get(key)
        for index_name in table.indexes:
            index = self._tables[index_name]
            for entry in (self._index_entry(table, index, key, old),):
                if entry is not None:
                    index.rows.pop(entry, None)
            entry = None if cells is None else self._index_entry(table, index, key, cells)
            if entry is not None:
                index.rows[entry] = {}
        if cells is None:
            table.rows.pop(key, None)
        else:
            table.rows[key] = cells

    @staticmethod
    def _index_entry(table: _Table, index: _Table, key: Key, cells: dict[str, Any] | None) -> Key | None:
        """The index row of a table row: None when the row lacks an index column (indexes are sparse)."""
        if cells is None:
            return None
        values = {**dict(zip(table.pk_names, key, strict=True)), **cells}
        if any(name not in values for name in index.pk_names):
            return None
        return tuple(values[name] for name in index.pk_names)

    def put_row(
        self,
        table_name: str,
        row: Row,
        condition: Condition | None = None,
        return_type: Any = None,
        transaction_id: Any = None,
    ) -> tuple[CapacityUnit, None]:
        self._unsupported(return_type=return_type, transaction_id=transaction_id)
        self._encode("PutRow", table_name, row, condition, return_type, transaction_id)
        self._check_request_size(self._row_bytes(row))
        with self._lock:
            self.calls["PutRow"] += 1
            self._put(self._table(table_name), row, condition)
        return CapacityUnit(0, 1), None

    def update_row(
        self,
        table_name: str,
        row: Row,
        condition: Condition | None,
        return_type: Any = None,
        transaction_id: Any = None,
    ) -> tuple[CapacityUnit, None]:
        self._unsupported(return_type=return_type, transaction_id=transaction_id)
        self._encode("UpdateRow", table_name, row, condition, return_type, transaction_id)
        self._check_request_size(self._row_bytes(row))
        with self._lock:
            self.calls["UpdateRow"] += 1
            self._update(self._table(table_name), row, condition)
        return CapacityUnit(0, 1), None

    def delete_row(
        self,
        table_name: str,
        row: Any = None,
        condition: Condition | None = None,
        return_type: Any = None,
        transaction_id: Any = None,
    ) -> tuple[CapacityUnit, None]:
        self._unsupported(return_type=return_type, transaction_id=transaction_id)
        primary_key = row.primary_key if isinstance(row, Row) else row  # as OTSClient.delete_row does
        self._encode("DeleteRow", table_name, primary_key, condition, return_type, transaction_id)
        with self._lock:
            self.calls["DeleteRow"] += 1
            self._delete(self._table(table_name), row, condition)
        return CapacityUnit(0, 1), None

    # ------------------------------------------------------------------------------------ reads

    def _as_row(self, table: _Table, key: Key) -> Row:
        cells = table.rows[key]
        stamp = next(self._timestamps)
        # Like the service: attribute columns sorted by name, each as (name, value, timestamp).
        return Row(self._pk_list(table, key), [(n, cells[n], stamp) for n in sorted(cells)])

    def get_row(
        self,
        table_name: str,
        primary_key: list[tuple[str, Any]],
        columns_to_get: Any = None,
        column_filter: ColumnCondition | None = None,
        max_version: int = 1,
        time_range: Any = None,
        start_column: Any = None,
        end_column: Any = None,
        token: Any = None,
        transaction_id: Any = None,
    ) -> tuple[CapacityUnit, Row | None, None]:
        self._unsupported(
            columns_to_get=columns_to_get,
            time_range=time_range,
            start_column=start_column,
            end_column=end_column,
            token=token,
            transaction_id=transaction_id,
            max_version=max_version != 1,
        )
        self._encode(
            "GetRow",
            table_name,
            primary_key,
            columns_to_get,
            column_filter,
            max_version,
            time_range,
            start_column,
            end_column,
            token,
            transaction_id,
        )
        with self._lock:
            self.calls["GetRow"] += 1
            table = self._table(table_name)
            key = self._key(table, primary_key)
            if column_filter is not None:
                self._check_filter(column_filter)
            if key not in table.rows:
                return CapacityUnit(1, 0), None, None
            cells = {**dict(self._pk_list(table, key)), **table.rows[key]}
            if column_filter is not None and not self._matches(column_filter, cells):
                return CapacityUnit(1, 0), None, None
            return CapacityUnit(1, 0), self._as_row(table, key), None

    def get_range(
        self,
        table_name: str,
        direction: str,
        inclusive_start_primary_key: list[tuple[str, Any]],
        exclusive_end_primary_key: list[tuple[str, Any]],
        columns_to_get: Any = None,
        limit: int | None = None,
        column_filter: ColumnCondition | None = None,
        max_version: int = 1,
        time_range: Any = None,
        start_column: Any = None,
        end_column: Any = None,
        token: Any = None,
        transaction_id: Any = None,
    ) -> tuple[CapacityUnit, list[tuple[str, Any]] | None, list[Row], None]:
        self._unsupported(
            columns_to_get=columns_to_get,
            time_range=time_range,
            start_column=start_column,
            end_column=end_column,
            token=token,
            transaction_id=transaction_id,
            max_version=max_version != 1,
        )
        if direction not in (Direction.FORWARD, Direction.BACKWARD):
            raise OTSClientError(f"direction should be one of [FORWARD, BACKWARD], not {direction}")
        self._encode(
            "GetRange",
            table_name,
            direction,
            inclusive_start_primary_key,
            exclusive_end_primary_key,
            columns_to_get,
            limit,
            column_filter,
            max_version,
            time_range,
            start_column,
            end_column,
            token,
            transaction_id,
        )
        with self._lock:
            self.calls["GetRange"] += 1
            table = self._table(table_name)
            start = self._key(table, inclusive_start_primary_key, bound=True)
            end = self._key(table, exclusive_end_primary_key, bound=True)
            forward = direction == Direction.FORWARD
            if (forward and start >= end) or (not forward and start <= end):
                raise param_invalid(f"Begin key must be {'less' if forward else 'more'} than end key in {direction}.")
            if limit is not None and (not isinstance(limit, int) or limit <= 0):
                raise param_invalid("The limit must be a positive integer.")
            if column_filter is not None:
                self._check_filter(column_filter)

            def bounded(key: Key) -> Key:
                return tuple((1, v) for v in key)

            keys = sorted(
                (k for k in table.rows if (start <= bounded(k) < end if forward else end < bounded(k) <= start)),
                reverse=not forward,
            )
            budget = min(limit or self._page_size, self._page_size)
            page, rest = keys[:budget], keys[budget:]
            self.rows_read[table_name] += len(page)
            rows = []
            for key in page:
                cells = {**dict(self._pk_list(table, key)), **table.rows[key]}
                if column_filter is None or self._matches(column_filter, cells):
                    rows.append(self._as_row(table, key))
            next_start = self._pk_list(table, rest[0]) if rest else None
            return CapacityUnit(len(page), 0), next_start, rows, None

    # ------------------------------------------------------------------------------- batch write

    def batch_write_row(self, request: BatchWriteRowRequest) -> BatchWriteRowResponse:
        if not isinstance(request, BatchWriteRowRequest):
            raise OTSClientError(f"The request should be a BatchWriteRowRequest, not {type(request).__name__}")
        if request.transaction_id is not None:
            raise NotImplementedError("transactions")
        self._encode("BatchWriteRow", request)
        with self._lock:
            self.calls["BatchWriteRow"] += 1
            total = sum(len(item.row_items) for item in request.items.values())
            size = sum(self._row_bytes(row_item.row) for item in request.items.values() for row_item in item.row_items)
            self._check_request_size(size)
            self.request_bytes.append(size)
            if total == 0:
                raise param_invalid("No row specified in the request of BatchWriteRow.")
            if total > MAX_BATCH_WRITE_ROWS:
                raise param_invalid(f"The total number of rows in BatchWriteRow exceeds {MAX_BATCH_WRITE_ROWS}.")
            # Request-level checks first: an unknown table, a bad key or a repeated row rejects the whole batch.
            seen: set[tuple[str, Key]] = set()
            for table_name, item in request.items.items():
                table = self._table(table_name)
                for row_item in item.row_items:
                    key = (table_name, self._key(table, row_item.row.primary_key))
                    if key in seen:
                        raise param_invalid("Duplicated primary key in one BatchWriteRow request.")
                    seen.add(key)
            self.batch_sizes.append(total)
            results: dict[str, list[BatchWriteRowResponseItem]] = {}
            for table_name, item in request.items.items():
                table = self._table(table_name)
                results[table_name] = [self._write_one(table, row_item) for row_item in item.row_items]
            return BatchWriteRowResponse(request, results)

    def _write_one(self, table: _Table, row_item: Any) -> BatchWriteRowResponseItem:
        try:
            if self._row_faults:
                code = self._row_faults.pop(0)
                raise _error(503, code, "injected by the test")
            if row_item.type == BatchWriteRowType.PUT:
                self._put(table, row_item.row, row_item.condition)
            elif row_item.type == BatchWriteRowType.UPDATE:
                self._update(table, row_item.row, row_item.condition)
            else:
                self._delete(table, row_item.row, row_item.condition)
        except OTSServiceError as exc:
            # Row failures don't raise: the response item says what went wrong (as the decoder builds it).
            return BatchWriteRowResponseItem(False, exc.get_error_code(), exc.get_error_message(), None, None)
        return BatchWriteRowResponseItem(True, None, None, CapacityUnit(0, 1), None)

    @staticmethod
    def _row_bytes(row: Any) -> int:
        """A row's data size: names and values of its key and attribute cells."""
        cells = list(getattr(row, "primary_key", None) or [])
        columns = getattr(row, "attribute_columns", None) or []
        if isinstance(columns, dict):
            cells += [c for group in columns.values() for c in group if isinstance(c, tuple | list)]
        else:
            cells += list(columns)
        return sum(len(str(cell[0])) + _size(cell[1]) for cell in cells if len(cell) >= 2)

    @staticmethod
    def _check_request_size(size: int) -> None:
        if size > MAX_REQUEST_BYTES:
            raise param_invalid(f"The total data size of the request exceeds {MAX_REQUEST_BYTES} bytes.")

    def batch_get_row(self, request: BatchGetRowRequest) -> BatchGetRowResponse:
        if not isinstance(request, BatchGetRowRequest):
            raise OTSClientError(f"The request should be a BatchGetRowRequest, not {type(request).__name__}")
        self._encode("BatchGetRow", request)
        with self._lock:
            self.calls["BatchGetRow"] += 1
            total = sum(len(item.primary_keys) for item in request.items.values())
            if not 1 <= total <= MAX_BATCH_GET_ROWS:
                raise param_invalid(f"The number of rows in BatchGetRow must be in range: [1, {MAX_BATCH_GET_ROWS}].")
            results: dict[str, list[RowDataItem]] = {}
            for table_name, item in request.items.items():
                if item.columns_to_get or item.column_filter or item.time_range or item.max_version != 1:
                    raise NotImplementedError("the fake's BatchGetRow reads whole rows, one version")
                table = self._table(table_name)
                rows = []
                for primary_key in item.primary_keys:
                    key = self._key(table, primary_key)
                    if key not in table.rows:
                        rows.append(RowDataItem(True, None, None, table_name, CapacityUnit(1, 0), None, None))
                        continue
                    self.rows_read[table_name] += 1
                    row = self._as_row(table, key)
                    rows.append(
                        RowDataItem(
                            True, None, None, table_name, CapacityUnit(1, 0), row.primary_key, row.attribute_columns
                        )
                    )
                results[table_name] = rows
            return BatchGetRowResponse(results)

    @staticmethod
    def _unsupported(**options: Any) -> None:
        used = sorted(name for name, value in options.items() if value not in (None, False))
        if used:
            raise NotImplementedError(f"the fake does not model {', '.join(used)}")
