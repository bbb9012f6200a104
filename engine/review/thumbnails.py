"""Thumbnails for the review page: the picture of a local object at a given second, cut with PyAV, scaled to
a small JPEG and cached on disk (keyed by the file's identity and the time, so a replaced file is cut again)."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable
from pathlib import Path

import av

THUMB_WIDTH = 320
Resolver = Callable[[str, str], Path | None]  # (bucket, key) -> local file


def cut_thumbnail(path: Path, seconds: float, width: int = THUMB_WIDTH) -> bytes | None:
    """The first decoded frame at or after `seconds` as a JPEG `width` pixels wide; None if there is none."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.time_base is not None and seconds > 0:
                container.seek(int(max(0.0, seconds) / stream.time_base), stream=stream, backward=True)
            frame = None
            for candidate in container.decode(stream):
                frame = candidate
                if candidate.time is None or candidate.time >= seconds - 0.05:
                    break
            if frame is None:
                return None
            height = max(2, round(frame.height * width / max(1, frame.width) / 2) * 2)
            scaled = frame.reformat(width=width, height=height, format="yuvj420p")
            out = io.BytesIO()
            with av.open(out, "w", format="mjpeg") as jpeg:
                encoder = jpeg.add_stream("mjpeg", rate=1)
                encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
                for packet in encoder.encode(scaled):
                    jpeg.mux(packet)
                for packet in encoder.encode(None):
                    jpeg.mux(packet)
            return out.getvalue() or None
    except (av.error.FFmpegError, OSError, ValueError):
        return None


class ThumbnailCache:
    """`ThumbnailSource` (shared.review.app) over local files, cached under `cache_dir`."""

    def __init__(self, resolve: Resolver, cache_dir: Path) -> None:
        self._resolve = resolve
        self._dir = cache_dir
        self._lock = threading.Lock()

    def thumbnail(self, bucket: str, key: str, seconds: float) -> bytes | None:
        path = self._resolve(bucket, key)
        if path is None or not path.is_file():
            return None
        stat = path.stat()
        name = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{seconds:.2f}"
        cached = self._dir / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.jpg"
        if cached.exists():
            return cached.read_bytes()
        image = cut_thumbnail(path, seconds)
        if image is not None:
            with self._lock:
                self._dir.mkdir(parents=True, exist_ok=True)
                partial = cached.with_suffix(".part")
                partial.write_bytes(image)
                partial.replace(cached)  # readers never see half a file
        return image


def bucket_resolver(oss_root: Path) -> Resolver:
    """Objects of the local stack's directory bucket: `<oss_root>/<bucket>/<key>`, never outside the root."""
    root = oss_root.resolve()

    def resolve(bucket: str, key: str) -> Path | None:
        path = (root / bucket / key).resolve()
        return path if path.is_relative_to(root) else None

    return resolve
