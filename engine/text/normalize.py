"""Text normalisation for fingerprinting, with a map from every normalised character back to the original.

A copy survives re-typing: width/compatibility forms (NFKC), case (casefold), accents, punctuation, whitespace and
symbols are all folded away, so only letters and digits remain. Cyrillic and Greek letters that look like Latin
ones (homoglyphs, OCR confusions) fold to the Latin letter, and HTML markup (tags, script/style blocks, character
references) is read as the text it displays, so a copy pasted into a web page or disguised with look-alikes is
still the same text. Each normalised character remembers the index of
the original character it came from, so a match can quote the original text and report original positions.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Unicode general categories that carry content; everything else (P*, Z*, C*, S*, M*) is dropped.
_KEPT_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No"})
# Cyrillic and Greek letters (after casefolding) drawn like a Latin letter in upper or lower case: the look-alikes
# of Unicode TR39's confusables that homoglyph disguises and OCR use. Folding them in every text only makes
# Cyrillic/Greek k-grams a little less distinct; matching stays symmetric.
_LOOKALIKES = str.maketrans(
    "авеѕіјкмнорстухԁԛԝһӏүαβεζηικμνορτυχ",
    "abesijkmhopctyxdqwhlyabezhikmvoptux",
)
# HTML markup: a script/style block, a tag or comment, or a character reference. Tags must start like a tag
# (`<p`, `</`, `<!`), so "a < b" in prose is left alone.
_MARKUP = re.compile(
    r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->|</?[A-Za-z!][^<>]{0,1000}>|&(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});",
    re.DOTALL | re.IGNORECASE,
)


@lru_cache(maxsize=65536)
def fold_char(ch: str) -> str:
    """The normalised form of one original character ("" when it carries no content).

    NFKD then dropping combining marks folds accents, so a precomposed "é" and a decomposed "e"+"◌́" agree even
    though we normalise character by character (whole-string NFKC would lose the position map).
    """
    decomposed = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKC", base).casefold()
    folded = unicodedata.normalize("NFKC", folded)  # casefold can leave non-NFKC output (rare)
    return "".join(c for c in folded if unicodedata.category(c) in _KEPT_CATEGORIES).translate(_LOOKALIKES)


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """`codes[i]` is the i-th normalised code point; it came from original character `origin[i]`."""

    codes: np.ndarray  # uint32 code points
    origin: np.ndarray  # int64 indexes into the original string, non-decreasing

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def text(self) -> str:
        return self.codes.astype("<u4").tobytes().decode("utf-32-le")

    def original_span(self, start: int, end: int, original_length: int) -> tuple[int, int]:
        """The original `[start, end)` character range covering normalised `[start, end)`."""
        if end <= start:
            at = int(self.origin[start]) if start < len(self.origin) else original_length
            return at, at
        return int(self.origin[start]), int(self.origin[end - 1]) + 1


def _unmark(text: str, codes: np.ndarray) -> np.ndarray:
    """`codes` with markup blanked (U+0000 is never kept) and each character reference replaced, at its `&`, by
    the character it stands for: positions still map one to one onto the original text."""
    out: np.ndarray | None = None
    for m in _MARKUP.finditer(text):
        if out is None:
            out = codes.copy()
        start, end = m.span()
        out[start:end] = 0
        if text[start] == "&":
            decoded = html.unescape(m.group(0))
            if len(decoded) == 1 and decoded != "\x00":
                out[start] = ord(decoded)
    return codes if out is None else out


def normalize(text: str) -> NormalizedText:
    """Normalise `text`, vectorised: each distinct character is folded once (a book has a few thousand), then
    per-code-point lookup tables do the rest in numpy."""
    if not text:
        return NormalizedText(np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64))
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    if "<" in text or "&" in text:
        codes = _unmark(text, codes)
    present = np.flatnonzero(np.bincount(codes))  # O(n), unlike np.unique's sort
    folded = [fold_char(chr(int(cp))) for cp in present]
    size = int(present[-1]) + 1

    if all(len(f) <= 1 for f in folded):  # the usual case: one character in, at most one out
        table = np.zeros(size, dtype=np.uint32)
        table[present] = [ord(f) if f else 0 for f in folded]  # U+0000 is a control character: never kept
        mapped = table[codes]
        origin = np.flatnonzero(mapped)
        return NormalizedText(mapped[origin], origin.astype(np.int64))

    # Some characters expand ("ß" -> "ss", "ﬁ" -> "fi"): place every output code point explicitly.
    lengths = np.zeros(size, dtype=np.int64)
    lengths[present] = [len(f) for f in folded]
    offsets = np.zeros(size, dtype=np.int64)
    offsets[present] = np.cumsum(lengths[present]) - lengths[present]
    flat = np.frombuffer("".join(folded).encode("utf-32-le", "surrogatepass"), dtype="<u4")
    per_char = lengths[codes]
    origin = np.repeat(np.arange(len(codes), dtype=np.int64), per_char)
    if len(origin) == 0:
        return NormalizedText(np.zeros(0, dtype=np.uint32), origin)
    char_start = np.cumsum(per_char) - per_char
    rank = np.arange(len(origin), dtype=np.int64) - np.repeat(char_start, per_char)  # 0, 1 for "ss"
    flat_index = np.repeat(offsets[codes], per_char) + rank
    return NormalizedText(flat[flat_index].astype(np.uint32), origin)
