"""The on-disk form both persisted indexes share (`engine.video.index`, `engine.audio.index`): a directory of
immutable parts, each a sub-directory of `.npy` files, and a `manifest.json` naming the live ones.

A part is written under a temporary name, every file fsynced, then renamed into place; only then does a new
manifest (written the same way) name it, and parts it no longer names are deleted. A reader therefore sees an old
or a new manifest, each naming complete parts. Savers and loaders of one directory serialise on a lock file, so a
server and the CLI beside it never see each other's half-written state.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"


@contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Serialise savers and loaders of one directory across processes."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_part(directory: Path, name: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` as `directory/<name>/<field>.npy`, atomically by renaming a finished directory."""
    tmp = directory / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for field, array in arrays.items():
        with (tmp / f"{field}.npy").open("wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())  # the manifest names these files next: their bytes must be on disk first
    tmp.rename(directory / name)


def publish(directory: Path, listing: Mapping[str, object], parts: set[str]) -> None:
    """Replace the manifest with `listing` atomically, then delete the parts it does not name (`parts`)."""
    tmp = directory / f"{MANIFEST}.tmp"
    with tmp.open("w") as f:
        json.dump(listing, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(directory / MANIFEST)
    for path in directory.iterdir():
        if path.is_dir() and path.name not in parts:
            shutil.rmtree(path, ignore_errors=True)  # mapped elsewhere, its pages live on until unmapped
