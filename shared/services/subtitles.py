"""Subtitles (.srt, .vtt) → MPS ASR JSON: a text DNA job takes `TextType=ASR` input only as a JSON array of
`{"start": s, "end": s, "text": "..."}` (seconds), so submit_on_upload converts a subtitle file and submits the
converted object instead. The cue rules are the engine's (`engine/text/parse.py`), so a subtitle file and its
conversion fingerprint alike: every `start --> end` line opens a cue whose text runs to the next blank line;
cue numbers, the WEBVTT header and NOTE/STYLE blocks are skipped; tags (<i>, <v Bob>, {\an8}) are dropped.
"""

from __future__ import annotations

import html
import json
import re

SUBTITLE_SUFFIXES = frozenset({".srt", ".vtt"})
_TIMESTAMP = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")


class SubtitleError(ValueError):
    """The file is not subtitles MPS could take once converted (no cues, bad timings, not UTF-8)."""


def _seconds(raw: str, where: str) -> float:
    match = _TIMESTAMP.fullmatch(raw.strip())
    if not match:
        raise SubtitleError(f"{where}: bad timestamp {raw.strip()!r}")
    hours, minutes, secs, millis = match.groups()
    fraction = int(millis.ljust(3, "0")) / 1000 if millis else 0.0
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(secs) + fraction


def subtitle_cues(text: str, name: str = "subtitles") -> list[dict[str, float | str]]:
    """The cues of an SRT or WebVTT document as ASR items, in file order."""
    cues: list[dict[str, float | str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "-->" not in line:
            i += 1
            continue
        left, _, right = line.partition("-->")
        where = f"{name} line {i + 1}"
        start = _seconds(left, where)
        end = _seconds(right.strip().split()[0] if right.strip() else "", where)  # VTT cue settings follow
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip():
            body.append(html.unescape(_TAG.sub("", lines[i])).strip())
            i += 1
        cues.append({"start": start, "end": max(start, end), "text": " ".join(part for part in body if part)})
    if not cues:
        raise SubtitleError(f"{name} has no subtitle cues (no 'start --> end' lines)")
    if not any(str(cue["text"]).strip() for cue in cues):
        raise SubtitleError(f"{name} has subtitle timings but no text")
    return cues


def subtitles_to_asr(data: bytes, name: str = "subtitles") -> bytes:
    """SRT/WebVTT bytes (UTF-8, with or without a BOM) → ASR JSON bytes (UTF-8)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubtitleError(f"{name} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    return json.dumps(subtitle_cues(text, name), ensure_ascii=False).encode("utf-8")
