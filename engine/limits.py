"""Size, duration and time limits of one fingerprint job, read from the environment at the moment they are used.

An upload is untrusted: a 10 MB opus file can hold many hours of audio and a text file any number of characters,
and the engine runs inside `fpscreen up`. Each limit fails the job with an MPS-style code instead (README,
"Limits"). `0` switches a limit off.

| variable | default | checked |
|---|---|---|
| `FPSCREEN_MAX_INPUT_BYTES` | 4 GiB | before decoding: the input file's size |
| `FPSCREEN_MAX_MEDIA_SECONDS` | 2 h | while decoding audio/video: decoding stops at the limit |
| `FPSCREEN_MAX_TEXT_CHARS` | 5 million | after reading a text |
| `FPSCREEN_JOB_TIMEOUT_SECONDS` | 1 h | the service's fingerprint worker process is killed at the limit |
| `FPSCREEN_JOB_MEMORY_MB` | 10240 | the worker process's address-space limit (`RLIMIT_AS`) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, InputTooLarge, InputTooLong

_DEFAULTS: dict[str, float] = {
    "FPSCREEN_MAX_INPUT_BYTES": 4 * 1024**3,
    "FPSCREEN_MAX_MEDIA_SECONDS": 2 * 3600,
    "FPSCREEN_MAX_TEXT_CHARS": 5_000_000,
    "FPSCREEN_JOB_TIMEOUT_SECONDS": 3600,
    "FPSCREEN_JOB_MEMORY_MB": 10240,
}


@dataclass(frozen=True, slots=True)
class Limits:
    """`None` means unlimited."""

    max_input_bytes: int | None
    max_media_seconds: float | None
    max_text_chars: int | None
    job_timeout_seconds: float | None
    job_memory_mb: int | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ

        def read(name: str) -> float | None:
            raw = env.get(name, "").strip()
            try:
                value = float(raw) if raw else _DEFAULTS[name]
            except ValueError as exc:
                raise ValueError(f"{name} must be a number, got {raw!r}") from exc
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {raw!r}")
            return None if value == 0 else value

        def read_int(name: str) -> int | None:
            value = read(name)
            return None if value is None else int(value)

        return cls(
            max_input_bytes=read_int("FPSCREEN_MAX_INPUT_BYTES"),
            max_media_seconds=read("FPSCREEN_MAX_MEDIA_SECONDS"),
            max_text_chars=read_int("FPSCREEN_MAX_TEXT_CHARS"),
            job_timeout_seconds=read("FPSCREEN_JOB_TIMEOUT_SECONDS"),
            job_memory_mb=read_int("FPSCREEN_JOB_MEMORY_MB"),
        )


def current() -> Limits:
    return Limits.from_env()


def check_input_size(path: Path, limits: Limits | None = None) -> None:
    """Raise `InputTooLarge` if the file at `path` is over `FPSCREEN_MAX_INPUT_BYTES`."""
    limit = (limits or current()).max_input_bytes
    if limit is not None and path.is_file():
        size = path.stat().st_size
        if size > limit:
            raise InputTooLarge(f"{path.name} is {size} bytes; the limit is {limit} (FPSCREEN_MAX_INPUT_BYTES)")


def check_media_seconds(seconds: float, name: str, limits: Limits | None = None) -> None:
    limit = (limits or current()).max_media_seconds
    if limit is not None and seconds > limit:
        raise InputTooLong(f"{name} is longer than {limit:g} s (FPSCREEN_MAX_MEDIA_SECONDS)")


def check_text_chars(chars: int, name: str, limits: Limits | None = None) -> None:
    limit = (limits or current()).max_text_chars
    if limit is not None and chars > limit:
        raise InputTooLong(f"{name} has {chars} characters; the limit is {limit} (FPSCREEN_MAX_TEXT_CHARS)")


def declared_seconds(path: Path) -> float | None:
    """The duration a media container declares (the longest of the container's and its streams'); None when it
    declares none or is not media. Only a first check: a container may lie, so decoders check as they go."""
    import av

    from engine.media_input import open_confined

    try:
        with open_confined(path, metadata_errors="ignore") as container:
            found = [container.duration / 1_000_000] if container.duration else []
            for stream in container.streams:
                if stream.duration and stream.time_base:
                    found.append(float(stream.duration * stream.time_base))
    except (av.error.FFmpegError, OSError, ValueError, EngineError):
        return None
    return max(found) if found else None


def check_declared_duration(path: Path, limits: Limits | None = None) -> None:
    """Raise `InputTooLong` before any decoding if the container says it is longer than the limit."""
    limits = limits or current()
    if limits.max_media_seconds is None:
        return
    seconds = declared_seconds(path)
    if seconds is not None:
        check_media_seconds(seconds, path.name, limits)
