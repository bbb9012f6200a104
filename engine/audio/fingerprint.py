"""`AudioFingerprint`: a file's spectral peaks, from which its landmark hashes are derived on demand.

Peaks, not hashes, are what is stored: they are ~3x smaller (one peak feeds FANOUT landmarks), and a query can
re-hash them under other playback-speed hypotheses. Serialised form: a 20-byte header, then zlib of the
delta-coded peak times (uint32) and the peak frequencies (uint16), all little-endian.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from engine.core import Fingerprint
from engine.errors import MediaError

from .landmarks import landmarks
from .params import FORMAT_VERSION, LIBRARY_FANOUT

_MAGIC = b"AFPK"
_HEADER = struct.Struct("<4sHHdI")  # magic, version, reserved, duration (s), peak count


@dataclass(eq=False)
class AudioFingerprint(Fingerprint):
    """Peaks of one file: `peak_t` in 1/16 analysis frames, `peak_f` in 1/16 hash bins, sorted by time."""

    duration: float
    peak_t: np.ndarray
    peak_f: np.ndarray
    _hashes: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _library: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.peak_t = np.ascontiguousarray(self.peak_t, dtype=np.uint32)
        self.peak_f = np.ascontiguousarray(self.peak_f, dtype=np.uint16)
        if self.peak_t.shape != self.peak_f.shape or self.peak_t.ndim != 1:
            raise ValueError("peak_t and peak_f must be 1-D arrays of the same length")

    @property
    def hashes(self) -> np.ndarray:
        """Landmark hashes (uint32, 20 bits used), sorted by anchor time."""
        return self._landmarks()[0]

    @property
    def times(self) -> np.ndarray:
        """Anchor frame (uint32) of each landmark in `hashes`."""
        return self._landmarks()[1]

    def _landmarks(self) -> tuple[np.ndarray, np.ndarray]:
        if self._hashes is None:
            self._hashes = landmarks(self.peak_t, self.peak_f)
        return self._hashes

    def library_landmarks(self) -> tuple[np.ndarray, np.ndarray]:
        """The landmarks an index stores: each anchor's first LIBRARY_FANOUT targets (a query keeps FANOUT)."""
        if self._library is None:
            self._library = landmarks(self.peak_t, self.peak_f, fanout=LIBRARY_FANOUT)
        return self._library

    def landmarks_at_speed(self, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks as they would be if this audio were played `factor` times slower (original speed)."""
        return self.landmarks_at(factor, 1.0 / factor)

    def landmarks_at(self, time_scale: float, freq_scale: float) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks of the peaks with times multiplied by `time_scale` and frequencies by `freq_scale` (a tempo
        or a pitch change undone on its own, or both: a resampling)."""
        if time_scale == 1.0 and freq_scale == 1.0:
            return self._landmarks()
        return landmarks(self.peak_t, self.peak_f, time_scale=time_scale, freq_scale=freq_scale)

    def __len__(self) -> int:
        return int(self.hashes.size)

    @property
    def n_peaks(self) -> int:
        return int(self.peak_t.size)

    def to_bytes(self) -> bytes:
        header = _HEADER.pack(_MAGIC, FORMAT_VERSION, 0, float(self.duration), self.peak_t.size)
        dt = np.diff(self.peak_t.astype(np.int64), prepend=0).astype("<u4")
        body = dt.tobytes() + self.peak_f.astype("<u2").tobytes()
        return header + zlib.compress(body, 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> AudioFingerprint:
        if len(data) < _HEADER.size:
            raise MediaError("audio fingerprint data is truncated")
        magic, version, _, duration, n = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise MediaError("not an audio fingerprint (bad magic)")
        if version != FORMAT_VERSION:
            raise MediaError(f"audio fingerprint format {version} is not supported (expected {FORMAT_VERSION})")
        try:
            body = zlib.decompress(data[_HEADER.size :])
        except zlib.error as e:
            raise MediaError(f"corrupt audio fingerprint: {e}") from e
        if len(body) != 6 * n:
            raise MediaError("corrupt audio fingerprint: payload size does not match the peak count")
        t = np.cumsum(np.frombuffer(body, "<u4", n).astype(np.int64)).astype(np.uint32)
        f = np.frombuffer(body, "<u2", n, offset=4 * n).astype(np.uint16)
        return cls(duration=duration, peak_t=t, peak_f=f)
