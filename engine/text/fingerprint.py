"""`TextFingerprint`: the winnowed k-gram hashes of a text, with the text itself so matches can be quoted."""

from __future__ import annotations

import json
import struct
import sys
from typing import Any

import numpy as np

from engine.core import Fingerprint
from engine.errors import EmptyMedia, MediaError
from engine.text.normalize import NormalizedText, normalize
from engine.text.parse import Cue, ParsedText
from engine.text.winnowing import DEFAULT_K, DEFAULT_W, kgram_hashes, winnow

_MAGIC = b"FPT1"
_HEADER = struct.Struct("<4sIQII")  # magic, header-json bytes, text bytes, fingerprint count, reserved


class TextFingerprint(Fingerprint):
    """Selected k-gram hashes and their positions in the normalised text.

    `duration` is in the modality's unit: characters for plain text, seconds for ASR and subtitles.
    """

    def __init__(self, parsed: ParsedText, hashes: np.ndarray, positions: np.ndarray, *, k: int, w: int) -> None:
        self.parsed = parsed
        self.hashes = hashes.astype(np.uint64, copy=False)
        self.positions = positions.astype(np.int32, copy=False)  # 4 G normalised characters is plenty
        self.k = k
        self.w = w
        self.duration = parsed.duration

    @classmethod
    def from_parsed(cls, parsed: ParsedText, *, k: int = DEFAULT_K, w: int = DEFAULT_W) -> TextFingerprint:
        normalized = normalize(parsed.text)
        if len(normalized) == 0:
            raise EmptyMedia("the text has no letters or digits to fingerprint")
        hashes, positions = winnow(kgram_hashes(normalized.codes, k), w)
        return cls(parsed, hashes, positions, k=k, w=w)

    @classmethod
    def from_text(cls, text: str, *, k: int = DEFAULT_K, w: int = DEFAULT_W) -> TextFingerprint:
        return cls.from_parsed(ParsedText(text), k=k, w=w)

    @property
    def text(self) -> str:
        return self.parsed.text

    @property
    def normalized(self) -> NormalizedText:
        """Recomputed on each call (~25 ms per MB): only a matched item needs it, and keeping it for every item of
        a library would cost 12 bytes per character."""
        return normalize(self.parsed.text)

    def __len__(self) -> int:
        return len(self.hashes)

    def resident_bytes(self) -> int:
        """Memory held while indexed: the text (1, 2 or 4 bytes a character) and the fingerprint arrays."""
        return sys.getsizeof(self.parsed.text) + self.hashes.nbytes + self.positions.nbytes

    def span(self, normalized: NormalizedText, norm_start: int, norm_end: int) -> tuple[float, float, str]:
        """Normalised `[start, end)` (of `normalized`, this text's `normalized`) as (start, end) in the
        modality's unit, and the original text it covers."""
        lo, hi = normalized.original_span(norm_start, norm_end, len(self.parsed.text))
        return self.parsed.to_units(lo), self.parsed.to_units(hi), self.parsed.text[lo:hi]

    # ------------------------------------------------------------------------------------------ storage

    def to_bytes(self) -> bytes:
        header: dict[str, Any] = {
            "k": self.k,
            "w": self.w,
            "cues": [
                [cue.start, cue.end, offset, len(cue.text)]
                for cue, offset in zip(self.parsed.cues, self.parsed.cue_offsets, strict=True)
            ],
        }
        header_bytes = json.dumps(header, separators=(",", ":")).encode()
        text_bytes = self.parsed.text.encode("utf-8", "surrogatepass")
        return b"".join(
            (
                _HEADER.pack(_MAGIC, len(header_bytes), len(text_bytes), len(self.hashes), 0),
                header_bytes,
                text_bytes,
                self.hashes.astype("<u8").tobytes(),
                self.positions.astype("<u4").tobytes(),  # normalised positions fit 32 bits (4 G chars)
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TextFingerprint:
        if len(data) < _HEADER.size or data[:4] != _MAGIC:
            raise MediaError("not a text fingerprint (bad magic)")
        _, header_len, text_len, count, _ = _HEADER.unpack_from(data)
        at = _HEADER.size
        header = json.loads(data[at : at + header_len])
        at += header_len
        text = data[at : at + text_len].decode("utf-8", "surrogatepass")
        at += text_len
        hashes = np.frombuffer(data, dtype="<u8", count=count, offset=at).astype(np.uint64)
        at += 8 * count
        positions = np.frombuffer(data, dtype="<u4", count=count, offset=at).astype(np.int32)
        cues = tuple(Cue(start, end, text[off : off + n]) for start, end, off, n in header["cues"])
        offsets = tuple(off for _, _, off, _ in header["cues"])
        parsed = ParsedText(text, cues, offsets)
        return cls(parsed, hashes, positions, k=int(header["k"]), w=int(header["w"]))
