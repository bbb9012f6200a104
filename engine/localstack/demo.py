"""`fpscreen demo`: the product end to end on this machine, in under a minute.

It generates a small library of protected works — videos with soundtracks and a text — and a batch of uploads:
copies that went through what infringers do (low-bitrate re-encode and rescale, mirror + brightness, a clip
hidden inside an unrelated video, a noisy MP3 ripped from a soundtrack, a passage retyped with typos inside
another text), an original video, an unrelated text and a corrupt file. It pushes them through the full local
stack (bucket → OSS trigger → submit → engine → MNS → store-results → SQLite; timer → report-failed), prints what
was found and checks it: the right item, the right kinds of slices, and their boundaries.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.results import AlignedSlice, ScreeningResult, screening_results
from engine.localstack.stack import LocalStack, StackPaths, StackSettings
from engine.synth import av
from engine.synth import text as synth_text
from engine.synth import video as synth

CLIP = {"size": (320, 240), "fps": 15.0}
# Soundtracks at 16 kHz: the engine analyses audio at 8 kHz, and generating music is the slow part of the media.
SOUND = {"sr": 16000}
TOLERANCE = {"video": 1.5, "audio": 1.0, "text": 30.0}  # seconds; characters for plain text

Make = Callable[[Path, dict[str, Path]], Path]


@dataclass(frozen=True)
class Expected:
    """A slice the upload must have: `kind`, where in the upload it sits and which part of the library item it
    copies (seconds; characters for plain text)."""

    kind: str  # video | audio | text
    upload: tuple[float, float]
    library: tuple[float, float]


@dataclass(frozen=True)
class DemoUpload:
    key: str
    make: Make
    expect: str  # verdict: copy | clean | failed
    expect_item: str = ""  # library key it copies (and no other)
    slices: tuple[Expected, ...] = ()


# Video seeds whose pictures the video engine tells apart: seeds 12 and 13 give a spurious 0.55 slice (3 s of
# 13 ↔ 0.5 s of 12), which made the library check depend on which of the two the engine happened to store first.
LIBRARY = {
    "library/feature-film.mp4": 11,
    "library/music-video.mp4": 12,
    "library/documentary.mp4": 14,
}
LIBRARY_TEXT_KEY = "library/novel-chapter.txt"
LIBRARY_TEXT = synth_text.document(21, 4000)  # deterministic: the expectations below are computed from it
LIBRARY_TEXTS = {LIBRARY_TEXT_KEY: LIBRARY_TEXT}
PASSAGE_START, PASSAGE = synth_text.excerpt(LIBRARY_TEXT, 900, seed=5)
RETYPED = synth_text.char_edits(PASSAGE, 0.03, seed=6)  # retyped by hand: about one typo in 30 characters
ESSAY_OFFSET, ESSAY = synth_text.embed(RETYPED, synth_text.document(22, 2500), seed=7)
UNRELATED_TEXT = synth_text.document(23, 3000)


def _transformed(
    name: str, source_key: str, ops: list[synth.Op], audio_ops: Sequence[av.AudioOp] = (), **kw: float
) -> Make:
    def make(workdir: Path, library: dict[str, Path]) -> Path:
        return av.transform_av(library[source_key], workdir / name, ops, audio_ops, **SOUND, **kw)  # type: ignore[arg-type]

    return make


def _ripped_soundtrack(workdir: Path, library: dict[str, Path]) -> Path:
    # 12 s of the music video's soundtrack, re-recorded with noise (15 dB SNR) into a 64 kb/s MP3.
    source = library["library/music-video.mp4"]
    return av.soundtrack_excerpt(source, workdir / "ripped.mp3", 7.0, 19.0, [av.Noise(15.0, seed=5)], bitrate=64_000)


def _original(workdir: Path, _: dict[str, Path]) -> Path:
    return av.make_av(workdir / "holiday.mp4", seed=77, seconds=15.0, **CLIP, **SOUND)  # type: ignore[arg-type]


def _text_file(name: str, content: str) -> Make:
    def make(workdir: Path, _: dict[str, Path]) -> Path:
        path = workdir / name
        path.write_text(content, encoding="utf-8")
        return path

    return make


def _corrupt(workdir: Path, _: dict[str, Path]) -> Path:
    path = workdir / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))  # an MP4 header, then garbage
    return path


UPLOADS = [
    DemoUpload(
        "uploads/reupload-lowbitrate.mp4",
        _transformed(
            "reupload.mp4",
            "library/feature-film.mp4",
            [synth.Scale(240, 180), synth.Reencode(60_000)],
            start=5.0,
            seconds=12.0,
            audio_bitrate=48_000,
        ),
        "copy",
        "library/feature-film.mp4",
        (Expected("video", (0.0, 12.0), (5.0, 17.0)), Expected("audio", (0.0, 12.0), (5.0, 17.0))),
    ),
    DemoUpload(
        "uploads/mirrored-brighter.mkv",
        _transformed(
            "mirrored.mkv",
            "library/music-video.mp4",
            [synth.HFlip(), synth.Brightness(35.0)],
            [av.Gain(-6.0)],
            start=10.0,
            seconds=12.0,
        ),
        "copy",
        "library/music-video.mp4",
        (Expected("video", (0.0, 12.0), (10.0, 22.0)), Expected("audio", (0.0, 12.0), (10.0, 22.0))),
    ),
    DemoUpload(
        "uploads/vlog-with-embedded-clip.mp4",
        _transformed(
            "vlog.mp4",
            "library/documentary.mp4",
            [synth.Embed(seed=99, before=6.0, after=6.0)],
            [av.EmbedAudio(seed=99, before=6.0, after=6.0)],
            start=8.0,
            seconds=12.0,
        ),
        "copy",
        "library/documentary.mp4",
        (Expected("video", (6.0, 18.0), (8.0, 20.0)), Expected("audio", (6.0, 18.0), (8.0, 20.0))),
    ),
    DemoUpload(
        "uploads/ripped-soundtrack.mp3",
        _ripped_soundtrack,
        "copy",
        "library/music-video.mp4",
        (Expected("audio", (0.0, 12.0), (7.0, 19.0)),),
    ),
    DemoUpload(
        "uploads/essay-quoting-the-novel.txt",
        _text_file("essay.txt", ESSAY),
        "copy",
        LIBRARY_TEXT_KEY,
        (
            Expected(
                "text",
                (ESSAY_OFFSET, ESSAY_OFFSET + len(RETYPED)),
                (PASSAGE_START, PASSAGE_START + len(PASSAGE)),
            ),
        ),
    ),
    DemoUpload("uploads/original-holiday.mp4", _original, "clean"),
    DemoUpload("uploads/unrelated-notes.txt", _text_file("notes.txt", UNRELATED_TEXT), "clean"),
    DemoUpload("uploads/broken.mp4", _corrupt, "failed"),
]


@dataclass
class DemoReport:
    results: list[ScreeningResult]
    problems: list[str] = field(default_factory=list)
    reported_failures: int = 0
    seconds: float = 0.0


def _final(stack: LocalStack, keys: list[str]) -> bool:
    rows = {r.upload: r for r in screening_results(stack.results_store(), limit=1000)}
    return all(key in rows and rows[key].verdict not in ("pending",) for key in keys)


def _library_range(s: AlignedSlice, item: str) -> tuple[float, float] | None:
    """The library side of a slice. MPS gives a text slice's library side as text only: find it in the document."""
    if s.kind != "text" or s.library_end > s.library_start:
        return s.library_start, s.library_end
    at = LIBRARY_TEXTS.get(item, "").find(s.library_text) if s.library_text else -1
    return (float(at), float(at + len(s.library_text))) if at >= 0 else None


