"""Peers the engine is compared with, each optional: a peer that is not installed is reported as such.

Every system (the engine included, see `engine.evaluation.runner`) answers the same two calls: `index(refs)` with
the library, then `predict(path)` per query -> the references it says the query copies, with aligned boxes when
the system localises copies (None when it only says "match").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from engine.evaluation.corpus import Reference
from engine.evaluation.metrics import Box


@dataclass(frozen=True, slots=True)
class Prediction:
    ref_id: str
    score: float  # the system's own similarity (or match percentage), for the JSON only
    boxes: tuple[Box, ...] | None = field(default=())  # None: the system does not localise


@dataclass(frozen=True, slots=True)
class Availability:
    installed: bool
    detail: str  # version, or why it is missing and how to install it


class System(Protocol):
    name: str
    modality: str
    localises: bool

    def index(self, refs: list[Reference]) -> None: ...

    def predict(self, path: Path) -> list[Prediction]: ...
