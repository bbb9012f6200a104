"""Issue 10 item 12: `fpscreen verify [--repair]` finds damaged fingerprints and databases, names them and repairs
what it can; `fpscreen results` on a garbled results database says so instead of printing a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.library import DB_FILE, LibraryStore
from engine.synth import text as synth
from engine.text import TextFingerprint
from engine.verify import integrity_problem, verify_data_dir
from shared.contracts.mps import MODEL_TEXT
from shared.store.sqlite import SqliteStore

DOCS = [synth.document(seed, 3000, "en") for seed in range(60, 63)]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner()


def _stack_like(data_dir: Path) -> tuple[str, list[int]]:
    """A data directory laid out as `fpscreen up` leaves it: engine/ libraries fed from oss/ objects."""
    oss = data_dir / "oss" / "media"
    oss.mkdir(parents=True)
    ids = []
    with LibraryStore(data_dir / "engine") as store:
        lib = store.create_library("texts", MODEL_TEXT).fp_db_id
        for i, doc in enumerate(DOCS):
            (oss / f"library/doc{i}.txt").parent.mkdir(exist_ok=True)
            (oss / f"library/doc{i}.txt").write_text(doc, encoding="utf-8")
            source = json.dumps({"Bucket": "media", "Location": "oss-cn-shanghai", "Object": f"library/doc{i}.txt"})
            fp = TextFingerprint.from_text(doc)
            ids.append(store.add_item(lib, f"key{i}", {"text": fp}, input_file=source).item_id)
    return lib, ids


def _hits(data_dir: Path, lib: str, query: str) -> list[str]:
    with LibraryStore(data_dir / "engine") as store:
        return [i.primary_key for i, _ in store.search(lib, "text", TextFingerprint.from_text(query))]


def test_verify_names_damaged_blobs_and_repair_refingerprints_from_the_bucket(
    tmp_path: Path, runner: CliRunner
) -> None:
    lib, ids = _stack_like(tmp_path)
    with sqlite3.connect(tmp_path / "engine" / DB_FILE) as db:
        db.execute("UPDATE fingerprints SET data = x'deadbeef' WHERE item_id = ?", (ids[0],))
        db.execute("DELETE FROM fingerprints WHERE item_id = ?", (ids[1],))
    (tmp_path / "oss/media/library/doc1.txt").unlink()  # key1's source is gone: cannot be repaired

    checked = runner.invoke(app, ["verify", "--data-dir", str(tmp_path)])
    assert checked.exit_code == 1, checked.output
    assert "'key0'" in checked.output and "'key1'" in checked.output and "2 problem(s) remain" in checked.output
    assert _hits(tmp_path, lib, DOCS[0][300:1200]) == []  # quarantined until repaired

    repaired = runner.invoke(app, ["verify", "--repair", "--data-dir", str(tmp_path)])
    assert repaired.exit_code == 1, repaired.output  # key1 remains
    assert "fingerprinted again from" in repaired.output and "source is gone" in repaired.output
    assert _hits(tmp_path, lib, DOCS[0][300:1200]) == ["key0"]
    assert _hits(tmp_path, lib, DOCS[2][300:1200]) == ["key2"]
    report = verify_data_dir(tmp_path)
    assert [f.what for f in report.findings] == [f"library {lib} item 'key1' (#{ids[1]})"]

    with LibraryStore(tmp_path / "engine") as store:
        store.delete_items(lib, primary_keys=["key1"])
    clean = runner.invoke(app, ["verify", "--data-dir", str(tmp_path)])
    assert clean.exit_code == 0 and "no damage found" in clean.output


def test_a_garbled_results_database_is_reported_then_rebuilt(tmp_path: Path, runner: CliRunner) -> None:
    results = tmp_path / "results.db"
    results.write_bytes(b"this is not SQLite at all " * 400)
    shown = runner.invoke(app, ["--data-dir", str(tmp_path), "results"])
    assert shown.exit_code == 1
    assert "damaged" in shown.output and "fpscreen verify --repair" in shown.output
    assert "Traceback" not in shown.output

    repaired = runner.invoke(app, ["verify", "--repair", "--data-dir", str(tmp_path)])
    assert repaired.exit_code == 0, repaired.output
    assert "moved aside" in repaired.output
    assert list(tmp_path.glob("results.db.damaged-*"))
    shown = runner.invoke(app, ["--data-dir", str(tmp_path), "results", "--json"])
    assert "no results yet" in shown.output  # the next `fpscreen up` makes a new, empty one
    SqliteStore(results).close()
    assert verify_data_dir(tmp_path).findings == []


def test_a_database_with_damaged_pages_is_salvaged(tmp_path: Path) -> None:
    path = tmp_path / "service.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("CREATE INDEX jobs_body ON jobs (body)")
        db.executemany("INSERT INTO jobs (body) VALUES (?)", [(f"job {i} " * 20,) for i in range(2000)])
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs_body'").fetchone()[0]
        page = db.execute("PRAGMA page_size").fetchone()[0]
    raw = bytearray(path.read_bytes())
    start = (root - 1) * page  # the index's root page: the rows themselves stay readable
    raw[start + 200 : start + page] = b"\xff" * (page - 200)
    path.write_bytes(bytes(raw))
    assert integrity_problem(path) is not None

    report = verify_data_dir(tmp_path, repair=True)
    [finding] = report.findings
    assert finding.what == str(path) and finding.repaired is not None
    assert integrity_problem(path) is None
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2000  # only the index was damaged


def test_a_sound_results_database_passes(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "results.db").close()
    assert verify_data_dir(tmp_path).findings == []