def _check_slice(key: str, item: str, want: Expected, found: list[AlignedSlice]) -> list[str]:
    of_kind = [s for s in found if s.kind == want.kind]
    if not of_kind:
        return [f"{key}: no {want.kind} slice (got {sorted({s.kind for s in found})})"]
    s = max(of_kind, key=lambda x: x.input_end - x.input_start)
    library = _library_range(s, item)
    if library is None:
        return [f"{key}: the {want.kind} slice's library text is not in {item}"]
    off = max(
        abs(s.input_start - want.upload[0]), abs(s.input_end - want.upload[1]),
        abs(library[0] - want.library[0]), abs(library[1] - want.library[1]),
    )  # fmt: skip
    unit = "chars" if s.unit == "chars" else "s"
    if off > TOLERANCE[want.kind]:
        return [f"{key}: {want.kind} slice boundaries off by {off:.1f} {unit}"]
    return []


def _check(upload: DemoUpload, result: ScreeningResult | None) -> list[str]:
    if result is None:
        return [f"{upload.key}: no result stored"]
    if result.verdict != upload.expect:
        return [f"{upload.key}: expected {upload.expect}, got {result.verdict} {result.code}".rstrip()]
    if upload.expect != "copy":
        return []
    items = [m.library_object or m.primary_key for m in result.matches]
    if items != [upload.expect_item]:
        return [f"{upload.key}: expected a copy of {upload.expect_item} only, got {items}"]
    found = result.matches[0].slices
    return [p for want in upload.slices for p in _check_slice(upload.key, upload.expect_item, want, found)]


