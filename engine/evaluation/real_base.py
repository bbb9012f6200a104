"""What every part of the real-media corpus shares: the profiles (how much of it a run uses), the corpus object
the runner and reports read, and the helpers that write generated files once and name items."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.evaluation.corpus import CorpusViews, Query, Reference
from engine.synth import audio as sa

GENERATED_VERSION = 3  # bump when an edit or a split changes what a generated file holds (3: more text negatives)
MODALITIES = ("video", "audio", "text")
SR = sa.SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class RealProfile:
    name: str
    video_items: int | None  # library pieces used (None: all)
    video_edits: tuple[str, ...] | None  # None: all
    video_excerpt: float
    audio_tracks: int | None  # tracks considered (library + held out)
    audio_edits: tuple[str, ...] | None
    audio_excerpt: float
    audio_per_edit: int | None  # library tracks each edit is applied to
    text_docs: int | None  # per genre, library and held-out each
    text_edits: tuple[str, ...] | None
    text_per_edit: int  # per genre
    text_excerpt: int
    text_negatives: int | None = None  # held-out items kept as negatives, per genre (None: every one that is fit)


FULL = RealProfile("real-full", None, None, 8.0, None, None, 20.0, 10, 60, None, 8, 1500)
QUICK = RealProfile(
    "real-quick",
    3,
    ("h264_200k", "crop_20%", "rotate_4deg"),
    4.0,
    6,
    ("tempo_+5%", "phone_mulaw_8k"),
    12.0,
    2,
    6,
    ("typos_3%", "inside_other_doc"),
    2,
    800,
    6,
)
PROFILES = {p.name: p for p in (FULL, QUICK)}


@dataclass(slots=True)
class RealCorpus(CorpusViews):
    """Read by the same runner and reports as `engine.evaluation.corpus.Corpus`."""

    root: Path
    profile: RealProfile
    seed: int = 1
    references: list[Reference] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    generated: int = 0
    origin: dict[str, dict] = field(default_factory=dict)  # item id -> where it came from (manifest + span)
    dropped: dict[str, list[str]] = field(default_factory=dict)  # held-out items not used as negatives, and why
    groups: dict[str, str] = field(default_factory=dict)  # query id -> its source (clip, genre), for breakdowns

    def add(self, query: Query, group: str) -> None:
        self.queries.append(query)
        self.groups[query.id] = group


def put(path: Path, write: Callable[[Path], object]) -> bool:
    """Make `path` unless it exists (through a temporary name, renamed when complete); True if it was made."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    write(tmp)
    tmp.replace(path)
    return True


def slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def origin_of(item: dict) -> dict:
    """Where a fetched item came from, as the report names it."""
    return {"package": item["package"], "member": item["member"], "licence": item["licence"]}
