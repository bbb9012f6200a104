"""`fpscreen upload` / `fpscreen up` traps: bad keys, uploads the pipeline skips, folders, a second stack, and the
live progress `up` shows."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.progress import UploadProgress
from engine.localstack.results import screening_results
from engine.localstack.skipped import skipped_uploads
from engine.localstack.stack import LocalStack, StackPaths, StackSettings
from engine.synth import text as synth


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("FPSCREEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)  # never decoded: no stack runs here
    return path


@pytest.mark.parametrize("key", ["../escape.mp4", "/uploads/clip.mp4", "uploads/../../x.mp4"])
def test_a_bad_key_is_one_line_and_non_zero(runner: CliRunner, clip: Path, key: str) -> None:
    result = runner.invoke(app, ["upload", str(clip), "--key", key])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "uploads/clip.mp4" in result.stderr


def test_unscreened_uploads_are_reported_and_recorded_as_skipped(runner: CliRunner, clip: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for name in ("anim.gif", "photo.webp", "contract.docx"):
        (tmp_path / name).write_bytes(b"x" * 32)
        out = runner.invoke(app, ["upload", str(tmp_path / name)])
        assert out.exit_code == 0, out.output
        assert f"uploads/{name}" in out.stdout and "skipped" in out.stdout and "no route for" in out.stdout
    elsewhere = runner.invoke(app, ["upload", str(clip), "--key", "misc/clip.mp4", "--data-dir", str(data)])
    assert "skipped" in elsewhere.stdout and "no OSS trigger" in elsewhere.stdout
    queued = runner.invoke(app, ["upload", str(clip)])
    assert queued.exit_code == 0 and "uploads/clip.mp4" in queued.stdout and "queued" in queued.stdout

    recorded = {s.key: s.reason for s in skipped_uploads(StackPaths.under(data).state)}
    assert set(recorded) == {"uploads/anim.gif", "uploads/photo.webp", "uploads/contract.docx", "misc/clip.mp4"}
    assert ".gif" in recorded["uploads/anim.gif"] and "uploads/" in recorded["misc/clip.mp4"]


def test_upload_a_folder_recursively(runner: CliRunner, clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    (folder / "day1").mkdir(parents=True)
    (folder / "day1" / "a.mp4").write_bytes(clip.read_bytes())
    (folder / "b.mp4").write_bytes(clip.read_bytes() + b"1")
    (folder / ".DS_Store").write_bytes(b"junk")
    result = runner.invoke(app, ["upload", str(folder), "--prefix", "uploads/batch/"])
    assert result.exit_code == 0, result.output
    assert "uploads/batch/day1/a.mp4" in result.stdout and "uploads/batch/b.mp4" in result.stdout
    assert ".DS_Store" not in result.stdout and "2 file(s)" in result.stdout
    bucket = tmp_path / "data" / "oss" / "media" / "uploads" / "batch"
    assert (bucket / "day1" / "a.mp4").is_file() and (bucket / "b.mp4").is_file()


def test_a_second_up_on_the_same_directory_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with (data / "stack.lock").open("a+") as held:  # what a running `fpscreen up` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        result = runner.invoke(app, ["up", "--data-dir", str(data)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "already running" in lines[0] and "4242" in lines[0]


def _final(stack: LocalStack, key: str) -> bool:
    return any(r.upload == key and r.verdict == "stored" for r in screening_results(stack.results_store()))


def test_progress_follows_each_upload_to_its_result(tmp_path: Path) -> None:
    paths = StackPaths.under(tmp_path / "stack")
    book = tmp_path / "book.txt"
    book.write_text(synth.document(61, 3000, "en"), encoding="utf-8")
    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 32)
    settings = StackSettings(paths, retry=RetrySchedule(base=0.2, cap=2.0), mns_retry_scale=0.01)
    with LocalStack(settings) as stack:
        progress = UploadProgress(paths, "media")
        assert progress.poll() == ([], [])
        stack.upload(book, "library/book.txt")
        # Finished between two polls (a fast job): still reported, as this version's result.
        assert stack.wait(lambda: _final(stack, "library/book.txt"), timeout=120)
        lines, _ = progress.poll()
        stack.upload(gif, "uploads/anim.gif")
        live_seen: list[str] = []

        def finished() -> bool:
            done, live = progress.poll()
            lines.extend(done)
            live_seen.extend(live)
            return len(lines) == 2

        assert stack.wait(finished, timeout=120), (lines, live_seen)
    by_key = {line.split(": ", 1)[0]: line for line in lines}
    assert "received → [yellow]skipped[/]" in by_key["uploads/anim.gif"]
    assert "received → submitted (" in by_key["library/book.txt"] and "stored" in by_key["library/book.txt"]
    # Nothing is reported twice, and a fresh watcher does not repeat what already finished.
    assert progress.poll() == ([], [])
    assert UploadProgress(paths, "media").poll() == ([], [])
