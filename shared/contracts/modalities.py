"""The wire-level face of each modality, in one table: its name, the `FpShotResult` key its matches come back
under, which MPS `ModelId`s hold it, and which file suffixes (and `TextType`s) route to it.

This is the part of a modality that the functions (shared/, an FC layer with no numpy or PyAV) need; the engine's
half (extraction, indexes, pairwise match) is registered in `engine.modalities`. Nothing here imports engine/.

ModelId 12 (video) fingerprints the pictures and the soundtrack (results in `FpShots` and `AudioFpShots`),
13 (audio) the sound only (`AudioFpShots`), 11 (text) the words (`TextFpShots`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

# CreateFpShotDB ModelId: which media a library holds.
MODEL_TEXT, MODEL_VIDEO, MODEL_AUDIO = 11, 12, 13

ShotShape = Literal["media", "text"]  # FpShot (input and duplication time spans) or TextFpShot (texts + fragment)


@dataclass(frozen=True, slots=True)
class ModalitySpec:
    name: str  # "video" | "audio" | "text": the engine registry's key and the stored rows' `kind`
    result_key: str  # the wire key in FpShotResult / the notification: "FpShots", "AudioFpShots", "TextFpShots"
    result_field: str  # the same as an `FpShotResult` attribute
    shape: ShotShape


MODALITIES: tuple[ModalitySpec, ...] = (
    ModalitySpec("video", "FpShots", "fp_shots", "media"),
    ModalitySpec("audio", "AudioFpShots", "audio_fp_shots", "media"),
    ModalitySpec("text", "TextFpShots", "text_fp_shots", "text"),
)
SPEC_BY_NAME: dict[str, ModalitySpec] = {spec.name: spec for spec in MODALITIES}
RESULT_KEYS: tuple[str, ...] = tuple(spec.result_key for spec in MODALITIES)

# Which modalities a library of each ModelId holds. The first is the primary one: it gives the job's duration and
# decides `save` dedup (a video library's soundtrack may well be shared music).
MODALITIES_BY_MODEL: dict[int, tuple[str, ...]] = {
    MODEL_VIDEO: ("video", "audio"),
    MODEL_AUDIO: ("audio",),
    MODEL_TEXT: ("text",),
}
# The library kind of a ModelId: named after its primary modality.
KIND_BY_MODEL: dict[int, str] = {model: names[0] for model, names in MODALITIES_BY_MODEL.items()}
MODEL_BY_KIND: dict[str, int] = {kind: model for model, kind in KIND_BY_MODEL.items()}

# File suffixes, the one classification every route, job and view uses. Anything else is a video (or an image).
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma", ".amr", ".mka"})
PLAIN_TEXT_SUFFIXES = frozenset({".txt", ".text", ".md"})  # TextType Text: ranges in characters
TIMED_TEXT_SUFFIXES = frozenset({".srt", ".vtt", ".json"})  # TextType ASR: subtitles and transcripts, in seconds
TEXT_SUFFIXES = PLAIN_TEXT_SUFFIXES | TIMED_TEXT_SUFFIXES


def suffix_of(name: str) -> str:
    """The lower-cased extension of a path or object key ("" when none)."""
    return posixpath.splitext(str(name).replace("\\", "/"))[1].lower()


def text_type_for(name: str) -> Literal["Text", "ASR"] | None:
    """The `TextType` a text file's suffix implies: Text for plain text, ASR for timed text, None if not text."""
    suffix = suffix_of(name)
    if suffix in PLAIN_TEXT_SUFFIXES:
        return "Text"
    if suffix in TIMED_TEXT_SUFFIXES:
        return "ASR"
    return None


def kind_for(name: str, text_type: str | None = None) -> str:
    """The library kind a file belongs to when a job names no library: text when `TextType` is set, else by
    suffix (text, audio), else video."""
    if text_type or text_type_for(name):
        return "text"
    return "audio" if suffix_of(name) in AUDIO_SUFFIXES else "video"
