"""The text modality: winnowed character k-grams of normalised text (plain text, ASR JSON, SRT/WebVTT)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from engine.core import NO_OPTIONS, ExtractOptions, ItemMatch, Modality, Segment
from engine.text.align import collect, rank
from engine.text.fingerprint import TextFingerprint
from engine.text.index import TextIndex
from engine.text.parse import read_text_input


def pair_hits(query: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with `query[i] == ref[j]`, by comparing all pairs in blocks (the brute-force lookup)."""
    q_parts: list[np.ndarray] = []
    r_parts: list[np.ndarray] = []
    block = max(1, 4_000_000 // max(1, len(ref)))
    for start in range(0, len(query), block):
        equal = query[start : start + block, None] == ref[None, :]
        qi, ri = np.nonzero(equal)
        q_parts.append(qi + start)
        r_parts.append(ri)
    if not q_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(q_parts).astype(np.int64), np.concatenate(r_parts).astype(np.int64)


class TextModality(Modality[TextFingerprint]):
    name: ClassVar[str] = "text"
    fingerprint_type: ClassVar[type[TextFingerprint]] = TextFingerprint

    def extract(self, path: Path, options: ExtractOptions = NO_OPTIONS) -> TextFingerprint:
        """Plain text, or timed text (ASR JSON, .srt, .vtt) as the job's `TextType` and the suffix say."""
        return TextFingerprint.from_parsed(read_text_input(Path(path), options.text_type))

    def extract_text(self, text: str) -> TextFingerprint:
        """Fingerprint a string directly (tests, library imports of in-memory text)."""
        return TextFingerprint.from_text(text)

    def new_index(self) -> TextIndex:
        return TextIndex()

    def match(self, query: TextFingerprint, ref: TextFingerprint) -> list[Segment]:
        found = collect(query, {0: pair_hits(query.hashes, ref.hashes)}, {0: ref}, 1)
        return found[0].segments if found else []

    def rank(self, matches: list[ItemMatch], max_items: int) -> list[ItemMatch]:
        return rank(matches, max_items)


extract = TextModality().extract

__all__ = ["TextFingerprint", "TextIndex", "TextModality", "extract", "pair_hits"]
