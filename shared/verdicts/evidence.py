"""Match evidence: what an MPS result says about how much of an upload copies each library item.

Computed from the authoritative `FpShotJob` (QueryFpShotJobList) alone, in pure Python, so the cloud functions
(an FC layer without numpy) and the local tools compute the same numbers. Per matched library item:

- `matched`: the upload's covered length, the union of its matched input ranges across modalities (seconds, or
  characters for a plain-text upload), so a picture slice and a soundtrack slice over the same seconds count once;
- `upload_share`: `matched` / the upload's length (the job's `Duration`, which MPS reports as the input's length);
- `library_matched` and `library_share`: the covered part of the library item. MPS reports no library item
  lengths, so `library_share` uses the item's length when the caller knows it (the library item's own job, as
  stored by the same pipeline) and is None otherwise; text slices carry no library range at all, so for text the
  library side is approximated by the copied text's length (`approximated` names every such approximation);
- `modalities`: which of pictures (video), soundtrack (audio) and text agree, and seconds per modality;
- `best_similarity` (the best slice) and `similarity` (MPS's item similarity, the mean of its slices).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from shared.contracts.modalities import MODALITIES, text_type_for
from shared.contracts.mps import FpShot, FpShotJob, TextFpShot

Span = tuple[float, float]
# How each modality is named to a reviewer (YouTube Content ID's "audio", "video", "both" vocabulary).
MODALITY_LABELS: dict[str, str] = {"video": "pictures", "audio": "soundtrack", "text": "text"}


def covered(spans: Iterable[Span]) -> float:
    """The length of the union of `[start, end)` spans."""
    total = 0.0
    end_so_far = float("-inf")
    for start, end in sorted(spans):
        if end <= end_so_far:
            continue
        total += end - max(start, end_so_far)
        end_so_far = end
    return total


@dataclass(slots=True)
class ItemEvidence:
    primary_key: str
    unit: str  # "s", or "chars" for a plain-text upload's text matches
    matched: float  # the upload's covered length (union across modalities)
    upload_share: float | None  # matched / upload length; None when the upload length is unknown
    library_matched: float  # the library item's covered length
    library_share: float | None  # library_matched / item length; None when the item's length is unknown
    modalities: dict[str, float]  # modality -> covered upload length in that modality
    best_similarity: float
    similarity: float  # MPS's item similarity (mean of the slices)
    slices: int
    approximated: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [MODALITY_LABELS.get(name, name) for name in self.modalities]

    @property
    def agreement(self) -> str:
        """`both` when pictures and soundtrack agree, else the one modality (`video`, `audio`, `text`)."""
        names = set(self.modalities)
        if {"video", "audio"} <= names:
            return "both"
        return "+".join(sorted(names)) or "none"


@dataclass(slots=True)
class Evidence:
    upload_length: float  # seconds, or characters for plain text; 0 when MPS did not report it
    unit: str
    items: list[ItemEvidence] = field(default_factory=list)

    @property
    def best(self) -> ItemEvidence | None:
        """The item covering most of the upload (ties: the most similar)."""
        return max(self.items, key=lambda i: (i.matched, i.best_similarity), default=None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        items = [ItemEvidence(**item) for item in data.get("items", [])]
        return cls(float(data.get("upload_length", 0.0)), str(data.get("unit", "s")), items)


def _text_unit(job: FpShotJob, object_key: str) -> str:
    config = job.fp_shot_config
    text_type = config.text_type if config else None
    if text_type in ("Text", "ASR"):
        return "chars" if text_type == "Text" else "s"
    return "chars" if text_type_for(object_key) == "Text" else "s"


def job_evidence(
    job: FpShotJob, *, object_key: str = "", library_lengths: Mapping[str, float] | None = None
) -> Evidence:
    """Evidence for every library item `job` matched. `library_lengths`: known item lengths by PrimaryKey."""
    lengths = library_lengths or {}
    text_unit = _text_unit(job, object_key)
    upload_length = float(job.duration or 0)
    result = job.fp_shot_result
    upload_spans: dict[str, dict[str, list[Span]]] = {}
    library_spans: dict[str, list[Span]] = {}
    library_text: dict[str, int] = {}
    sims: dict[str, list[float]] = {}
    item_similarity: dict[str, float] = {}
    units: dict[str, str] = {}
    if result is not None and job.state == "Success":
        for spec in MODALITIES:
            for shot in result.matches_of(spec.name):
                key = shot.primary_key
                item_similarity[key] = max(item_similarity.get(key, 0.0), float(shot.similarity))
                per_modality = upload_spans.setdefault(key, {})
                spans = per_modality.setdefault(spec.name, [])
                if isinstance(shot, TextFpShot):
                    units[key] = text_unit
                    for piece in shot.slices:
                        start = float(piece.input_fragment.start)
                        spans.append((start, start + float(piece.input_fragment.duration)))
                        library_text[key] = library_text.get(key, 0) + len(piece.duplication_text)
                        sims.setdefault(key, []).append(float(piece.similarity))
                else:
                    assert isinstance(shot, FpShot)
                    units.setdefault(key, "s")
                    for media in shot.slices:
                        start = float(media.input.start)
                        spans.append((start, start + float(media.input.duration)))
                        dup = float(media.duplication.start)
                        library_spans.setdefault(key, []).append((dup, dup + float(media.duplication.duration)))
                        sims.setdefault(key, []).append(float(media.similarity))
    unit = text_unit if any(u == "chars" for u in units.values()) else "s"
    items: list[ItemEvidence] = []
    for key, per_modality in upload_spans.items():
        approximated: list[str] = []
        matched = covered(span for spans in per_modality.values() for span in spans)
        if key in library_spans:
            library_matched = covered(library_spans[key])
        else:
            library_matched = float(library_text.get(key, 0))
            approximated.append("library_matched: MPS reports no library range for text; the copied text's length")
        item_length = lengths.get(key)
        if item_length:
            library_share: float | None = min(1.0, library_matched / item_length)
            if key not in library_spans and units.get(key) == "s":
                approximated.append("library_share: characters of copied text against the item's length")
        else:
            library_share = None
            approximated.append("library_share: the library item's length is unknown")
        upload_share = min(1.0, matched / upload_length) if upload_length > 0 else None
        if upload_length > 0:  # the wire type is an integer
            approximated.append("upload_share: MPS rounds the upload's length to whole units")
        items.append(
            ItemEvidence(
                primary_key=key,
                unit=units.get(key, "s"),
                matched=round(matched, 3),
                upload_share=None if upload_share is None else round(upload_share, 4),
                library_matched=round(library_matched, 3),
                library_share=None if library_share is None else round(library_share, 4),
                modalities={name: round(covered(spans), 3) for name, spans in per_modality.items() if spans},
                best_similarity=round(max(sims.get(key, [0.0])), 4),
                similarity=round(item_similarity.get(key, 0.0), 4),
                slices=len(sims.get(key, [])),
                approximated=approximated,
            )
        )
    items.sort(key=lambda i: (-i.matched, -i.best_similarity, i.primary_key))
    return Evidence(upload_length=upload_length, unit=unit, items=items)


def job_from_result_json(result_json: str) -> FpShotJob | None:
    """The stored authoritative job (`JobRecord.result_json`), or None when nothing usable was stored."""
    if not result_json:
        return None
    try:
        return FpShotJob.model_validate(json.loads(result_json))
    except ValueError:
        return None
