"""What the review page shows, computed from stored rows (pure Python, no web framework): the timeline of
aligned slices per modality, thumbnail moments, and text passages with the copied spans marked."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from shared.ports import MatchRow
from shared.verdicts.evidence import MODALITY_LABELS

MAX_MOMENTS = 6  # thumbnail pairs per matched item (the rest are counted, "+N more")


@dataclass(frozen=True, slots=True)
class Bar:
    left: float  # percent of the upload's length
    width: float
    label: str
    similarity: float


@dataclass(slots=True)
class Lane:
    modality: str
    label: str
    bars: list[Bar] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Moment:
    kind: str
    upload_time: float
    library_time: float
    similarity: float


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    copied: bool


@dataclass(slots=True)
class Passage:
    similarity: float
    where: str
    upload: list[Piece]
    library: list[Piece]


def timeline(rows: list[MatchRow], length: float, unit: str) -> list[Lane]:
    """One lane per modality; bars at the upload's matched ranges (percent of `length`, or of the furthest
    slice end when the length is unknown)."""
    span = length if length > 0 else max((r.input_start + r.input_duration for r in rows), default=0.0)
    lanes: dict[str, Lane] = {}
    for row in sorted(rows, key=lambda r: (r.kind, r.input_start)):
        lane = lanes.setdefault(row.kind, Lane(row.kind, MODALITY_LABELS.get(row.kind, row.kind)))
        if span <= 0:
            continue
        left = max(0.0, min(100.0, 100.0 * row.input_start / span))
        width = max(0.5, min(100.0 - left, 100.0 * row.input_duration / span))
        end = row.input_start + row.input_duration
        where = (
            f"{row.input_start:.0f}–{end:.0f} chars"
            if unit == "chars" and row.kind == "text"
            else (f"{row.input_start:.1f}–{end:.1f}s")
        )
        lane.bars.append(Bar(round(left, 2), round(width, 2), where, row.similarity))
    return list(lanes.values())


def moments(rows: list[MatchRow]) -> tuple[list[Moment], int]:
    """Aligned moments (the middle of each picture or soundtrack slice) for thumbnails, and how many more."""
    media = [r for r in rows if r.kind != "text" and r.duplication_duration > 0]
    media.sort(key=lambda r: (r.kind != "video", -r.input_duration))
    picked = [
        Moment(
            r.kind,
            round(r.input_start + r.input_duration / 2, 2),
            round(r.duplication_start + r.duplication_duration / 2, 2),
            r.similarity,
        )
        for r in media[:MAX_MOMENTS]
    ]
    return picked, max(0, len(media) - MAX_MOMENTS)


_WORDS = re.compile(r"\S+|\s+")


def _marked(tokens: list[str], spans: list[tuple[int, int]]) -> list[Piece]:
    copied = [False] * len(tokens)
    for start, size in spans:
        for i in range(start, start + size):
            copied[i] = True
    pieces: list[Piece] = []
    for token, flag in zip(tokens, copied, strict=True):
        flag = flag or (token.isspace() and bool(pieces) and pieces[-1].copied)
        if pieces and pieces[-1].copied == flag:
            pieces[-1] = Piece(pieces[-1].text + token, flag)
        else:
            pieces.append(Piece(token, flag))
    return pieces


def passages(rows: list[MatchRow], unit: str) -> list[Passage]:
    """Text slices side by side; words both texts share (in order) are marked copied, so typos stand out."""
    out: list[Passage] = []
    for row in rows:
        if row.kind != "text":
            continue
        left, right = _WORDS.findall(row.input_text), _WORDS.findall(row.duplication_text)
        norm = [t.lower() for t in left], [t.lower() for t in right]
        blocks = difflib.SequenceMatcher(None, norm[0], norm[1], autojunk=False).get_matching_blocks()
        end = row.input_start + row.input_duration
        where = f"chars {row.input_start:.0f}–{end:.0f}" if unit == "chars" else f"{row.input_start:.1f}–{end:.1f}s"
        out.append(
            Passage(
                row.similarity,
                where,
                _marked(left, [(b.a, b.size) for b in blocks if b.size]),
                _marked(right, [(b.b, b.size) for b in blocks if b.size]),
            )
        )
    return out
