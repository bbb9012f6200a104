"""The video modality: sampled-frame DCT-sign hashes, a multi-index-hashing index, temporal alignment.

- `decode`: PyAV decoding to tiny gray thumbnails, averaged onto a 2 fps grid, as cheaply as the codec allows.
- `frame_features`: bar removal, flat-frame rejection, the 64-bit hash per crop window (flip = XOR).
- `fingerprint`: `VideoFingerprint` and `extract_fingerprint`.
- `matching`: dense verification of a query against one item -> `engine.align` -> segments.
- `index`: `VideoIndex`, the fast index; `reference`: `ReferenceVideoIndex`, the brute-force oracle.
"""

from engine.video.fingerprint import VideoFingerprint, extract_fingerprint
from engine.video.index import VideoIndex
from engine.video.modality import VideoModality
from engine.video.reference import ReferenceVideoIndex

__all__ = ["ReferenceVideoIndex", "VideoFingerprint", "VideoIndex", "VideoModality", "extract_fingerprint"]
