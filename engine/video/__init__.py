"""The video modality: sampled-frame DCT-sign hashes, a multi-index-hashing index, temporal alignment.

- `decode`: PyAV decoding to tiny gray thumbnails, averaged onto a 2 fps grid, as cheaply as the codec allows.
- `frame_features`: bar removal, flat-frame rejection, the 64-bit hash per crop window (flip = XOR).
- `fingerprint`: `VideoFingerprint` and `extract_fingerprint`.
- `align`: matched frame pairs -> time-aligned segments (Hough voting over offsets, then chaining).
- `matching`: dense verification of a query against one item -> `align` -> segments: the pairwise match.
- `index`: `VideoIndex`, the fast index (its oracle is the generic `engine.core.LinearScanIndex`).
"""

from engine.video.fingerprint import VideoFingerprint, extract_fingerprint
from engine.video.index import VideoIndex
from engine.video.modality import VideoModality

__all__ = ["VideoFingerprint", "VideoIndex", "VideoModality", "extract_fingerprint"]
