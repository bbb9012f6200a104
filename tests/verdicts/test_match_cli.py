"""`fpscreen match`: exit 0 on a match, 1 on none, 2 on an error; file and item names are text, never markup."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.synth import text as synth

BOOK = synth.document(31, 3000, "en")


def test_exit_statuses_and_names_with_brackets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FPSCREEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    book = tmp_path / "book [red]x.txt"
    book.write_text(BOOK, encoding="utf-8")
    quote = tmp_path / "quote [bold]q.txt"
    quote.write_text(BOOK[500:1500], encoding="utf-8")
    unrelated = tmp_path / "own.txt"
    unrelated.write_text(synth.document(32, 1500, "en"), encoding="utf-8")

    lib = runner.invoke(app, ["library", "create", "books", "--model", "text", "-q"]).stdout.strip()
    # A PrimaryKey that, as Rich markup, would raise MarkupError.
    assert runner.invoke(app, ["library", "add", lib, str(book), "--key", "novel[/x]ch1"]).exit_code == 0

    found = runner.invoke(app, ["match", lib, str(quote)])
    assert found.exit_code == 0, found.output
    assert "quote [bold]q.txt against books" in found.stdout and "novel[/x]ch1" in found.stdout
    nothing = runner.invoke(app, ["match", lib, str(unrelated)])
    assert nothing.exit_code == 1 and "0 matching item(s)" in nothing.stdout
    failed = runner.invoke(app, ["match", "f" * 32, str(quote)])
    assert failed.exit_code == 2 and "DBNotExist" in failed.output
