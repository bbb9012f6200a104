"""The `fpscreen` CLI through typer's CliRunner: library lifecycle and matching a text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.synth import text as synth

BOOK = synth.document(21, 4000, "zh")
OTHER = synth.document(22, 3000, "en")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FPSCREEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")  # wide tables: nothing we assert on gets elided
    return CliRunner()


def _ok(runner: CliRunner, *args: str) -> str:
    return _status(runner, 0, *args)


def _status(runner: CliRunner, status: int, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == status, result.output
    return result.stdout


def test_library_lifecycle_and_match(runner: CliRunner, tmp_path: Path) -> None:
    book, other = tmp_path / "book.txt", tmp_path / "other.txt"
    book.write_text(BOOK, encoding="utf-8")
    other.write_text(OTHER, encoding="utf-8")
    query = tmp_path / "query.txt"
    query.write_text(synth.embed(synth.char_edits(BOOK[1000:1400], 0.05, 4), synth.document(23, 800, "zh"), 4)[1])

    lib = _ok(runner, "library", "create", "books", "--model", "text", "-q").strip()
    assert len(lib) == 32
    added = _ok(runner, "library", "add", lib, str(book), str(other))
    assert "book.txt" in added and "stored" in added
    _ok(runner, "library", "add", lib, str(book), "--key", "the-book")

    listing = _ok(runner, "library", "list")
    assert lib in listing and "books" in listing and "text" in listing
    items = _ok(runner, "library", "items", lib)
    assert "book.txt" in items and "other.txt" in items and "the-book" in items
    files = json.loads(_ok(runner, "library", "items", lib, "--json"))["FpShotFileList"]["FpShotFile"]
    assert [f["PrimaryKey"] for f in files] == ["book.txt", "other.txt", "the-book"]
    assert files[0]["InputFile"] == str(book.resolve())

    wire = json.loads(_ok(runner, "match", lib, str(query), "--json"))
    shots = wire["TextFpShots"]["TextFpShot"]
    assert sorted(s["PrimaryKey"] for s in shots) == ["book.txt", "the-book"]
    piece = shots[0]["TextFpShotSlices"]["TextFpShotSlice"][0]
    assert BOOK[1010:1390] in piece["DuplicationText"]
    assert float(piece["Similarity"]) > 0.85
    assert 0.85 < float(shots[0]["Similarity"]) <= 1.0

    table = _ok(runner, "match", lib, str(query))
    assert "2 matching item(s)" in table and "book.txt" in table
    # `match` exits 0 on a match, 1 on none (as grep), 2 on an error.
    assert json.loads(_status(runner, 1, "match", lib, str(query), "--json", "--threshold", "0.999")) == {
        "TextFpShots": {"TextFpShot": []}
    }
    assert "0 matching item(s)" in _status(runner, 1, "match", lib, str(query), "--threshold", "0.999")
    assert _status(runner, 2, "match", "0" * 32, str(query)) == ""

    assert "Removed 1" in _ok(runner, "library", "remove", lib, "the-book")
    wire = json.loads(_ok(runner, "match", lib, str(query), "--json"))
    assert [s["PrimaryKey"] for s in wire["TextFpShots"]["TextFpShot"]] == ["book.txt"]

    assert "Purged" in _ok(runner, "library", "delete", lib, "--purge")
    assert json.loads(_status(runner, 1, "match", lib, str(query), "--json")) == {"TextFpShots": {"TextFpShot": []}}
    _ok(runner, "library", "delete", lib)
    assert json.loads(_ok(runner, "library", "list", "--json")) == {"FpShotDBList": {"FpShotDB": []}}


def test_data_dir_option_beats_the_environment(runner: CliRunner, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    lib = _ok(runner, "--data-dir", str(elsewhere), "library", "create", "v", "--model", "video", "-q").strip()
    assert (elsewhere / "fpscreen.db").is_file()
    assert lib in _ok(runner, "library", "list", "--data-dir", str(elsewhere))
    assert lib not in _ok(runner, "library", "list")  # the environment's directory
    created = json.loads(_ok(runner, "--data-dir", str(elsewhere), "library", "create", "a", "-m", "13", "--json"))
    assert created["ModelId"] == 13 and created["Status"] == "active"


def test_errors_exit_non_zero_with_a_message(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["match", "0" * 32, str(tmp_path / "nothing.txt")])
    assert missing.exit_code == 2  # match: 2 is an error, 1 means "no match"
    assert "InvalidParameter.DBNotExist" in missing.output

    bad_model = runner.invoke(app, ["library", "create", "x", "--model", "image"])
    assert bad_model.exit_code == 1 and "unknown library kind" in bad_model.output

    lib = _ok(runner, "library", "create", "t", "--model", "text", "-q").strip()
    two_keys = runner.invoke(app, ["library", "add", lib, "a.txt", "b.txt", "--key", "k"])
    assert two_keys.exit_code == 2

    broken = tmp_path / "broken.txt"
    broken.write_bytes("今天下雪了".encode("gbk"))
    good = tmp_path / "good.txt"
    good.write_text(OTHER, encoding="utf-8")
    partial = runner.invoke(app, ["library", "add", lib, str(broken), str(good)])
    assert partial.exit_code == 1 and "not UTF-8" in partial.output
    assert "good.txt" in _ok(runner, "library", "items", lib)

    gone = runner.invoke(app, ["library", "remove", lib, "nope"])
    assert gone.exit_code == 1 and "nope" in gone.output


def test_help_lists_the_sub_commands(runner: CliRunner) -> None:
    out = _ok(runner, "--help")
    assert "library" in out and "match" in out
    assert "create" in _ok(runner, "library", "--help")
