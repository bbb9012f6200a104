"""`fpscreen demo`: the product end to end on this machine, in about a minute.

It generates a small library of protected videos and a batch of uploads — copies that went through what
infringers do (low-bitrate re-encode and rescale, mirror + brightness, a clip hidden inside an unrelated
video), an original, and a corrupt file — pushes them through the full local stack (bucket → OSS trigger →
submit → engine → MNS → store-results → SQLite; timer → report-failed) and prints what was found.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.localstack.fc_runtime import RetrySchedule
from engine.localstack.results import ScreeningResult, screening_results
from engine.localstack.stack import LocalStack, StackPaths
from engine.synth import video as synth

CLIP = {"size": (320, 240), "fps": 15.0}


@dataclass(frozen=True)
class DemoUpload:
    key: str
    make: Callable[[Path, dict[str, Path]], Path]
    expect: str  # verdict: copy | clean | failed
    expect_item: str = ""  # library key it copies
    expect_input: tuple[float, float] | None = None  # where in the upload the copy sits (seconds)
    expect_library: tuple[float, float] | None = None  # ... and which seconds of the library item


LIBRARY = {
    "library/feature-film.mp4": 11,
    "library/music-video.mp4": 12,
    "library/documentary.mp4": 13,
}


def _transformed(
    name: str, source_key: str, ops: list[synth.Op], **kw: object
) -> Callable[[Path, dict[str, Path]], Path]:
    def make(workdir: Path, library: dict[str, Path]) -> Path:
        return synth.transform_video(library[source_key], workdir / name, ops, **kw)  # type: ignore[arg-type]

    return make


def _original(workdir: Path, _: dict[str, Path]) -> Path:
    return synth.make_video(workdir / "holiday.mp4", seed=77, seconds=15.0, **CLIP)  # type: ignore[arg-type]


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
        ),
        "copy",
        "library/feature-film.mp4",
        (0.0, 12.0),
        (5.0, 17.0),
    ),
    DemoUpload(
        "uploads/mirrored-brighter.mkv",
        _transformed(
            "mirrored.mkv", "library/music-video.mp4", [synth.HFlip(), synth.Brightness(35.0)], start=10.0, seconds=12.0
        ),
        "copy",
        "library/music-video.mp4",
        (0.0, 12.0),
        (10.0, 22.0),
    ),
    DemoUpload(
        "uploads/vlog-with-embedded-clip.mp4",
        _transformed(
            "vlog.mp4",
            "library/documentary.mp4",
            [synth.Embed(seed=99, before=6.0, after=6.0)],
            start=8.0,
            seconds=12.0,
        ),
        "copy",
        "library/documentary.mp4",
        (6.0, 18.0),
        (8.0, 20.0),
    ),
    DemoUpload("uploads/original-holiday.mp4", _original, "clean"),
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


def _check(upload: DemoUpload, result: ScreeningResult | None, tolerance: float = 1.5) -> list[str]:
    if result is None:
        return [f"{upload.key}: no result stored"]
    if result.verdict != upload.expect:
        return [f"{upload.key}: expected {upload.expect}, got {result.verdict} {result.code}".rstrip()]
    if upload.expect != "copy":
        return []
    best = result.matches[0] if result.matches else None
    if best is None or best.library_object != upload.expect_item:
        return [f"{upload.key}: expected a copy of {upload.expect_item}, got {best.library_object if best else None}"]
    video = [s for s in best.slices if s.kind == "video"]
    if not video or upload.expect_input is None or upload.expect_library is None:
        return [f"{upload.key}: no video slice"]
    s = max(video, key=lambda x: x.input_end - x.input_start)
    off = max(
        abs(s.input_start - upload.expect_input[0]), abs(s.input_end - upload.expect_input[1]),
        abs(s.library_start - upload.expect_library[0]), abs(s.library_end - upload.expect_library[1]),
    )  # fmt: skip
    return [] if off <= tolerance else [f"{upload.key}: slice boundaries off by {off:.1f} s"]


def run_demo(
    data_dir: Path | None = None, *, keep: bool = False, progress: Callable[[str], None] = print
) -> DemoReport:
    started = time.monotonic()
    owned = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="fpscreen-demo-")) if data_dir is None else Path(data_dir)
    workdir = root / "media-src"
    workdir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(
        StackPaths.under(root),
        retry=RetrySchedule(base=0.5, cap=5.0),
        mns_retry_scale=0.05,
        log_file=True,
    )
    try:
        progress("generating media …")
        library = {
            key: synth.make_video(workdir / Path(key).name, seed=seed, seconds=30.0, **CLIP)  # type: ignore[arg-type]
            for key, seed in LIBRARY.items()
        }
        uploads = {upload.key: upload.make(workdir, library) for upload in UPLOADS}
        progress("starting the local stack (MNS, engine, functions) …")
        stack.start()
        progress(f"  engine {stack.engine.url} · MNS {stack.mns.endpoint} · bucket {stack.bucket_dir.root}")
        progress(f"uploading {len(library)} library videos to library/ …")
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
        for key in LIBRARY:  # different works: none may be flagged as a copy of another
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
