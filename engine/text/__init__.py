"""The text modality: winnowed character k-grams of normalised text (plain text, ASR JSON, SRT/WebVTT)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from engine.core import Modality
from engine.text.fingerprint import TextFingerprint
from engine.text.index import TextIndex
from engine.text.parse import read_text_input
from engine.text.reference import ReferenceTextIndex


class TextModality(Modality[TextFingerprint]):
    name: ClassVar[str] = "text"
    fingerprint_type: ClassVar[type[TextFingerprint]] = TextFingerprint

    def extract(self, path: Path, *, text_type: str | None = None) -> TextFingerprint:
        return TextFingerprint.from_parsed(read_text_input(Path(path), text_type))

    def extract_text(self, text: str) -> TextFingerprint:
        """Fingerprint a string directly (tests, library imports of in-memory text)."""
        return TextFingerprint.from_text(text)

    def new_index(self) -> TextIndex:
        return TextIndex()

    def reference_index(self) -> ReferenceTextIndex:
        return ReferenceTextIndex()


extract = TextModality().extract

__all__ = ["ReferenceTextIndex", "TextFingerprint", "TextIndex", "TextModality", "extract"]
