"""Reading text inputs: plain UTF-8 text, ASR JSON (`[{start, end, text}]`, seconds) and SRT/WebVTT subtitles.

Timed inputs become one string (cue texts joined by newlines) plus the character range and time span of each
cue, so a character position can be turned back into seconds.
"""

from __future__ import annotations

import html
import json
import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EmptyMedia, MediaError, MediaNotFound, UnsupportedMedia
from engine.limits import check_input_size, check_text_chars
from engine.limits import current as current_limits

SUBTITLE_SUFFIXES = frozenset({".srt", ".vtt"})
ASR_SUFFIXES = frozenset({".json"})

_TIMESTAMP = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # HTML-ish tags (<i>, <v Bob>, <00:01.000>) and ASS overrides ({\an8})


@dataclass(frozen=True, slots=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class ParsedText:
    """The text to fingerprint. Plain text has no cues; timed text has one cue per ASR sentence/subtitle."""

    text: str
    cues: tuple[Cue, ...] = ()
    cue_offsets: tuple[int, ...] = field(default=())  # character offset of each cue inside `text`

    @property
    def timed(self) -> bool:
        return bool(self.cues)

    @property
    def duration(self) -> float:
        """Seconds for timed text (end of the last cue), characters for plain text."""
        if self.cues:
            return max(cue.end for cue in self.cues)
        return float(len(self.text))

    def to_units(self, char_pos: int) -> float:
        """A character position in `text` as the modality's unit (characters, or seconds for timed text)."""
        if not self.cues:
            return float(char_pos)
        i = max(0, bisect_right(self.cue_offsets, char_pos) - 1)
        cue, offset = self.cues[i], self.cue_offsets[i]
        fraction = min(1.0, max(0.0, (char_pos - offset) / max(1, len(cue.text))))
        return cue.start + fraction * (cue.end - cue.start)


def from_cues(cues: list[Cue]) -> ParsedText:
    offsets: list[int] = []
    at = 0
    for cue in cues:
        offsets.append(at)
        at += len(cue.text) + 1  # the "\n" joining cues
    return ParsedText("\n".join(cue.text for cue in cues), tuple(cues), tuple(offsets))


def decode_utf8(data: bytes, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data[:4096]:
        raise UnsupportedMedia(f"{name} is binary or UTF-16, not UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedMedia(
            f"{name} is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8"
        ) from exc


def _require_content(text: str, name: str) -> None:
    if not text.strip():
        raise EmptyMedia(f"{name} contains no text")


def parse_plain(text: str, name: str = "text") -> ParsedText:
    _require_content(text, name)
    return ParsedText(text)


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MediaError(f"{where} must be a number of seconds, got {type(value).__name__}")
    try:
        seconds = float(value)
    except ValueError as exc:
        raise MediaError(f"{where} must be a number of seconds, got {value!r}") from exc
    if not math.isfinite(seconds) or seconds < 0:
        raise MediaError(f"{where} must be a finite, non-negative number of seconds, got {value!r}")
    return seconds


def parse_asr(text: str, name: str = "ASR input") -> ParsedText:
    """MPS `TextType=ASR`: a JSON array of `{"start": s, "end": s, "text": "..."}` (times in seconds)."""
    _require_content(text, name)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MediaError(f"{name} is not valid ASR JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(data, list):
        raise MediaError(f"{name}: ASR JSON must be an array of {{start, end, text}}, got {type(data).__name__}")
    cues: list[Cue] = []
    for i, item in enumerate(data):
        where = f"{name}: ASR item {i}"
        if not isinstance(item, dict):
            raise MediaError(f"{where} must be an object {{start, end, text}}, got {type(item).__name__}")
        missing = [key for key in ("start", "end", "text") if key not in item]
        if missing:
            raise MediaError(f"{where} lacks {', '.join(repr(k) for k in missing)}")
        if not isinstance(item["text"], str):
            raise MediaError(f"{where}: 'text' must be a string")
        start, end = _seconds(item["start"], f"{where} 'start'"), _seconds(item["end"], f"{where} 'end'")
        if end < start:
            raise MediaError(f"{where} ends ({end}) before it starts ({start})")
        cues.append(Cue(start, end, item["text"]))
    if not any(cue.text.strip() for cue in cues):
        raise EmptyMedia(f"{name} has no recognised speech text")
    return from_cues(cues)


def _timestamp(raw: str, where: str) -> float:
    match = _TIMESTAMP.fullmatch(raw.strip())
    if not match:
        raise MediaError(f"{where}: bad timestamp {raw.strip()!r}")
    hours, minutes, secs, millis = match.groups()
    fraction = int(millis.ljust(3, "0")) / 1000 if millis else 0.0
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs) + fraction


def parse_subtitles(text: str, name: str = "subtitles") -> ParsedText:
    """SRT or WebVTT: every `start --> end` line opens a cue whose text runs to the next blank line."""
    _require_content(text, name)
    cues: list[Cue] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "-->" not in line:
            i += 1  # cue numbers, identifiers, the WEBVTT header, NOTE/STYLE blocks
            continue
        left, _, right = line.partition("-->")
        where = f"{name} line {i + 1}"
        start = _timestamp(left, where)
        end = _timestamp(right.strip().split()[0] if right.strip() else "", where)  # VTT settings follow
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip():
            body.append(html.unescape(_TAG.sub("", lines[i])).strip())
            i += 1
        cues.append(Cue(start, max(start, end), " ".join(part for part in body if part)))
    if not cues:
        raise MediaError(f"{name} has no subtitle cues (no 'start --> end' lines)")
    if not any(cue.text.strip() for cue in cues):
        raise EmptyMedia(f"{name} has subtitle timings but no text")
    return from_cues(cues)


def read_text_input(path: Path, text_type: str | None = None) -> ParsedText:
    """Read `path` as plain text, ASR JSON (`text_type="ASR"` or a .json file) or subtitles (.srt/.vtt)."""
    path = Path(path)
    if not path.exists():
        raise MediaNotFound(f"{path} does not exist")
    if not path.is_file():
        raise MediaError(f"{path} is not a file")
    limits = current_limits()
    check_input_size(path, limits)
    if limits.max_text_chars is not None and path.stat().st_size > 4 * limits.max_text_chars:
        # UTF-8 has at most 4 bytes a character: too many characters for sure, and not worth reading.
        check_text_chars(path.stat().st_size // 4, path.name, limits)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror}") from exc
    if not data.strip():
        raise EmptyMedia(f"{path.name} is empty")
    text = decode_utf8(data, path.name)
    del data
    check_text_chars(len(text), path.name, limits)
    suffix = path.suffix.lower()
    if suffix in SUBTITLE_SUFFIXES:
        return parse_subtitles(text, path.name)
    if (text_type or "").upper() == "ASR" or (text_type is None and suffix in ASR_SUFFIXES):
        return parse_asr(text, path.name)
    return parse_plain(text, path.name)
