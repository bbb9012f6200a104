"""The traps a newcomer hits with the library and match commands: help text, data directories, ids, names,
same-named files, wrong modalities, folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.library import LibraryStore
from engine.matcher import Matcher
from engine.synth import text as synth
from shared.contracts.mps import FpShotConfig


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FPSCREEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "80")  # a newcomer's terminal
    return CliRunner()


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _text_library(runner: CliRunner, *extra: str) -> str:
    return _ok(runner, *extra, "library", "create", "books", "--model", "text", "-q").strip()


@pytest.mark.parametrize("command", [[], ["library", "add"], ["match"], ["results"], ["upload"], ["up"]])
def test_help_shows_the_variable_and_default_and_no_bool_placeholders(runner: CliRunner, command: list[str]) -> None:
    out = " ".join(_ok(runner, *command, "--help").split())  # unwrap
    assert "[env FPSCREEN_DATA_DIR; default ~/.fpscreen]" in out
    assert "<bool>" not in out
    assert "--help Show this message" in out


def test_library_commands_find_the_stacks_libraries(runner: CliRunner, tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"
    (stack_dir / "engine").mkdir(parents=True)
    (stack_dir / "stack.db").touch()  # `fpscreen up` has used this directory
    lib = _text_library(runner, "--data-dir", str(stack_dir))
    assert (stack_dir / "engine" / "fpscreen.db").is_file()
    assert not (stack_dir / "fpscreen.db").exists()  # no stray database beside the stack's
    # Per-command and top-level --data-dir mean the same thing.
    assert lib in _ok(runner, "library", "list", "--data-dir", str(stack_dir))
    assert lib in _ok(runner, "--data-dir", str(stack_dir), "library", "list")


def test_ids_are_whole_at_80_columns_and_stack_items_show_object_names(runner: CliRunner, tmp_path: Path) -> None:
    lib = _text_library(runner)
    listing = _ok(runner, "library", "list")
    assert lib in listing  # not wrapped or elided

    book = tmp_path / "book.txt"
    book.write_text(synth.document(31, 2000, "en"), encoding="utf-8")
    hashed = "0f" * 16  # the stack's PrimaryKey is a hash of bucket/key
    with LibraryStore(tmp_path / "data") as store:
        Matcher(store).run_job(
            book,
            FpShotConfig(primary_key=hashed, save_type="onlysave", fp_db_id=lib),
            json.dumps({"Bucket": "media", "Location": "oss-cn-shanghai", "Object": "library/my%20book.txt"}),
        )
    wide = runner.invoke(app, ["library", "items", lib], env={"COLUMNS": "160"})
    items = wide.stdout
    assert wide.exit_code == 0 and "oss://media/library/my book.txt" in items
    assert hashed in items


def test_add_refuses_same_named_files_and_wrong_modalities(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "chapter.txt", tmp_path / "b" / "chapter.txt"
    first.write_text(synth.document(41, 1500, "en"), encoding="utf-8")
    second.write_text(synth.document(42, 1500, "en"), encoding="utf-8")
    lib = _text_library(runner)

    clash = runner.invoke(app, ["library", "add", lib, str(first), str(second)])
    assert clash.exit_code == 2
    assert "chapter.txt" in clash.output and "--key" in clash.output
    assert json.loads(_ok(runner, "library", "items", lib, "--json")) == {"FpShotFileList": {"FpShotFile": []}}

    video = _ok(runner, "library", "create", "films", "--model", "video", "-q").strip()
    wrong = runner.invoke(app, ["library", "add", video, str(first)])
    assert wrong.exit_code == 2
    assert "cannot go into a video library" in " ".join(wrong.output.split())
    assert json.loads(_ok(runner, "library", "items", video, "--json")) == {"FpShotFileList": {"FpShotFile": []}}


def test_add_a_folder_recursively_keyed_by_relative_path(runner: CliRunner, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for n, rel in enumerate(["a/chapter.txt", "b/chapter.txt", "b/deep/notes.md"]):
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(synth.document(50 + n, 1500, "en"), encoding="utf-8")
    (corpus / "cover.mp4").write_bytes(b"not text")
    (corpus / ".hidden.txt").write_text("ignored", encoding="utf-8")
    lib = _text_library(runner)

    result = runner.invoke(app, ["library", "add", lib, str(corpus)])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stderr and "cover.mp4" in result.stderr
    files = json.loads(_ok(runner, "library", "items", lib, "--json"))["FpShotFileList"]["FpShotFile"]
    assert sorted(f["PrimaryKey"] for f in files) == ["a/chapter.txt", "b/chapter.txt", "b/deep/notes.md"]

    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = runner.invoke(app, ["library", "add", lib, str(empty)])
    assert nothing.exit_code == 1 and "nothing to add" in nothing.stderr


def test_match_on_a_directory_names_the_file_argument(runner: CliRunner) -> None:
    lib = _text_library(runner)
    result = runner.invoke(app, ["match", lib, "."])
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "directory" in out and "--text-type" not in out
