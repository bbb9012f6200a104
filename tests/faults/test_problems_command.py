"""`fpscreen problems` (and the foot of `fpscreen results`) show every parked message, dead letter and
unsettled failed-job report with its reason: nothing the fault suite sets aside is left unexplained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.localstack.stack import StackPaths
from engine.localstack.state import Enqueue, StackState
from shared.ports import FailedJob, JobRecord, ParkedMessage
from shared.store.sqlite import SqliteStore


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackPaths:
    monkeypatch.setenv("FPSCREEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    paths = StackPaths.under(tmp_path / "data")
    paths.data_dir.mkdir(parents=True)
    store = SqliteStore(paths.results)
    store.park_message(ParkedMessage("m-1", "mns:fpscreen-mps-notify", "invalid FpShot notification: JobId", "{}"))
    store.save_job(JobRecord("j-1", "Fail", object_key="uploads/broken.mp4", save_type="nosave"))
    store.add_failed(FailedJob("j-1", code="InvalidInput"))
    store.record_failed_attempt("j-1", "outcome unknown: reporter run r-1 stopped mid-report; not resent")
    store.mark_failed_reported("j-1", now=1.0)
    state = StackState(paths.state)
    dead = state.enqueue(Enqueue("submit_on_upload", b"{}"))
    state.bury(dead, "MpsError: InternalError: boom")
    state.close()
    store.close()
    return paths


def test_problems_lists_each_item_with_its_reason(data: StackPaths) -> None:
    result = CliRunner().invoke(app, ["problems", "--json"])
    assert result.exit_code == 0, result.output
    found = {(p["kind"], p["item"]): p for p in json.loads(result.stdout)}
    assert found[("parked", "m-1")]["reason"] == "invalid FpShot notification: JobId"
    assert found[("report", "j-1")]["reason"].startswith("closed: outcome unknown")
    assert found[("report", "j-1")]["source"] == "uploads/broken.mp4"
    [letter] = [p for (kind, _), p in found.items() if kind == "dead letter"]
    assert letter["source"] == "submit_on_upload" and "InternalError" in letter["reason"]


def test_results_shows_them_below_the_results(data: StackPaths) -> None:
    result = CliRunner().invoke(app, ["results"])
    assert result.exit_code == 0, result.output
    assert "invalid FpShot notification" in result.stdout and "InternalError" in result.stdout
