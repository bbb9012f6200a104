"""The fake OTSClient is the oracle for the Tablestore backend, so its rules are tested too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tablestore import (
    INF_MAX,
    INF_MIN,
    BatchGetRowRequest,
    BatchWriteRowRequest,
    CapacityUnit,
    ComparatorType,
    CompositeColumnCondition,
    Condition,
    DeleteRowItem,
    Direction,
    LogicalOperator,
    OTSClientError,
    OTSServiceError,
    PutRowItem,
    ReservedThroughput,
    Row,
    RowExistenceExpectation,
    SecondaryIndexMeta,
    SingleColumnCondition,
    TableInBatchGetRowItem,
    TableInBatchWriteRowItem,
    TableMeta,
    TableOptions,
    UpdateRowItem,
)

from .fake_ots import FakeOTSClient

EXIST = Condition(RowExistenceExpectation.EXPECT_EXIST)
NOT_EXIST = Condition(RowExistenceExpectation.EXPECT_NOT_EXIST)
IGNORE = Condition(RowExistenceExpectation.IGNORE)


def _create(client: FakeOTSClient, name: str, pk: list[tuple[str, str]]) -> None:
    client.create_table(TableMeta(name, pk), TableOptions(), ReservedThroughput(CapacityUnit(0, 0)))


@pytest.fixture
def client() -> FakeOTSClient:
    fake = FakeOTSClient(page_size=3)
    _create(fake, "t", [("id", "STRING")])
    _create(fake, "m", [("job", "STRING"), ("n", "INTEGER")])
    return fake


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(OTSServiceError) as caught:
        call()
    return caught.value.get_error_code()


def _when(column: str, value: Any, comparator: int = ComparatorType.EQUAL, missing: bool = False) -> Condition:
    return Condition(
        RowExistenceExpectation.EXPECT_EXIST, SingleColumnCondition(column, value, comparator, pass_if_missing=missing)
    )


def _cells(client: FakeOTSClient, pk: list[tuple[str, Any]], table: str = "t") -> dict[str, Any] | None:
    _, row, _ = client.get_row(table, pk)
    return None if row is None else {name: value for name, value, _ in row.attribute_columns}


def test_row_existence_expectations(client: FakeOTSClient) -> None:
    pk = [("id", "a")]
    client.put_row("t", Row(pk, [("v", 1)]), NOT_EXIST)
    with pytest.raises(OTSServiceError) as caught:
        client.put_row("t", Row(pk, [("v", 2)]), NOT_EXIST)
    assert (caught.value.get_http_status(), caught.value.get_error_code()) == (403, "OTSConditionCheckFail")
    assert (
        _code(lambda: client.update_row("t", Row([("id", "b")], {"put": [("v", 1)]}), EXIST)) == "OTSConditionCheckFail"
    )
    assert _code(lambda: client.delete_row("t", Row([("id", "b")]), EXIST)) == "OTSConditionCheckFail"
    client.update_row("t", Row([("id", "b")], {"put": [("v", 5)]}), IGNORE)  # IGNORE creates it
    client.delete_row("t", Row([("id", "zz")]), IGNORE)  # deleting nothing is fine
    assert _cells(client, pk) == {"v": 1}
    assert _cells(client, [("id", "b")]) == {"v": 5}


def test_column_conditions(client: FakeOTSClient) -> None:
    pk = [("id", "a")]
    client.put_row("t", Row(pk, [("rank", 1), ("owner", "x")]))
    row = Row(pk, {"put": [("rank", 2)]})
    assert _code(lambda: client.update_row("t", row, _when("rank", 1, ComparatorType.GREATER_THAN))) == (
        "OTSConditionCheckFail"
    )
    client.update_row("t", row, _when("rank", 1, ComparatorType.LESS_EQUAL))
    assert _cells(client, pk) == {"rank": 2, "owner": "x"}
    # A missing column: pass_if_missing decides.
    assert _code(lambda: client.update_row("t", row, _when("ghost", 1))) == "OTSConditionCheckFail"
    client.update_row("t", row, _when("ghost", 1, missing=True))
    # Primary-key columns can be compared too.
    client.update_row("t", row, _when("id", "a"))


def test_composite_conditions_and_their_rules(client: FakeOTSClient) -> None:
    client.put_row("t", Row([("id", "a")], [("s", "IN_PROGRESS"), ("o", "me")]))

    def composite(op: int, *subs: Any) -> Condition:
        c = CompositeColumnCondition(op)
        for sub in subs:
            c.add_sub_condition(sub)
        return Condition(RowExistenceExpectation.EXPECT_EXIST, c)

    def eq(col: str, val: Any) -> SingleColumnCondition:
        return SingleColumnCondition(col, val, ComparatorType.EQUAL, pass_if_missing=False)

    row = Row([("id", "a")], {"put": [("t", 1)]})
    client.update_row("t", row, composite(LogicalOperator.AND, eq("s", "IN_PROGRESS"), eq("o", "me")))
    assert _code(lambda: client.update_row("t", row, composite(LogicalOperator.AND, eq("s", "X"), eq("o", "me")))) == (
        "OTSConditionCheckFail"
    )
    client.update_row("t", row, composite(LogicalOperator.OR, eq("s", "X"), eq("o", "me")))
    client.update_row("t", row, composite(LogicalOperator.NOT, eq("s", "X")))
    nested = composite(
        LogicalOperator.AND, eq("o", "me"), composite(LogicalOperator.OR, eq("s", "X"), eq("j", "1")).column_condition
    )
    assert _code(lambda: client.update_row("t", row, nested)) == "OTSConditionCheckFail"
    # Arity and size rules.
    assert (
        _code(lambda: client.update_row("t", row, composite(LogicalOperator.AND, eq("o", "me"))))
        == "OTSParameterInvalid"
    )
    assert _code(lambda: client.update_row("t", row, composite(LogicalOperator.NOT, eq("o", "me"), eq("s", "X")))) == (
        "OTSParameterInvalid"
    )
    eleven = composite(LogicalOperator.OR, *[eq("o", str(n)) for n in range(11)])
    assert _code(lambda: client.update_row("t", row, eleven)) == "OTSParameterInvalid"


def test_comparing_unlike_types_is_refused(client: FakeOTSClient) -> None:
    client.put_row("t", Row([("id", "a")], [("at", 10.0), ("n", 1), ("b", True)]))
    row = Row([("id", "a")], {"put": [("x", 1)]})
    assert _code(lambda: client.update_row("t", row, _when("at", 10))) == "OTSParameterInvalid"  # DOUBLE vs INTEGER
    assert _code(lambda: client.update_row("t", row, _when("n", True))) == "OTSParameterInvalid"  # INTEGER vs BOOLEAN
    client.update_row("t", row, _when("at", 10.0))
    with pytest.raises(OTSClientError):
        client.put_row("t", Row([("id", "a")], [("x", None)]))


def test_condition_with_expect_not_exist_is_refused(client: FakeOTSClient) -> None:
    condition = Condition(RowExistenceExpectation.EXPECT_NOT_EXIST, SingleColumnCondition("x", 1, ComparatorType.EQUAL))
    assert _code(lambda: client.put_row("t", Row([("id", "a")], [("x", 1)]), condition)) == "OTSParameterInvalid"


def test_primary_key_rules(client: FakeOTSClient) -> None:
    bad_keys = [
        [("job", "j")],  # too few columns
        [("n", 1), ("job", "j")],  # wrong order
        [("job", "j"), ("n", "1")],  # wrong type
        [("job", "j"), ("n", INF_MIN)],  # INF only in a range
        [("job", "x" * 1025), ("n", 1)],  # > 1 KB
        [("job", "j"), ("n", 1), ("extra", 1)],
    ]
    for pk in bad_keys:
        assert _code(lambda pk=pk: client.put_row("m", Row(pk, [("v", 1)]))) == "OTSParameterInvalid", pk
    assert _code(lambda: client.put_row("m", Row([("job", "j"), ("n", 1)], [("job", "x")]))) == "OTSParameterInvalid"
    client.put_row("m", Row([("job", "x" * 1024), ("n", 1)], [("v", 1)]))
    assert _code(lambda: client.put_row("nope", Row([("id", "a")], []))) == "OTSObjectNotExist"


def test_tables_take_one_to_four_key_columns(client: FakeOTSClient) -> None:
    five = [(f"k{n}", "STRING") for n in range(5)]
    assert _code(lambda: _create(client, "five", five)) == "OTSParameterInvalid"
    assert _code(lambda: _create(client, "none", [])) == "OTSParameterInvalid"
    assert _code(lambda: _create(client, "dbl", [("a", "DOUBLE")])) == "OTSParameterInvalid"
    assert _code(lambda: _create(client, "t", [("id", "STRING")])) == "OTSObjectAlreadyExist"
    _create(client, "four", five[:4])


def test_increment_and_delete_all(client: FakeOTSClient) -> None:
    pk = [("id", "a")]
    client.put_row("t", Row(pk, [("n", 1), ("gone", "x")]))
    client.update_row("t", Row(pk, {"increment": [("n", 2), ("fresh", 1)], "delete_all": ["gone"]}), EXIST)
    assert _cells(client, pk) == {"n": 3, "fresh": 1}
    client.put_row("t", Row([("id", "b")], [("s", "x")]))
    bad = Row([("id", "b")], {"increment": [("s", 1)]})
    assert _code(lambda: client.update_row("t", bad, EXIST)) == "OTSParameterInvalid"


def test_get_range_orders_pages_and_bounds(client: FakeOTSClient) -> None:
    for job in ("a", "b"):
        for n in (3, 1, 2, 10, 5):
            client.put_row("m", Row([("job", job), ("n", n)], [("v", f"{job}{n}")]))
    start, end = [("job", "a"), ("n", INF_MIN)], [("job", "a"), ("n", INF_MAX)]
    _, next_start, rows, _ = client.get_range("m", Direction.FORWARD, start, end)
    assert [dict(r.primary_key)["n"] for r in rows] == [1, 2, 3]  # page_size 3
    assert next_start == [("job", "a"), ("n", 5)]
    _, next_start, rows, _ = client.get_range("m", Direction.FORWARD, next_start, end)
    assert ([dict(r.primary_key)["n"] for r in rows], next_start) == ([5, 10], None)  # b's rows are out of range
    _, next_start, rows, _ = client.get_range("m", Direction.FORWARD, start, end, limit=2)
    assert ([dict(r.primary_key)["n"] for r in rows], next_start) == ([1, 2], [("job", "a"), ("n", 3)])
    # Inclusive start, exclusive end; BACKWARD goes from the larger key down.
    _, _, rows, _ = client.get_range("m", Direction.FORWARD, [("job", "a"), ("n", 2)], [("job", "a"), ("n", 5)])
    assert [dict(r.primary_key)["n"] for r in rows] == [2, 3]
    _, _, rows, _ = client.get_range("m", Direction.BACKWARD, [("job", "b"), ("n", INF_MAX)], [("job", "b"), ("n", 2)])
    assert [dict(r.primary_key)["n"] for r in rows] == [10, 5, 3]
    assert rows[0].attribute_columns[0][:2] == ("v", "b10")
    assert _code(lambda: client.get_range("m", Direction.FORWARD, end, start)) == "OTSParameterInvalid"
    assert _code(lambda: client.get_range("m", Direction.FORWARD, start, end, limit=0)) == "OTSParameterInvalid"


def test_get_range_filters_per_page(client: FakeOTSClient) -> None:
    for n in range(7):
        client.put_row("m", Row([("job", "a"), ("n", n)], [("even", n % 2 == 0), ("late", n >= 6)]))
    late = SingleColumnCondition("late", True, ComparatorType.EQUAL, pass_if_missing=False)
    start, end = [("job", INF_MIN), ("n", INF_MIN)], [("job", INF_MAX), ("n", INF_MAX)]
    _, next_start, rows, _ = client.get_range("m", Direction.FORWARD, start, end, column_filter=late)
    assert rows == [] and next_start == [("job", "a"), ("n", 3)]  # an empty page that isn't the end
    _, next_start, rows, _ = client.get_range("m", Direction.FORWARD, next_start, end, column_filter=late)
    assert rows == [] and next_start == [("job", "a"), ("n", 6)]
    _, next_start, rows, _ = client.get_range("m", Direction.FORWARD, next_start, end, column_filter=late)
    assert [dict(r.primary_key)["n"] for r in rows] == [6] and next_start is None


def _batch(table: str, items: list[Any]) -> BatchWriteRowRequest:
    request = BatchWriteRowRequest()
    request.add(TableInBatchWriteRowItem(table, items))
    return request


def test_batch_write_limits(client: FakeOTSClient) -> None:
    rows = [PutRowItem(Row([("id", str(n))], [("v", n)]), IGNORE) for n in range(201)]
    assert _code(lambda: client.batch_write_row(_batch("t", rows))) == "OTSParameterInvalid"
    assert client.rows("t") == {}  # refused whole
    twice = [PutRowItem(Row([("id", "a")], [("v", 1)]), IGNORE), DeleteRowItem(Row([("id", "a")]), IGNORE)]
    assert _code(lambda: client.batch_write_row(_batch("t", twice))) == "OTSParameterInvalid"
    assert _code(lambda: client.batch_write_row(_batch("t", []))) == "OTSParameterInvalid"
    response = client.batch_write_row(_batch("t", rows[:200]))
    assert response.is_all_succeed() and len(client.rows("t")) == 200


def test_batch_row_failures_are_reported_per_row(client: FakeOTSClient) -> None:
    client.put_row("t", Row([("id", "b")], [("v", 0)]))
    client.put_row("t", Row([("id", "d")], [("v", 0)]))
    items = [
        PutRowItem(Row([("id", "a")], [("v", 1)]), NOT_EXIST),
        PutRowItem(Row([("id", "b")], [("v", 1)]), NOT_EXIST),  # exists: fails alone
        UpdateRowItem(Row([("id", "c")], {"put": [("v", 1)]}), EXIST),  # missing: fails alone
        DeleteRowItem(Row([("id", "d")]), _when("v", 0)),
    ]
    response = client.batch_write_row(_batch("t", items))
    assert not response.is_all_succeed()
    failed = response.get_failed_of_put() + response.get_failed_of_update()
    assert [(f.index, f.error_code) for f in failed] == [(1, "OTSConditionCheckFail"), (2, "OTSConditionCheckFail")]
    assert [s.index for s in response.get_succeed_of_delete()] == [3]
    assert set(client.rows("t")) == {("a",), ("b",)}


def test_injected_row_faults_leave_rows_unwritten(client: FakeOTSClient) -> None:
    client.fail_next_rows("OTSServerBusy")
    items = [PutRowItem(Row([("id", str(n))], [("v", n)]), IGNORE) for n in range(2)]
    response = client.batch_write_row(_batch("t", items))
    assert [(f.index, f.error_code) for f in response.get_failed_of_put()] == [(0, "OTSServerBusy")]
    assert set(client.rows("t")) == {("1",)}


def test_unmodelled_options_are_refused_not_ignored(client: FakeOTSClient) -> None:
    start, end = [("id", INF_MIN)], [("id", INF_MAX)]
    with pytest.raises(NotImplementedError):
        client.get_range("t", Direction.FORWARD, start, end, columns_to_get=["v"])
    with pytest.raises(NotImplementedError):
        client.get_row("t", [("id", "a")], max_version=2)


def test_requests_go_through_the_sdk_encoder(client: FakeOTSClient) -> None:
    # The real OTSClient serializes before sending; shapes it refuses must not slip through the fake.
    with pytest.raises(OTSClientError, match="must be tuple"):
        client.update_row("t", Row([("id", "a")], {"put": [["v", 1]]}), IGNORE)
    with pytest.raises(OTSClientError):
        client.get_range("t", "SIDEWAYS", [("id", INF_MIN)], [("id", INF_MAX)])
    assert client.rows("t") == {}


# ------------------------------------------------------------------------------- secondary indexes


def _indexed(client: FakeOTSClient) -> None:
    meta = TableMeta("jobs", [("id", "STRING")], [("state", "STRING"), ("at", "INTEGER")])
    index = SecondaryIndexMeta("jobs_by_state", ["state", "at", "id"], [])
    client.create_table(meta, TableOptions(), ReservedThroughput(CapacityUnit(0, 0)), [index])


def _index_keys(client: FakeOTSClient, state: str) -> list[str]:
    start = [("state", state), ("at", INF_MIN), ("id", INF_MIN)]
    end = [("state", state), ("at", INF_MAX), ("id", INF_MAX)]
    keys: list[str] = []
    next_start: Any = start
    while next_start:
        _, next_start, rows, _ = client.get_range("jobs_by_state", Direction.FORWARD, next_start, end)
        keys += [dict(row.primary_key)["id"] for row in rows]
        assert all(not row.attribute_columns for row in rows)  # keys only
    return keys


def test_an_index_follows_puts_updates_and_deletes_in_key_order(client: FakeOTSClient) -> None:
    _indexed(client)
    for n, state in enumerate(["open", "open", "done", "open", "open"]):
        client.put_row("jobs", Row([("id", f"j{n}")], [("state", state), ("at", 10 - n)]))
    assert _index_keys(client, "open") == ["j4", "j3", "j1", "j0"]  # by `at`, across pages of 3
    client.update_row("jobs", Row([("id", "j4")], {"put": [("state", "done")]}), EXIST)
    client.delete_row("jobs", Row([("id", "j3")]), EXIST)
    assert _index_keys(client, "open") == ["j1", "j0"] and _index_keys(client, "done") == ["j4", "j2"]
    client.put_row("jobs", Row([("id", "j9")], [("state", "open")]))  # no `at`: not indexed (sparse)
    assert _index_keys(client, "open") == ["j1", "j0"]
    assert "jobs_by_state" not in client.list_table()
    assert _code(lambda: client.put_row("jobs_by_state", Row([("state", "x"), ("at", 1), ("id", "y")], []))) == (
        "OTSParameterInvalid"
    )
    # A predefined column keeps its type.
    assert _code(lambda: client.put_row("jobs", Row([("id", "j8")], [("state", "open"), ("at", 1.5)]))) == (
        "OTSParameterInvalid"
    )


def test_index_definitions_are_checked(client: FakeOTSClient) -> None:
    meta = TableMeta("x", [("id", "STRING")], [("c", "STRING"), ("d", "DOUBLE")])
    options, throughput = TableOptions(), ReservedThroughput(CapacityUnit(0, 0))
    for index in (
        SecondaryIndexMeta("x1", ["c"], []),  # lacks the table's key
        SecondaryIndexMeta("x2", ["d", "id"], []),  # a DOUBLE cannot be a key
        SecondaryIndexMeta("x3", ["nope", "id"], []),  # not predefined
    ):
        assert _code(lambda index=index: client.create_table(meta, options, throughput, [index])) == (
            "OTSParameterInvalid"
        )


def test_batch_get_row_returns_rows_in_order_and_none_for_missing(client: FakeOTSClient) -> None:
    client.put_row("t", Row([("id", "a")], [("v", 1)]))
    request = BatchGetRowRequest()
    request.add(TableInBatchGetRowItem("t", [[("id", "b")], [("id", "a")]], max_version=1))
    [missing, found] = client.batch_get_row(request).get_result_by_table("t")
    assert missing.is_ok and missing.row is None
    assert found.is_ok and found.row.primary_key == [("id", "a")]
    too_many = BatchGetRowRequest()
    too_many.add(TableInBatchGetRowItem("t", [[("id", str(n))] for n in range(101)], max_version=1))
    assert _code(lambda: client.batch_get_row(too_many)) == "OTSParameterInvalid"


def test_requests_over_four_megabytes_are_refused(client: FakeOTSClient) -> None:
    big = "x" * (1024 * 1024 + 10)
    assert _code(lambda: client.put_row("t", Row([("id", "a")], [(f"c{n}", big) for n in range(4)]))) == (
        "OTSParameterInvalid"
    )
    request = BatchWriteRowRequest()
    request.add(
        TableInBatchWriteRowItem("t", [PutRowItem(Row([("id", str(n))], [("c", big)]), IGNORE) for n in range(4)])
    )
    assert _code(lambda: client.batch_write_row(request)) == "OTSParameterInvalid"
    client.put_row("t", Row([("id", "a")], [(f"c{n}", big) for n in range(3)]))  # 3 MB: fine
