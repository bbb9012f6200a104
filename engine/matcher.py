"""The job runner: one file + an `FpShotConfig` in, an MPS-shaped `FpShotResult` out (what `SubmitFpShotJob` then
`QueryFpShotJobList` give in the cloud).

Choices where MPS leaves room, kept in one place:
- No `FpDBId`: the job uses the default library of the file's kind ("omitted ⇒ default library", doc 93568),
  created on first use. The kind is text when `TextType` is set or the suffix is a text one, audio for audio
  suffixes, otherwise video (`shared.contracts.modalities.kind_for`, the one classification).
- `save` stores unless the primary modality (video for a video library, whose soundtrack may well be shared
  music; audio; text) matches an item with similarity ≥ `SimilarityThreshold` (default 0.8).
- A file is never reported as a copy of the item stored under its own `PrimaryKey`, so resubmitting a key is
  idempotent: it replaces the stored item (keeping its FileId) instead of finding itself.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from engine.core import NO_OPTIONS, ExtractOptions, Fingerprint, ItemMatch
from engine.errors import EmptyMedia
from engine.library import ItemInfo, LibraryInfo, LibraryStore
from engine.modalities import get_modality, guess_kind, modality_names, model_id_of
from shared.contracts.modalities import MODALITIES
from shared.contracts.mps import (
    FpShot,
    FpShotConfig,
    FpShotResult,
    FpShots,
    FpShotSlice,
    FpShotSlices,
    TextFpShot,
    TextFpShots,
    TextFpShotSlice,
    TextFpShotSlices,
    TimeSpan,
)

DEFAULT_SIMILARITY_THRESHOLD = 0.8
DEFAULT_MAX_ITEMS = 20


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What a finished job reports: the result, the library used, and the stored item if one was stored."""

    result: FpShotResult
    library: LibraryInfo
    duration: float  # the input's length: seconds (plain text: characters)
    stored: ItemInfo | None = None
    duplicate: bool = False  # `save` found a copy at or above the threshold (and so did not store)

    @property
    def file_id(self) -> str | None:
        return self.stored.file_id if self.stored else None


def _span(start: float, end: float) -> TimeSpan:
    # Millisecond precision: fingerprints are not finer than that, and "46.0000000001" helps nobody.
    return TimeSpan(start=round(start, 3), duration=round(max(0.0, end - start), 3))


def to_fp_shot(item: ItemInfo, match: ItemMatch) -> FpShot:
    slices = [
        FpShotSlice(
            input=_span(s.input_start, s.input_end),
            duplication=_span(s.ref_start, s.ref_end),
            similarity=s.similarity,
        )
        for s in match.segments
    ]
    return FpShot(
        primary_key=item.primary_key, similarity=match.similarity, fp_shot_slices=FpShotSlices(fp_shot_slice=slices)
    )


def to_text_fp_shot(item: ItemInfo, match: ItemMatch) -> TextFpShot:
    slices = [
        TextFpShotSlice(
            similarity=s.similarity,
            input_text=s.input_text or "",
            duplication_text=s.ref_text or "",
            input_fragment=_span(s.input_start, s.input_end),
        )
        for s in match.segments
    ]
    return TextFpShot(
        primary_key=item.primary_key,
        similarity=match.similarity,
        text_fp_shot_slices=TextFpShotSlices(text_fp_shot_slice=slices),
    )


def build_result(model_names: tuple[str, ...], found: dict[str, list[tuple[ItemInfo, ItemMatch]]]) -> FpShotResult:
    """The result in MPS's shape: one list per modality the library holds, empty when nothing matched."""
    result = FpShotResult()
    for spec in MODALITIES:
        if spec.name not in model_names:
            continue
        hits = found.get(spec.name, [])
        if spec.shape == "text":
            shots: FpShots | TextFpShots = TextFpShots(text_fp_shot=[to_text_fp_shot(i, m) for i, m in hits])
        else:
            shots = FpShots(fp_shot=[to_fp_shot(i, m) for i, m in hits])
        setattr(result, spec.result_field, shots)
    return result


def extract_options(config: FpShotConfig) -> ExtractOptions:
    """What a job's config says about reading its file, for whichever modalities read it."""
    return ExtractOptions(text_type=config.text_type)


class Matcher:
    """Runs fingerprint jobs against a `LibraryStore`. Thread-safe: a worker pool may share one instance."""

    def __init__(self, store: LibraryStore, *, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self.store = store
        self.max_items = max_items

    def resolve_library(self, path: Path, config: FpShotConfig) -> LibraryInfo:
        if config.fp_db_id:
            return self.store.get_library(config.fp_db_id)
        return self.store.default_library(model_id_of(guess_kind(path, extract_options(config))))

    def extract(self, path: Path, model_id: int, options: ExtractOptions = NO_OPTIONS) -> dict[str, Fingerprint | None]:
        """Every fingerprint the library kind needs. Raises `MediaError` when the file has none of them."""
        names = modality_names(model_id)
        fingerprints = {name: get_modality(name).extract(path, options) for name in names}
        if all(fp is None for fp in fingerprints.values()):
            raise EmptyMedia(f"{path.name} has no {' or '.join(names)} to fingerprint")
        return fingerprints

    def run_job(
        self,
        path: Path | str,
        config: FpShotConfig,
        input_file: str | None = None,
        *,
        min_similarity: float = 0.0,
    ) -> JobOutcome:
        """Fingerprint `path`, search and/or store as `config.save_type` says, and report like MPS.

        `input_file` describes the source for `ListFpShotFiles` (default: the path). `min_similarity` drops
        matched items below it from the report (it does not change what `save` considers a duplicate).
        """
        path = Path(path)
        library = self.resolve_library(path, config)
        names = modality_names(library.model_id)
        fingerprints = self.extract(path, library.model_id, extract_options(config))
        primary = next(name for name in names if fingerprints[name] is not None)
        duration = float(fingerprints[primary].duration)  # type: ignore[union-attr]
        threshold = DEFAULT_SIMILARITY_THRESHOLD if config.similarity_threshold is None else config.similarity_threshold

        found: dict[str, list[tuple[ItemInfo, ItemMatch]]] = {}
        stored: ItemInfo | None = None
        duplicate = False
        # Only `save` decides from its own search whether to store: that pair must not interleave with another job
        # on the library. Other save types need no more than each search and store being safe on its own.
        atomic = self.store.library_lock(library.fp_db_id) if config.save_type == "save" else nullcontext()
        with atomic:
            if config.save_type != "onlysave":
                for name, fingerprint in fingerprints.items():
                    if fingerprint is None:
                        found[name] = []
                        continue
                    hits = self.store.search(library.fp_db_id, name, fingerprint, max_items=self.max_items + 1)
                    found[name] = [(i, m) for i, m in hits if i.primary_key != config.primary_key][: self.max_items]
                duplicate = any(m.similarity >= threshold for _, m in found.get(primary, []))
            store = config.save_type in ("forcesave", "onlysave") or (config.save_type == "save" and not duplicate)
            if store:
                stored = self.store.add_item(
                    library.fp_db_id,
                    config.primary_key,
                    fingerprints,
                    input_file=input_file if input_file is not None else str(path),
                    duration=duration,
                )
        if config.save_type == "onlysave":
            result = FpShotResult()  # nothing was searched
        else:
            reported = {n: [(i, m) for i, m in hits if m.similarity >= min_similarity] for n, hits in found.items()}
            result = build_result(names, reported)
        return JobOutcome(result=result, library=library, duration=duration, stored=stored, duplicate=duplicate)
