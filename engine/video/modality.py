"""`VideoModality`: what `engine.core.Modality` asks of video (extract, fast index, brute-force oracle)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from engine.core import Fingerprint, Modality
from engine.video.fingerprint import VideoFingerprint, extract_fingerprint
from engine.video.index import VideoIndex
from engine.video.reference import ReferenceVideoIndex


class VideoModality(Modality[VideoFingerprint]):
    name: ClassVar[str] = "video"
    fingerprint_type: ClassVar[type[Fingerprint]] = VideoFingerprint

    def extract(self, path: Path, *, text_type: str | None = None) -> VideoFingerprint | None:
        """Fingerprint a video (mp4, mkv, mov, avi, ts, flv, mpg, webm...) or an image (a one-frame video).

        None when the file has no video stream (audio only). Raises `MediaError` subclasses: `MediaNotFound`,
        `EmptyMedia` (0 bytes, no frames), `UnsupportedMedia` (not media, e.g. text), `MediaError` (corrupt).
        """
        return extract_fingerprint(path)

    def new_index(self) -> VideoIndex:
        return VideoIndex()

    def reference_index(self) -> ReferenceVideoIndex:
        return ReferenceVideoIndex()
