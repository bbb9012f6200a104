"""Issue 10 item 7: the bench's memory section runs (quick profile) and reports peak memory per input."""

from __future__ import annotations

from pathlib import Path

from engine.benchmarks import QUICK
from engine.benchmarks.media import MediaCache
from engine.benchmarks.memory import run
from engine.benchmarks.report import sections


def test_memory_section_measures_each_input_in_a_subprocess(tmp_path: Path) -> None:
    results = run(QUICK, MediaCache(tmp_path), progress=lambda _: None)
    rows = results["rows"]
    audio = [r for r in rows if r["input"].startswith("audio")]
    assert [r["limits"] for r in audio] == ["default limits"]  # the full profile adds "no duration limit"
    for row in audio:
        assert row["code"] is None and row["durations"]["audio"] == 180.0
        assert 0 < row["base_mb"] <= row["peak_mb"] < 1000
    text = [r for r in rows if r["input"].startswith("text")]
    assert text and all(r["code"] is None and r["peak_mb"] > 0 for r in text)
    [section] = [s for s in sections({"memory": results}) if s.title.startswith("Peak memory")]
    assert len(section.rows) == len(rows)
