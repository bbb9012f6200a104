"""The edits a copy goes through, per modality, each with what it does to time (for the ground truth).

Video and audio queries are an excerpt of a reference (`[start, start + length)`) edited by one transform; text
queries an excerpt edited likewise. Transforms are looked up by name, so corpus workers (separate processes)
are sent names and numbers only. The media operations themselves come from `engine.synth`; picture-in-picture,
which `engine.synth.video` lacks, is `PictureInPicture` below.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

from engine.evaluation.metrics import Box
from engine.synth import audio as sa
from engine.synth import text as st
from engine.synth import video as sv

# ------------------------------------------------------------------------------------------ video

VIDEO_SIZE = (320, 240)  # references: small, so ~100 copies are made and searched in minutes on two cores
VIDEO_FPS = 15.0

@dataclass(frozen=True, slots=True)
class PictureInPicture:
    """TRECVID's "picture-in-picture type 1": the copy, shrunk to `scale`, in front of unrelated video `seed`;
    (`x`, `y`) place it within the free space (0 = left/top, 1 = right/bottom)."""

    seed: int
    scale: float = 0.5
    x: float = 0.85
    y: float = 0.2

    def __call__(self, clip: sv.Clip) -> sv.Clip:
        width, height = clip.size
        out = sv.render_clip(self.seed, len(clip.frames) / clip.fps, (width, height), clip.fps).frames
        out = out[: len(clip.frames)].copy()
        iw, ih = max(2, round(width * self.scale / 2) * 2), max(2, round(height * self.scale / 2) * 2)
        x0, y0 = round((width - iw) * self.x), round((height - ih) * self.y)
        for i, rgb in enumerate(clip.frames[: len(out)]):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24")
            out[i, y0 : y0 + ih, x0 : x0 + iw] = frame.reformat(width=iw, height=ih, interpolation="AREA").to_ndarray()
        return sv.Clip(out, clip.fps)


@dataclass(frozen=True, slots=True)
class VideoTransform:
    name: str
    ops: Callable[[int], list[sv.Op]]  # unrelated-content seed -> ops
    bitrate: int | None = None  # output bitrate (None: the writer's visually clean default)
    speed: float = 1.0  # playback speed factor (the copy lasts length / speed)
    before: float = 0.0  # seconds of unrelated video before the copy
    whole: bool = False  # the whole reference rather than an excerpt

    def box(self, start: float, length: float, fps: float) -> Box:
        """Ground truth of a copy of reference [start, start + length) at `fps`."""
        frames = round(length * fps)
        shown = max(1, round(frames / self.speed)) / fps if self.speed != 1.0 else frames / fps
        return (self.before, self.before + shown, start, start + frames / fps)


def _video_catalog() -> dict[str, VideoTransform]:
    v = [
        VideoTransform("whole_reencode_60k", lambda _: [], bitrate=60_000, whole=True),
        VideoTransform("reencode_60k", lambda _: [], bitrate=60_000),
        VideoTransform("scale_0.5x", lambda _: [sv.Scale(VIDEO_SIZE[0] // 2, VIDEO_SIZE[1] // 2)]),
        VideoTransform("crop_10%", lambda _: [sv.Crop(0.1, 0.1)]),
        VideoTransform("crop_20%", lambda _: [sv.Crop(0.2, 0.2)]),
        VideoTransform("letterbox_25%", lambda _: [sv.Letterbox(0.25)]),
        VideoTransform("brightness_+40", lambda _: [sv.Brightness(40.0)]),
        VideoTransform("contrast_x1.5", lambda _: [sv.Contrast(1.5)]),
        VideoTransform("gamma_0.6", lambda _: [sv.Gamma(0.6)]),
        VideoTransform("grayscale", lambda _: [sv.Grayscale()]),
        VideoTransform("text_overlay", lambda _: [sv.TextOverlay()]),
        VideoTransform("logo_overlay", lambda _: [sv.LogoOverlay()]),
        VideoTransform("fps_15_to_24", lambda _: [sv.ChangeFps(24.0)]),
        VideoTransform("hflip", lambda _: [sv.HFlip()]),
        VideoTransform("speed_+10%", lambda _: [sv.Speed(1.1)], speed=1.1),
        VideoTransform("speed_-10%", lambda _: [sv.Speed(0.9)], speed=0.9),
        VideoTransform("pip_0.5x", lambda seed: [PictureInPicture(seed)]),
        VideoTransform("inserted_at_8s", lambda seed: [sv.Embed(seed, 8.0, 6.0)], before=8.0),
    ]
    return {t.name: t for t in v}


VIDEO_TRANSFORMS = _video_catalog()
# Benign edits applied to negatives in turn: unrelated videos that went through the usual processing.
VIDEO_NEGATIVE_OPS: tuple[Callable[[], list[sv.Op]], ...] = (
    lambda: [],
    lambda: [sv.Letterbox(0.25)],
    lambda: [sv.Grayscale()],
    lambda: [sv.TextOverlay()],
    lambda: [sv.LogoOverlay()],
    lambda: [sv.HFlip()],
)

# ------------------------------------------------------------------------------------------ audio

SR = sa.SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class AudioTransform:
    name: str
    edit: Callable[[np.ndarray, int], np.ndarray] = lambda x, _: x  # (samples, seed) -> samples
    suffix: str = ".wav"
    bitrate: int | None = None
    whole: bool = False  # the whole reference rather than an excerpt
    speed: float = 1.0
    host_pad: float = 0.0  # > 0: the copy sits inside unrelated music, this many seconds in

    def box(self, start: float, samples: int) -> Box:
        length = samples / SR
        shown = round(samples / self.speed) / SR if self.speed != 1.0 else length
        return (self.host_pad, self.host_pad + shown, start, start + length)


def _audio_catalog() -> dict[str, AudioTransform]:
    a = [
        AudioTransform("whole_mp3_64k", suffix=".mp3", bitrate=64_000, whole=True),
        AudioTransform("clip_mp3_64k", suffix=".mp3", bitrate=64_000),
        AudioTransform("noise_10dB", lambda x, s: sa.add_noise(x, 10.0, seed=s)),
        AudioTransform("noise_0dB", lambda x, s: sa.add_noise(x, 0.0, seed=s)),
        AudioTransform("bandpass_phone", lambda x, _: sa.band_pass(x, SR)),
        AudioTransform("speed_+3%", lambda x, _: sa.speed(x, 1.03), speed=1.03),
        AudioTransform("speed_-3%", lambda x, _: sa.speed(x, 0.97), speed=0.97),
        AudioTransform("speed_+5%", lambda x, _: sa.speed(x, 1.05), speed=1.05),
        AudioTransform("speed_-5%", lambda x, _: sa.speed(x, 0.95), speed=0.95),
        AudioTransform("inside_other_audio", host_pad=7.0),
    ]
    return {t.name: t for t in a}


AUDIO_TRANSFORMS = _audio_catalog()

# ------------------------------------------------------------------------------------------ text


def _typos(rate: float) -> Callable[[str, int], tuple[str, list[tuple[int, int, int, int]]]]:
    def edit(text: str, seed: int) -> tuple[str, list[tuple[int, int, int, int]]]:
        out = st.char_edits(text, rate, seed)
        return out, [(0, len(out), 0, len(text))]

    return edit


def _same_span(fn: Callable[[str, int], str]) -> Callable[[str, int], tuple[str, list[tuple[int, int, int, int]]]]:
    def edit(text: str, seed: int) -> tuple[str, list[tuple[int, int, int, int]]]:
        out = fn(text, seed)
        return out, [(0, len(out), 0, len(text))]

    return edit


def reorder_with_truth(text: str, seed: int) -> tuple[str, list[tuple[int, int, int, int]]]:
    """`engine.synth.text.reorder_sentences`, also returning one box per sentence (query span, source span)."""
    parts = st.sentences(text)
    origin, cursor = [], 0
    for part in parts:
        at = text.find(part, cursor)
        origin.append(at)
        cursor = at + len(part)
    order = list(range(len(parts)))
    random.Random(seed).shuffle(order)  # the same permutation `reorder_sentences` applies to its list
    out: list[str] = []
    boxes: list[tuple[int, int, int, int]] = []
    at = 0
    for i in order:
        piece = parts[i] if parts[i][-1:].isspace() or parts[i][-1:] in "。！？" else parts[i] + " "
        body = len(parts[i].rstrip())  # trailing whitespace is no content
        box = (at, at + body, origin[i], origin[i] + body)
        # Sentences that stayed neighbours (same gap in both texts) are one copied passage, not two.
        if boxes and 0 <= box[0] - boxes[-1][1] == box[2] - boxes[-1][3] <= 2:
            prev = boxes.pop()
            box = (prev[0], box[1], prev[2], box[3])
        boxes.append(box)
        out.append(piece)
        at += len(piece)
    result = "".join(out)
    if result != st.reorder_sentences(text, seed):  # the truth must describe exactly what the generator does
        raise AssertionError("reorder_with_truth diverged from engine.synth.text.reorder_sentences")
    return result, boxes


@dataclass(frozen=True, slots=True)
class TextTransform:
    name: str
    edit: Callable[[str, int], tuple[str, list[tuple[int, int, int, int]]]]  # boxes relative to the excerpt
    languages: tuple[str, ...] = ("en", "zh")
    host: bool = False  # the edited excerpt is inserted into an unrelated document


def _text_catalog() -> dict[str, TextTransform]:
    t = [
        TextTransform("typos_2%", _typos(0.02)),
        TextTransform("typos_5%", _typos(0.05)),
        TextTransform("case_change", _same_span(st.change_case), languages=("en",)),
        TextTransform("punctuation", _same_span(st.change_punctuation)),
        TextTransform("sentence_reorder", reorder_with_truth),
        TextTransform("inside_other_doc", _same_span(lambda x, _: x), host=True),
    ]
    return {x.name: x for x in t}


TEXT_TRANSFORMS = _text_catalog()