def run_demo(
    data_dir: Path | None = None, *, keep: bool = False, progress: Callable[[str], None] = print
) -> DemoReport:
    started = time.monotonic()
    owned = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="fpscreen-demo-")) if data_dir is None else Path(data_dir)
    workdir = root / "media-src"
    workdir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(
        StackSettings(
            StackPaths.under(root),
            retry=RetrySchedule(base=0.5, cap=5.0),
            mns_retry_scale=0.05,
            log_file=True,
        )
    )
    try:
        progress("generating media …")
        library = {
            key: av.make_av(workdir / Path(key).name, seed=seed, seconds=30.0, **CLIP, **SOUND)  # type: ignore[arg-type]
            for key, seed in LIBRARY.items()
        }
        for key, content in LIBRARY_TEXTS.items():
            library[key] = workdir / Path(key).name
            library[key].write_text(content, encoding="utf-8")
        uploads = {upload.key: upload.make(workdir, library) for upload in UPLOADS}
        progress("starting the local stack (MNS, engine, functions) …")
        stack.start()
        progress(f"  engine {stack.engine.url} · MNS {stack.mns.endpoint} · bucket {stack.bucket_dir.root}")
        progress(f"uploading {len(LIBRARY)} videos with soundtracks and {len(LIBRARY_TEXTS)} text to library/ …")
        for key, path in library.items():
            stack.upload(path, key)
        if not stack.wait(lambda: _final(stack, list(library)), timeout=240):
            raise TimeoutError("library items were not fingerprinted in time")
        progress(f"uploading {len(uploads)} files to uploads/ for screening …")
        for key, path in uploads.items():
            stack.upload(path, key)
        if not stack.wait(lambda: _final(stack, list(uploads)), timeout=240):
            raise TimeoutError("uploads were not screened in time")
        progress("timer tick: report failed jobs …")
        stack.tick_timers()
        store = stack.results_store()
        results = screening_results(store, limit=1000)
        by_key = {r.upload: r for r in results}
        report = DemoReport(results)
        for upload in UPLOADS:
            report.problems += _check(upload, by_key.get(upload.key))
        for key in [*LIBRARY, *LIBRARY_TEXTS]:  # different works: none may be flagged as a copy of another
            stored = by_key.get(key)
            if stored is None or stored.verdict != "stored":
                report.problems.append(f"{key}: expected stored, got {stored.verdict if stored else 'nothing'}")
        for r in results:
            failed = store.get_failed(r.job_id) if r.verdict == "failed" else None
            if failed is not None and failed.reported_at is not None:
                report.reported_failures += 1
        if report.reported_failures != 1:
            report.problems.append(f"expected 1 failed job reported, got {report.reported_failures}")
        report.seconds = time.monotonic() - started
        return report
    finally:
        stack.stop()
        if owned and not keep:
            shutil.rmtree(root, ignore_errors=True)
