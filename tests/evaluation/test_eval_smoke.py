"""`scripts/eval --quick` end to end: the tool runs from the documented command and writes the JSON schema.

Asserts that it works and what it emits, not how accurate or fast the engine is (that is what the tool reports).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODALITIES = ("video", "audio", "text")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    tmp = tmp_path_factory.mktemp("eval")
    out = tmp / "eval.json"
    command = [sys.executable, "scripts/eval", "--quick", "--seed", "3", "--cache-dir", str(tmp / "cache")]
    done = subprocess.run([*command, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads(out.read_text(encoding="utf-8"))


def test_quick_run_prints_a_table_per_modality(quick_run: tuple[subprocess.CompletedProcess, dict]) -> None:
    done, document = quick_run
    for modality in MODALITIES:
        assert f"### {modality}:" in done.stdout
    assert "| **all copies** |" in done.stdout
    assert (Path(document["meta"]["command"].split()[1])).name == "eval"


def test_quick_run_emits_the_json_schema(quick_run: tuple[subprocess.CompletedProcess, dict]) -> None:
    _, document = quick_run
    assert document["schema"] == "fpscreen-eval/1"
    assert set(document) >= {"meta", "peers", "corpus", "targets", "results", "queries", "notes"}
    assert document["meta"]["profile"] == "quick" and document["meta"]["seed"] == 3
    for peer in ("vpdq", "chromaprint"):
        assert isinstance(document["peers"][peer]["installed"], bool)
    for modality in MODALITIES:
        res = document["results"][modality]
        assert res["systems"][0] == "fpscreen"
        if modality == "video" and document["peers"]["vpdq"]["installed"]:
            assert {"vpdq", "vpdq-query80"} <= set(res["systems"])
        if modality == "audio" and document["peers"]["chromaprint"]["installed"]:
            assert "chromaprint" in res["systems"]
        counts = document["corpus"][modality]
        assert counts["queries"] == sum(row["n"] for row in res["rows"])
        for row in res["rows"]:
            for system, s in row["systems"].items():
                assert 0 <= s["found"] <= s["positives"] == row["n"]
                assert s["recall"] == s["found"] / s["positives"]
                if res["localises"][system]:
                    assert 0.0 <= s["vcsl"]["f1"] <= 1.0
                else:
                    assert s["vcsl"] is None
        assert res["negatives"]["fpscreen"]["negatives"] == counts["negatives"]
    queries = document["queries"]
    assert len(queries) == sum(c["queries"] + c["negatives"] for c in document["corpus"].values())
    for q in queries:
        assert (q["ref"] is None) == (q["transform"] == "negative") == (q["truth"] == [])
        assert "fpscreen" in q["systems"]
