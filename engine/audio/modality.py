"""`AudioModality`: landmark fingerprints of any file's first audio track, and their indexes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from engine.core import NO_OPTIONS, ExtractOptions, Fingerprint, ItemMatch, Modality, Segment

from .base import DEFAULT_SPEEDS, SCAN_SPEEDS
from .chunked import find_peaks_chunked, stream_peaks
from .decode import NoAudioStream, mono_blocks
from .fingerprint import AudioFingerprint
from .index import AudioIndex
from .params import SAMPLE_RATE
from .reference import ReferenceAudioIndex


class AudioModality(Modality[AudioFingerprint]):
    name: ClassVar[str] = "audio"
    fingerprint_type: ClassVar[type[Fingerprint]] = AudioFingerprint

    def __init__(self, speeds: tuple[float, ...] = DEFAULT_SPEEDS, *, scan: tuple[float, ...] = SCAN_SPEEDS) -> None:
        """`speeds`: playback speeds searched in full; `scan`: speeds the cheap speed scan tries (see `base`)."""
        self.speeds = speeds
        self.scan = scan

    def extract(self, path: Path, options: ExtractOptions = NO_OPTIONS) -> AudioFingerprint | None:
        """Fingerprint the first audio stream of `path` (audio file or video container); None if it has none."""
        # Decoded and peak-picked as a stream (a long file is decoded twice rather than held: `chunked`).
        try:
            t, f, n = stream_peaks(lambda: mono_blocks(path, SAMPLE_RATE))
        except NoAudioStream:
            return None
        return AudioFingerprint(duration=n / SAMPLE_RATE, peak_t=t, peak_f=f)

    def fingerprint_samples(self, samples: np.ndarray, rate: int = SAMPLE_RATE) -> AudioFingerprint:
        """Fingerprint mono float samples already at the analysis rate."""
        if rate != SAMPLE_RATE:
            raise ValueError(f"samples must be at {SAMPLE_RATE} Hz, got {rate}")
        t, f = find_peaks_chunked(samples)  # = find_peaks, in bounded memory
        return AudioFingerprint(duration=samples.size / SAMPLE_RATE, peak_t=t, peak_f=f)

    def new_index(self) -> AudioIndex:
        return AudioIndex(self.speeds, scan=self.scan)

    def match(self, query: AudioFingerprint, ref: AudioFingerprint) -> list[Segment]:
        found = self.search_all(query, {0: ref}, 1)
        return found[0].segments if found else []

    def search_all(
        self, query: AudioFingerprint, refs: Mapping[int, AudioFingerprint], max_items: int
    ) -> list[ItemMatch]:
        """All items at once, not one `match` each: the speed scan looks up the landmarks rarest *in the library*
        and keeps its best candidates over all items, so an item's answer depends on its neighbours."""
        brute = ReferenceAudioIndex(self.speeds, scan=self.scan)
        for item_id, fingerprint in refs.items():
            brute.add(item_id, fingerprint)
        return brute.search(query, max_items=max_items)
