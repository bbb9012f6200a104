"""When a shared passage is a copy and not a coincidence: passage length in words, weighted by how rare its
fingerprints are in the library.

The rule (README "Text significance"):
- Document-frequency weighting. A fingerprint that occurs in `df` library documents weighs
  `min(1, df_free / df)`: a phrase that many documents contain (licence language, news boilerplate, a genre's
  stock phrases) says little about which one was copied, as MOSS ignores code common to many submissions, while
  one shared by a document and its revision or two (`df <= df_free`) still counts fully. A passage's weighted
  length is its length in words times the mean weight of the fingerprints it shares with the item.
- A slice (one copied passage) needs at least `min_slice_words` weighted words: shorter is a sentence fragment,
  which any two texts of one genre share (the issue's false passages were 4-15-word stock phrases; "no verbatim
  run of 12 words" is its definition of sharing no real passage).
- Slices of one item that lie together in both texts form one passage, whatever their order: together, they
  cover at least `min_cover` of the stretch they span in the upload and in the item alike. Their weighted words
  add up, and it is the passage that needs `min_slice_words`. A copy with sentences deleted, inserted or moved
  is one passage cut into sentence-length slices (each may be under the minimum), while the stock phrases that two
  texts of one genre share lie scattered over both, with far more unshared text between them than shared.
- An item is reported only when such passages together reach `min_item_words` weighted words: a few copied
  sentences, never one stray sentence-length coincidence. Each place of the item counts once (an upload
  repeating one copied sentence copies no more). A short item (a poem, a notice) is also reported when such
  passages cover `min_item_share` of it.
- Once an item is reported, its slices down to `min_context_words` weighted words are reported with it: next to
  established copying, a short sentence that matches the same item is part of the copy (a reordered text is
  copied sentence by sentence), though alone it would prove nothing.
- Text without spaces (Chinese, Japanese) counts characters: `cjk_chars_per_word` CJK characters make one word, so
  the same rule reads 18 / 45 / 9 characters there. Mixed text adds both.

Both indexes (inverted and linear scan) compute `df` over the same library and call the same functions here.
`TextModality(significance=...)` takes a rule; without one it reads `Significance.from_env()` (the defaults,
overridable per field by `FPSCREEN_TEXT_MIN_SLICE_WORDS`, `..._MIN_ITEM_WORDS`, `..._MIN_ITEM_SHARE`,
`..._MIN_CONTEXT_WORDS`, `..._MIN_COVER`, `..._CJK_CHARS_PER_WORD`, `..._DF_FREE`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from engine.text.normalize import NormalizedText

# CJK ideographs, kana and their extensions: scripts written without spaces between words. Hangul is written with
# spaces, so it counts by words.
_CJK_RANGES = (
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # compatibility ideographs
    (0x20000, 0x3134F),  # extensions B-G
)


@dataclass(frozen=True, slots=True)
class Significance:
    """The significance rule's parameters (see the module doc); `DEFAULT_SIGNIFICANCE` is what the engine uses."""

    min_slice_words: float = 12.0
    min_item_words: float = 30.0
    min_context_words: float = 6.0
    min_item_share: float = 0.5
    min_cover: float = 0.5  # slices lying together: they cover at least this share of their stretch in both texts
    df_free: float = 1.0
    # A Chinese word is 1.5 characters on average; a Chinese character carries more than an English letter, so a
    # run of n words in English is about as rare as 1.5 n characters in Chinese.
    cjk_chars_per_word: float = 1.5

    def __post_init__(self) -> None:
        if min(self.min_slice_words, self.min_item_words, self.min_context_words) < 0:
            raise ValueError("significance thresholds must be >= 0")
        if not 0 < self.min_item_share <= 1 or not 0 < self.min_cover <= 1:
            raise ValueError("min_item_share and min_cover must be in (0, 1]")
        if self.cjk_chars_per_word <= 0 or self.df_free <= 0:
            raise ValueError("cjk_chars_per_word and df_free must be > 0")
        if self.min_context_words > self.min_slice_words:
            raise ValueError("min_context_words cannot exceed min_slice_words")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Significance:
        """The defaults, each field overridable by `FPSCREEN_TEXT_<FIELD>` (`FPSCREEN_TEXT_MIN_SLICE_WORDS=20`)."""
        environ = os.environ if environ is None else environ
        changes: dict[str, float] = {}
        for f in fields(cls):
            value = environ.get(ENV_PREFIX + f.name.upper())
            if value is not None and value.strip():
                try:
                    changes[f.name] = float(value)
                except ValueError as exc:
                    raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={value!r} is not a number") from exc
        return replace(DEFAULT_SIGNIFICANCE, **changes) if changes else DEFAULT_SIGNIFICANCE


ENV_PREFIX = "FPSCREEN_TEXT_"
DEFAULT_SIGNIFICANCE = Significance()


def is_cjk(codes: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(codes), dtype=bool)
    for lo, hi in _CJK_RANGES:
        mask |= (codes >= lo) & (codes <= hi)
    return mask


def word_units(normalized: NormalizedText, rule: Significance = DEFAULT_SIGNIFICANCE) -> np.ndarray:
    """Cumulative length in words: `units[j] - units[i]` is the length of normalised `[i, j)` in words.

    Normalisation dropped spaces and punctuation, so a word starts where the original text skipped a character
    (or after a CJK character); each CJK character is `1 / cjk_chars_per_word` of a word.
    """
    codes, origin = normalized.codes, normalized.origin
    n = len(codes)
    cjk = is_cjk(codes)
    gap = np.ones(n, dtype=bool)
    if n > 1:
        gap[1:] = (origin[1:] - origin[:-1] > 1) | cjk[:-1]
    per_char = np.where(cjk, 1.0 / rule.cjk_chars_per_word, (gap & ~cjk).astype(np.float64))
    units = np.zeros(n + 1, dtype=np.float64)
    np.cumsum(per_char, out=units[1:])
    return units


def df_weights(df: np.ndarray, rule: Significance = DEFAULT_SIGNIFICANCE) -> np.ndarray:
    """Weight of each query fingerprint from the number of library documents holding it (0 where none does)."""
    df = np.asarray(df, dtype=np.float64)
    out = np.zeros(len(df), dtype=np.float64)
    np.divide(rule.df_free, df, out=out, where=df > 0)
    return np.minimum(out, 1.0)
