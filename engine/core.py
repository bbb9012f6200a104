"""The engine's vocabulary, one small abstraction per concept (in the spirit of python-threatexchange).

- `Modality`: a kind of signal (video frames, audio landmarks, text shingles). It extracts a `Fingerprint` from a
  file and makes indexes for it.
- `Fingerprint`: the compact, serialisable signature of one file in one modality.
- `ModalityIndex`: holds the fingerprints of a library's items and answers "which items, and which time ranges
  of them, does this query copy?". Every modality has a fast index and a brute-force `reference_index()` that
  tests use as the oracle.
- `Segment` / `ItemMatch`: the answer, in the modality's time unit (seconds; plain text: characters).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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


class Modality(ABC, Generic[F]):
    """A signal type: how to fingerprint a file, and how to index and search those fingerprints."""

    name: ClassVar[str]  # "video" | "audio" | "text"
    fingerprint_type: ClassVar[type[Fingerprint]]

    @abstractmethod
    def extract(self, path: Path, *, text_type: str | None = None) -> F | None:
        """Fingerprint `path`. None when the file has no track of this modality (a silent video's audio).

        Raises `engine.errors.MediaError` (or a subclass) when the file cannot be read.
        """

    @abstractmethod
    def new_index(self) -> ModalityIndex[F]:
        """The fast index used in production."""

    @abstractmethod
    def reference_index(self) -> ModalityIndex[F]:
        """A brute-force index with the same semantics: the oracle in tests."""

    def load_fingerprint(self, data: bytes) -> F:
        return self.fingerprint_type.from_bytes(data)  # type: ignore[return-value]
