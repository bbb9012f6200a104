"""The engine's modality registry: the one place a modality is plugged in (like python-threatexchange's manifest).

`REGISTRY` names each modality's class, imported lazily so a text-only install or a test never pays for PyAV,
and a modality still being written breaks nothing else. Its wire-level face (the result key such as
`AudioFpShots`, which `ModelId`s hold it, its file suffixes) is the row of the same name in
`shared.contracts.modalities`, which the functions read without importing the engine.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from engine.core import NO_OPTIONS, ExtractOptions, Modality
from engine.errors import EngineError
from shared.contracts.modalities import KIND_BY_MODEL, MODALITIES, MODALITIES_BY_MODEL, MODEL_BY_KIND, kind_for

# Adding a modality: its package (a `Modality` subclass) plus one line here (and its row in the shared table).
REGISTRY: dict[str, str] = {
    "video": "engine.video:VideoModality",
    "audio": "engine.audio:AudioModality",
    "text": "engine.text:TextModality",
}
# Every wire row has its engine half and vice versa (checked at import: a half-registered modality fails early).
if set(REGISTRY) != {spec.name for spec in MODALITIES}:
    raise RuntimeError("engine.modalities.REGISTRY and shared.contracts.modalities.MODALITIES disagree")

_instances: dict[str, Modality] = {}
_lock = threading.Lock()


def get_modality(name: str) -> Modality:
    """The (shared, stateless) modality object registered under `name`."""
    if name not in REGISTRY:
        raise EngineError(f"unknown modality {name!r}; known: {', '.join(REGISTRY)}", code="InvalidParameter")
    with _lock:
        if name not in _instances:
            module_name, class_name = REGISTRY[name].split(":")
            try:
                cls = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError) as exc:
                raise EngineError(f"the {name} modality is not available in this install: {exc}") from exc
            _instances[name] = cls()
        return _instances[name]


def kind_of(model_id: int) -> str:
    try:
        return KIND_BY_MODEL[int(model_id)]
    except (KeyError, ValueError) as exc:
        known = [f"{model} ({kind})" for model, kind in KIND_BY_MODEL.items()]
        raise EngineError(
            f"unsupported ModelId {model_id!r}: use {', '.join(known[:-1])} or {known[-1]}",
            code="InvalidParameter.OutOfRange",
        ) from exc


def model_id_of(kind: str | int) -> int:
    """The MPS ModelId of a kind: "video", "audio", "text", or a ModelId given as int or string."""
    text = str(kind).strip().lower()
    if text.isdigit():
        kind_of(int(text))  # validates
        return int(text)
    if text not in MODEL_BY_KIND:
        kinds = list(MODEL_BY_KIND)
        raise EngineError(
            f"unknown library kind {kind!r}: use {', '.join(kinds[:-1])} or {kinds[-1]}", code="InvalidParameter"
        )
    return MODEL_BY_KIND[text]


def modality_names(model_id: int) -> tuple[str, ...]:
    kind_of(model_id)
    return MODALITIES_BY_MODEL[int(model_id)]


def modalities_for(model_id: int) -> list[Modality]:
    return [get_modality(name) for name in modality_names(model_id)]


def guess_kind(path: Path | str, options: ExtractOptions = NO_OPTIONS) -> str:
    """The library kind a file belongs to when the job names no library (`shared.contracts.modalities.kind_for`)."""
    return kind_for(str(path), options.text_type)
