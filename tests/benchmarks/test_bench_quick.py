"""`scripts/bench --quick` runs end to end and emits every figure's key. Timings are never asserted here: the
machine is shared, and the figures are the full run's business."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_completes_and_emits_its_keys(tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "bench"),
            "--quick",
            "--media-dir",
            str(tmp_path / "media"),
            "--out",
            str(out),
            "--markdown",
            str(md),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    results = json.loads(out.read_text())

    assert results["errors"] == {}
    assert {"command", "profile", "machine", "total_s", "media_s", "section_s"} <= results["meta"].keys()
    assert {"cpu", "nproc", "date_utc"} <= results["meta"]["machine"].keys()

    modalities = results["modalities"]
    for row in modalities["video"]:
        assert {
            "label",
            "decode_s",
            "decode_threaded_s",
            "fingerprint_s",
            "ref_decode_s",
            "ratio",
            "x_realtime",
        } <= row.keys()
    assert modalities["audio"] and {"format", "x_realtime"} <= modalities["audio"][0].keys()
    assert {r["lang"] for r in modalities["text"]} == {"en", "zh"} and "mb_per_s" in modalities["text"][0]

    for name in ("video", "audio"):
        rows = results["scale"][name]["rows"]
        assert len(rows) == 2
        for row in rows:
            assert {"hours", "items", "memory_mib", "p50_ms", "p95_ms", "copies_found"} <= row.keys()
        assert "growth" in results["scale"][name]
    for row in results["scale"]["video"]["rows"] + results["scale"]["audio"]["rows"]:  # persisted, mapped, cold
        assert {"disk_mib", "heap_mib", "load_s", "cold_start_s", "cold_load_s", "cold_search_s"} <= row.keys()
        assert row["cold_found_copy"] is True and row["disk_mib"] > 0

    peers = results["peers"]
    assert {"installed", "detail", "rows"} <= peers.keys()
    if peers["installed"]:
        assert {"ours_s", "vpdq_s", "ratio"} <= peers["rows"][0].keys()

    pipeline = results["pipeline"]
    assert {"latency_s", "to_submit_s", "verdicts"} <= pipeline["latency"].keys()
    for burst in (pipeline["burst"], pipeline["burst_lifted"]):
        assert {"jobs_per_minute", "engine_duplicates", "result_duplicates", "lost", "stored"} <= burst.keys()

    assert {t["target"] for t in results["targets"]} >= {
        "burst (as deployed): no duplicate, no loss",
        "run time (quick)",
    }
    assert "Video fingerprinting vs PyAV full decode" in md.read_text()


def test_peers_without_vpdq_say_so_and_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.benchmarks import QUICK, peers
    from engine.benchmarks.media import MediaCache

    monkeypatch.setitem(sys.modules, "vpdq", None)  # makes `import vpdq` fail as if it were not installed
    said: list[str] = []
    result = peers.run(QUICK, MediaCache(tmp_path), said.append)
    assert result["installed"] is False and result["rows"] == []
    assert "vpdq: not installed (run scripts/install_peers.sh)" in said[0]
