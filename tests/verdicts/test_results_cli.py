"""`fpscreen results`: verdict, rule, evidence, times and versions; names printed as text (never Rich markup);
nothing cut without saying how much ("+N more")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from shared.services.job_rows import job_record, match_rows
from shared.store.sqlite import SqliteStore
from shared.verdicts.service import VerdictService

from .media import job, media_shot

MARKUP_NAME = "uploads/[draft] clip [red]x.mp4"
CRASHING_NAME = "uploads/x[/x]y.mp4"  # as Rich markup this raises MarkupError


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FPSCREEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "240")
    store = SqliteStore(tmp_path / "data" / "results.db")
    many = [media_shot(f"item-{n}", 0.9, *[(s * 10.0, 5.0, s * 10.0, 0.9) for s in range(6)]) for n in range(7)]
    uploads = [
        (job(duration=60, job_id="job-old", key=MARKUP_NAME, video=[media_shot("film", 0.9, (0, 5, 0, 0.9))]), 100.0),
        (job(duration=60, job_id="job-new", key=MARKUP_NAME, video=[media_shot("film", 1, (0, 50, 0, 1))]), 200.0),
        (job(duration=120, job_id="job-many", key=CRASHING_NAME, video=many), 300.0),
    ]
    service = VerdictService(store, [])
    for fp_job, at in uploads:
        store.save_job(job_record(fp_job, now=at))
        store.replace_matches(fp_job.id, match_rows(fp_job))
        service.evaluate(fp_job.id)
    store.close()
    return CliRunner()


def test_names_are_text_and_the_verdict_and_evidence_are_shown(runner: CliRunner) -> None:
    result = runner.invoke(app, ["results"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert MARKUP_NAME in out and CRASHING_NAME in out
    assert "block" in out and "rule full-copy" in out and "review" in out
    assert "50.0 s · 83% of upload" in out  # job-new: 50 of 60 s
    assert "superseded by job-new" in out and "current" in out
    assert "submitted 1970-01-01 00:05:00 UTC" in out


def test_nothing_is_cut_silently(runner: CliRunner) -> None:
    out = runner.invoke(app, ["results"]).stdout
    assert "+2 more items (--all or --json)" in out  # 7 items, 5 shown
    assert out.count("+2 more slices (--all or --json)") == 5  # 6 slices each, 4 shown
    everything = runner.invoke(app, ["results", "--all"]).stdout
    assert "more item" not in everything and "item-6" in everything


def test_json_carries_the_verdict_and_the_evidence(runner: CliRunner) -> None:
    rows = {r["job_id"]: r for r in json.loads(runner.invoke(app, ["results", "--json"]).stdout)}
    new, old = rows["job-new"], rows["job-old"]
    assert (new["policy_verdict"], new["rule"], new["version"]) == ("block", "full-copy", "current")
    assert old["version"] == "superseded by job-new" and old["policy_verdict"] == "review"  # 5 s: a partial match
    assert new["matches"][0]["evidence"]["upload_share"] == pytest.approx(50 / 60, abs=1e-4)
    assert len(rows["job-many"]["matches"]) == 7


def test_reevaluate_under_a_changed_policy(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    strict = [{"name": "strict", "rules": [{"name": "any-second", "verdict": "block", "min_seconds": 1}]}]
    monkeypatch.setenv("FPSCREEN_POLICIES", json.dumps(strict))
    result = runner.invoke(app, ["reevaluate"])
    assert result.exit_code == 0, result.output
    assert f"{MARKUP_NAME}  review → block  (any-second)" in result.stdout  # the old job's 5 s now blocks
    assert "re-evaluated 3 upload(s); 2 verdict(s) changed" in result.stdout
    rows = {r["job_id"]: r for r in json.loads(runner.invoke(app, ["results", "--json"]).stdout)}
    assert rows["job-old"]["policy"].startswith("strict ") and rows["job-old"]["rule"] == "any-second"
