"""`VideoModality`: what `engine.core.Modality` asks of video (extract, pairwise match, fast index)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from engine.core import NO_OPTIONS, ExtractOptions, Fingerprint, ItemMatch, Modality, Segment
from engine.video.fingerprint import VideoFingerprint, extract_fingerprint
from engine.video.index import VideoIndex
from engine.video.matching import RefFrames, match_item, rank


class VideoModality(Modality[VideoFingerprint]):
    name: ClassVar[str] = "video"
    fingerprint_type: ClassVar[type[Fingerprint]] = VideoFingerprint

    def extract(self, path: Path, options: ExtractOptions = NO_OPTIONS) -> VideoFingerprint | None:
        """Fingerprint a video (mp4, mkv, mov, avi, ts, flv, mpg, webm...) or an image (a one-frame video).

        None when the file has no video stream (audio only). Raises `MediaError` subclasses: `MediaNotFound`,
        `EmptyMedia` (0 bytes, no frames), `UnsupportedMedia` (not media, e.g. text), `MediaError` (corrupt).
        """
        return extract_fingerprint(path)

    def new_index(self) -> VideoIndex:
        return VideoIndex()

    def match(self, query: VideoFingerprint, ref: VideoFingerprint) -> list[Segment]:
        """Dense verification of the query against every frame of `ref` (its central window only)."""
        refs = RefFrames(ref.times, ref.canonical, ref.duration, ref.step)
        found = match_item(query, 0, refs, library_frames=len(ref))
        return found.segments if found else []

    def search_all(self, query: VideoFingerprint, refs: Mapping[int, VideoFingerprint], max_items: int
                   ) -> list[ItemMatch]:  # fmt: skip
        """Every item's dense verification, with the library's size in frames (the evidence a report needs
        grows with it: `engine.video.align.required_excess`), as the fast index does."""
        frames = sum(len(ref) for ref in refs.values())
        found = []
        for item_id, ref in refs.items():
            match = match_item(query, item_id, RefFrames(ref.times, ref.canonical, ref.duration, ref.step),
                               library_frames=frames)  # fmt: skip
            if match:
                found.append(match)
        return rank(found, max_items)

    def rank(self, matches: list[ItemMatch], max_items: int) -> list[ItemMatch]:
        return rank(matches, max_items)

    def stored_form(self, fingerprint: VideoFingerprint) -> VideoFingerprint:
        """One hash a frame (its central window), not every query crop window: 8 bytes a frame."""
        return fingerprint.reference_only()
