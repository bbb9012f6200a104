"""The engine's vocabulary, one small abstraction per concept (in the spirit of python-threatexchange).

- `Modality`: a kind of signal (video frames, audio landmarks, text shingles). It extracts a `Fingerprint` from a
  file and makes indexes for it.
- `Fingerprint`: the compact, serialisable signature of one file in one modality.
- `ModalityIndex`: holds the fingerprints of a library's items and answers "which items, and which time ranges
  of them, does this query copy?". Every modality has a fast index; its oracle in tests is the one generic
  `LinearScanIndex`, which asks the modality to compare the query with every item (`Modality.match`).
- `ExtractOptions`: what a job says about how to read its file (MPS `TextType`); each modality takes what
  concerns it, so generic code passes it on without knowing which modality reads what.
- `Segment` / `ItemMatch`: the answer, in the modality's time unit (seconds; plain text: characters).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, TypeVar


@dataclass(frozen=True, slots=True)
class Segment:
    """`input[input_start, input_end)` copies `ref[ref_start, ref_end)` with `similarity` in [0, 1]."""

    input_start: float
    input_end: float
    ref_start: float
    ref_end: float
    similarity: float
    input_text: str | None = None  # text modality only
    ref_text: str | None = None

    @property
    def input_duration(self) -> float:
        return self.input_end - self.input_start

    @property
    def ref_duration(self) -> float:
        return self.ref_end - self.ref_start


@dataclass(slots=True)
class ItemMatch:
    """One library item the query copies, with its aligned segments (best first)."""

    item_id: int
    segments: list[Segment] = field(default_factory=list)

    @property
    def similarity(self) -> float:
        """MPS: the overall similarity is the average of the slice similarities."""
        if not self.segments:
            return 0.0
        return sum(s.similarity for s in self.segments) / len(self.segments)


class Fingerprint(ABC):
    """A file's signature in one modality. `duration` is in the modality's unit (seconds; text: characters)."""

    duration: float

    @abstractmethod
    def to_bytes(self) -> bytes: ...

    @classmethod
    @abstractmethod
    def from_bytes(cls, data: bytes) -> Fingerprint: ...

    @abstractmethod
    def __len__(self) -> int:
        """Number of elementary units (frames, landmarks, shingles)."""


F = TypeVar("F", bound=Fingerprint)


class ModalityIndex(ABC, Generic[F]):
    """The fingerprints of a library's items, searchable. Item ids are the library's integer ids."""

    @abstractmethod
    def add(self, item_id: int, fingerprint: F) -> None: ...

    @abstractmethod
    def remove(self, item_id: int) -> None: ...

    @abstractmethod
    def search(self, query: F, *, max_items: int = 20) -> list[ItemMatch]:
        """Items the query copies, best first, each with time-aligned segments."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of items held."""

    @abstractmethod
    def memory_bytes(self) -> int:
        """Approximate resident size of the index, for the scale benchmarks."""


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    """Per-job hints on how to read the input file, as the job gave them; a modality uses those it knows."""

    text_type: str | None = None  # MPS `TextType`: "Text" (plain text) or "ASR" (timed transcript)


NO_OPTIONS = ExtractOptions()


class Modality(ABC, Generic[F]):
    """A signal type: how to fingerprint a file, how to compare two fingerprints, and how to index them.

    Registered by name in `engine.modalities`; its wire-level face (result key, ModelIds, suffixes) is the row of
    the same name in `shared.contracts.modalities`.
    """

    name: ClassVar[str]  # "video" | "audio" | "text"
    fingerprint_type: ClassVar[type[Fingerprint]]

    @abstractmethod
    def extract(self, path: Path, options: ExtractOptions = NO_OPTIONS) -> F | None:
        """Fingerprint `path`. None when the file has no track of this modality (a silent video's audio).

        Raises `engine.errors.MediaError` (or a subclass) when the file cannot be read.
        """

    @abstractmethod
    def new_index(self) -> ModalityIndex[F]:
        """The fast index used in production."""

    @abstractmethod
    def match(self, query: F, ref: F) -> list[Segment]:
        """The segments of `ref` (a stored form) that `query` copies, best first: the pairwise comparison whose
        linear scan (`LinearScanIndex`) is what the fast index must answer."""

    def rank(self, matches: list[ItemMatch], max_items: int) -> list[ItemMatch]:
        """The library-level answer from every item's pairwise match: best items first (the modality's order)."""
        matches.sort(key=lambda m: (-m.similarity, m.item_id))
        return matches[:max_items]

    def search_all(self, query: F, refs: Mapping[int, F], max_items: int) -> list[ItemMatch]:
        """Brute force over a whole library: every item's `match`, then `rank`. A modality whose search has
        library-wide stages (audio: rarity over all items, candidate budgets) compares with all items at once."""
        found = [ItemMatch(item_id, segments) for item_id, ref in refs.items() if (segments := self.match(query, ref))]
        return self.rank(found, max_items)

    def reference_index(self) -> ModalityIndex[F]:
        """The oracle in tests: a linear scan with the same semantics as `new_index()`."""
        return LinearScanIndex(self)

    def stored_form(self, fingerprint: F) -> F:
        """What a library keeps of a fingerprint: only what searches *against* the item read (video: one hash a
        frame instead of one per query crop window). Stored items are never searched with, so nothing is lost."""
        return fingerprint

    def load_fingerprint(self, data: bytes) -> F:
        return self.fingerprint_type.from_bytes(data)  # type: ignore[return-value]


class LinearScanIndex(ModalityIndex[F]):
    """The one brute-force index: keeps each item's fingerprint and lets the modality compare the query with
    all of them (`Modality.search_all`). Every modality's oracle."""

    def __init__(self, modality: Modality[F]) -> None:
        self.modality = modality
        self._items: dict[int, F] = {}

    def add(self, item_id: int, fingerprint: F) -> None:
        self._items.pop(int(item_id), None)  # a replaced item goes to the end, as in the fast indexes
        self._items[int(item_id)] = fingerprint

    def remove(self, item_id: int) -> None:
        self._items.pop(int(item_id), None)

    def search(self, query: F, *, max_items: int = 20) -> list[ItemMatch]:
        return self.modality.search_all(query, self._items, max_items)

    def __len__(self) -> int:
        return len(self._items)

    def memory_bytes(self) -> int:
        return sum(len(fp.to_bytes()) for fp in self._items.values())
