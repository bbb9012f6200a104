"""Which modalities a library holds, by MPS `ModelId`, and the modality objects themselves (imported lazily, so
a text-only install or a test never pays for PyAV, and a modality still being written breaks nothing else).

ModelId 12 (video) fingerprints the pictures and the soundtrack (results in `FpShots` and `AudioFpShots`),
13 (audio) the sound only (`AudioFpShots`), 11 (text) the words (`TextFpShots`).
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from engine.core import Modality
from engine.errors import EngineError
from shared.contracts.mps import MODEL_AUDIO, MODEL_TEXT, MODEL_VIDEO

KIND_BY_MODEL: dict[int, str] = {MODEL_VIDEO: "video", MODEL_AUDIO: "audio", MODEL_TEXT: "text"}
MODEL_BY_KIND: dict[str, int] = {kind: model for model, kind in KIND_BY_MODEL.items()}
# The first modality of each model is its primary one: it gives the job's duration and decides `save` dedup.
MODALITIES_BY_MODEL: dict[int, tuple[str, ...]] = {
    MODEL_VIDEO: ("video", "audio"),
    MODEL_AUDIO: ("audio",),
    MODEL_TEXT: ("text",),
}
_CLASSES: dict[str, tuple[str, str]] = {
    "video": ("engine.video", "VideoModality"),
    "audio": ("engine.audio", "AudioModality"),
    "text": ("engine.text", "TextModality"),
}
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma", ".amr", ".mka"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".srt", ".vtt", ".json"})

_instances: dict[str, Modality] = {}
_lock = threading.Lock()


def get_modality(name: str) -> Modality:
    """The (shared, stateless) modality object for "video", "audio" or "text"."""
    if name not in _CLASSES:
        raise EngineError(f"unknown modality {name!r}; known: {', '.join(_CLASSES)}", code="InvalidParameter")
    with _lock:
        if name not in _instances:
            module_name, class_name = _CLASSES[name]
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
        raise EngineError(
            f"unsupported ModelId {model_id!r}: use 12 (video), 13 (audio) or 11 (text)",
            code="InvalidParameter.OutOfRange",
        ) from exc


def model_id_of(kind: str | int) -> int:
    """The MPS ModelId of a kind: "video", "audio", "text", or a ModelId given as int or string."""
    text = str(kind).strip().lower()
    if text.isdigit():
        kind_of(int(text))  # validates
        return int(text)
    if text not in MODEL_BY_KIND:
        raise EngineError(f"unknown library kind {kind!r}: use video, audio or text", code="InvalidParameter")
    return MODEL_BY_KIND[text]


def modality_names(model_id: int) -> tuple[str, ...]:
    kind_of(model_id)
    return MODALITIES_BY_MODEL[int(model_id)]


def modalities_for(model_id: int) -> list[Modality]:
    return [get_modality(name) for name in modality_names(model_id)]


def guess_kind(path: Path | str, text_type: str | None = None) -> str:
    """The library kind a file belongs to when the job names no library: by `TextType`, then by extension."""
    if text_type:
        return "text"
    suffix = Path(path).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    return "video"
