"""Fingerprint extraction in a child process with a memory limit and a deadline, so one job cannot take the
service (and `fpscreen up` around it) down.

Decoding and fingerprinting are the only parts of a job whose cost grows with the input; searching and storing
stay in the service. Each extraction runs in a fresh process forked from a forkserver that has the engine
already imported (a fork costs milliseconds, not the seconds of importing NumPy and PyAV again). The child sets
`RLIMIT_AS` to `FPSCREEN_JOB_MEMORY_MB` before it starts: running out of memory there raises `MemoryError` or
kills that process only, and the job fails with `InvalidInput.TooLarge`. A child still running at
`FPSCREEN_JOB_TIMEOUT_SECONDS` is killed and the job fails with `Timeout`. `FPSCREEN_JOB_ISOLATION=0` runs
extraction in the service process instead (no limits but the size and duration ones).
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
import sys
import threading
from pathlib import Path
from typing import Any

from engine.core import NO_OPTIONS, ExtractOptions, Fingerprint
from engine.errors import EmptyMedia, EngineError, JobOutOfMemory, JobTimeout
from engine.limits import Limits, check_declared_duration, check_input_size, check_media_seconds
from engine.limits import current as current_limits
from engine.matcher import Matcher
from engine.modalities import get_modality, modality_names
from engine.service._forkserver_main import MAIN_PATH_ENV

log = logging.getLogger(__name__)

ISOLATION_ENV = "FPSCREEN_JOB_ISOLATION"
_PRELOAD = [
    "engine.service._forkserver_main",
    "engine.matcher",
    "engine.modalities",
    "engine.audio",
    "engine.video",
    "engine.text",
]
_ENV_PREFIX = "FPSCREEN_"
_context_lock = threading.Lock()
_context: Any = None


def _mp_context() -> Any:
    """The forkserver context (the service has threads: a plain fork of it could inherit a held lock)."""
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            main_path = getattr(sys.modules["__main__"], "__file__", None)
            if main_path:  # read by `_forkserver_main` in the server, which is started with this environment
                os.environ[MAIN_PATH_ENV] = os.path.normpath(main_path)
            _context = ctx
        return _context


def isolation_enabled(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(ISOLATION_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _limit_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name.startswith(_ENV_PREFIX)}


def _out_of_memory(exc: BaseException) -> bool:
    """A lazy import or an mmap refused under RLIMIT_AS shows up as ImportError/OSError, not MemoryError."""
    text = str(exc).lower()
    return getattr(exc, "errno", None) == errno.ENOMEM or "cannot allocate memory" in text or "failed to map" in text


def _extract_within_limits(path: Path, model_id: int, options: ExtractOptions) -> dict[str, Fingerprint | None]:
    """`Matcher.extract`'s fingerprints, with the size and duration limits checked for every modality (the audio
    decoder also checks as it goes; a video's frames are checked by what the container declares and yields)."""
    limits = current_limits()
    check_input_size(path, limits)
    names = modality_names(model_id)
    timed = [name for name in names if name != "text"]
    if timed:
        check_declared_duration(path, limits)
    fingerprints = {name: get_modality(name).extract(path, options) for name in names}
    for name in timed:
        found = fingerprints[name]
        if found is not None:
            check_media_seconds(float(getattr(found, "duration", 0.0)), path.name, limits)
    return fingerprints


def _child(
    conn: multiprocessing.connection.Connection,
    path: str,
    model_id: int,
    options: ExtractOptions,
    memory_mb: int | None,
    environ: dict[str, str],
) -> None:
    # The forkserver's environment is the one it started with: take the job's limits from the caller's.
    for name in [n for n in os.environ if n.startswith(_ENV_PREFIX)]:
        del os.environ[name]
    os.environ.update(environ)
    if memory_mb is not None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        fingerprints = _extract_within_limits(Path(path), model_id, options)
        conn.send(("ok", fingerprints))
    except (MemoryError, ImportError, OSError) as exc:
        if not (isinstance(exc, MemoryError) or _out_of_memory(exc)):
            conn.send(("error", "InternalError", f"{type(exc).__name__}: {exc}"))
            return
        message = f"fingerprinting needed more than {memory_mb} MB (FPSCREEN_JOB_MEMORY_MB)"
        conn.send(("error", JobOutOfMemory.code, message))
    except EngineError as exc:
        conn.send(("error", exc.code, exc.message))
    except Exception as exc:  # any other failure is the job's InternalError, with its type
        conn.send(("error", "InternalError", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def extract_isolated(
    path: Path, model_id: int, options: ExtractOptions = NO_OPTIONS, limits: Limits | None = None
) -> dict[str, Fingerprint | None]:
    """Every fingerprint of `model_id`'s modalities (as `Matcher.extract`), made in a child process under `limits`."""
    limits = limits or current_limits()
    ctx = _mp_context()
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_child,
        args=(send, str(path), model_id, options, limits.job_memory_mb, _limit_env()),
        name="fpscreen-extract",
        daemon=True,
    )
    process.start()
    send.close()
    try:
        if not receive.poll(limits.job_timeout_seconds):
            process.kill()
            raise JobTimeout(
                f"fingerprinting {path.name} took longer than {limits.job_timeout_seconds:g} s"
                " (FPSCREEN_JOB_TIMEOUT_SECONDS)"
            )
        try:
            message = receive.recv()
        except EOFError:
            message = None
    finally:
        receive.close()
        process.join(5.0)
        if process.is_alive():
            process.kill()
            process.join()
    if message is None:
        # Killed without a word: the kernel's OOM killer, or a crash inside a native decoder.
        log.error("fingerprinting process for %s died with exit code %s", path, process.exitcode)
        raise JobOutOfMemory(
            f"the fingerprinting process for {path.name} died (exit code {process.exitcode});"
            " the input is too large or breaks a decoder",
        )
    if message[0] == "ok":
        fingerprints: dict[str, Fingerprint | None] = message[1]
        return fingerprints
    _, code, text = message
    raise EngineError(text, code=code)


class IsolatedMatcher(Matcher):
    """A `Matcher` whose extraction runs in `extract_isolated` (unless FPSCREEN_JOB_ISOLATION=0)."""

    def extract(self, path: Path, model_id: int, options: ExtractOptions = NO_OPTIONS) -> dict[str, Fingerprint | None]:
        if not isolation_enabled():
            return super().extract(path, model_id, options)
        fingerprints = extract_isolated(path, model_id, options)
        if all(fp is None for fp in fingerprints.values()):
            names = modality_names(model_id)
            raise EmptyMedia(f"{path.name} has no {' or '.join(names)} to fingerprint")
        return fingerprints
