"""The text modality: winnowed character k-grams of normalised text (plain text, ASR JSON, SRT/WebVTT)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from engine.core import NO_OPTIONS, ExtractOptions, ItemMatch, Modality, Segment
from engine.text import index as _index
from engine.text.align import collect, rank
from engine.text.fingerprint import TextFingerprint
from engine.text.index import TextIndex
from engine.text.parse import read_text_input
from engine.text.significance import DEFAULT_SIGNIFICANCE, Significance, df_weights


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

    def __init__(self, significance: Significance | None = None) -> None:
        """`significance`: when a shared passage is reported as a copy (`engine.text.significance`); by default
        the documented defaults with any `FPSCREEN_TEXT_*` environment overrides."""
        self.significance = significance if significance is not None else Significance.from_env()

    def extract(self, path: Path, options: ExtractOptions = NO_OPTIONS) -> TextFingerprint:
        """Plain text, or timed text (ASR JSON, .srt, .vtt) as the job's `TextType` and the suffix say."""
        return TextFingerprint.from_parsed(read_text_input(Path(path), options.text_type))

    def extract_text(self, text: str) -> TextFingerprint:
        """Fingerprint a string directly (tests, library imports of in-memory text)."""
        return TextFingerprint.from_text(text)

    def new_index(self) -> TextIndex:
        return TextIndex(self.significance)

    def match(self, query: TextFingerprint, ref: TextFingerprint) -> list[Segment]:
        """The pair alone: a library of one item, where every shared fingerprint is as rare as it can be."""
        found = collect(query, {0: pair_hits(query.hashes, ref.hashes)}, {0: ref}, 1, None, self.significance)
        return found[0].segments if found else []

    def search_all(
        self, query: TextFingerprint, refs: Mapping[int, TextFingerprint], max_items: int
    ) -> list[ItemMatch]:
        """Brute force over the library at once: fingerprint weights depend on how many items hold each hash, so
        every item is compared first and the library statistics (postings, document frequency) taken from that,
        under the same rules as `TextIndex` (hashes posted over `MAX_POSTINGS_PER_HASH` times are left out)."""
        pairs = {item: pair_hits(query.hashes, ref.hashes) for item, ref in refs.items()}
        postings = np.zeros(len(query.hashes), dtype=np.int64)
        df = np.zeros(len(query.hashes), dtype=np.int64)
        for qi, _ in pairs.values():
            per_slot = np.bincount(qi, minlength=len(query.hashes))
            postings += per_slot
            df += per_slot > 0
        wanted = postings <= _index.MAX_POSTINGS_PER_HASH
        hits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for item, (qi, ri) in pairs.items():
            keep = wanted[qi]
            if keep.any():
                hits[item] = (qi[keep], ri[keep])
        weights = df_weights(np.where(wanted, df, 0), self.significance)
        return collect(query, hits, dict(refs), max_items, weights, self.significance)

    def rank(self, matches: list[ItemMatch], max_items: int) -> list[ItemMatch]:
        return rank(matches, max_items)


extract = TextModality().extract

__all__ = [
    "DEFAULT_SIGNIFICANCE",
    "Significance",
    "TextFingerprint",
    "TextIndex",
    "TextModality",
    "extract",
    "pair_hits",
]
