"""The real corpus's audio edits (real transforms through FFmpeg's filters and codecs, via PyAV) and its music
genre: the soundtrack's tracks alternate library / held out, negatives are excerpts of held-out tracks."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.evaluation.corpus import Query, Reference, derive
from engine.evaluation.real_base import SR, RealCorpus, origin_of, put, slug
from engine.synth import audio as sa


def atempo(x: np.ndarray, factor: float, sr: int = SR) -> np.ndarray:
    """Change tempo by `factor` keeping pitch: FFmpeg's `atempo` filter through PyAV (WSOLA)."""
    graph = av.filter.Graph()
    src = graph.add_abuffer(format="flt", sample_rate=sr, layout="mono", time_base=Fraction(1, sr))
    tempo = graph.add("atempo", f"{factor:.6f}")
    sink = graph.add("abuffersink")
    src.link_to(tempo)
    tempo.link_to(sink)
    graph.configure()
    out: list[np.ndarray] = []

    def drain() -> None:
        while True:
            try:
                out.append(graph.pull().to_ndarray().reshape(-1))
            except (BlockingIOError, av.error.EOFError):
                return

    block = 4096
    for i in range(0, x.size, block):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, i : i + block], np.float32), "flt", "mono")
        frame.sample_rate, frame.pts, frame.time_base = sr, i, Fraction(1, sr)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def pitch_shift(x: np.ndarray, factor: float) -> np.ndarray:
    """Pitch up by `factor` at the same tempo: resample (pitch and tempo change) then `atempo` the tempo back."""
    return atempo(sa.speed(x, factor), 1.0 / factor)


def reverb(x: np.ndarray, seed: int, seconds: float = 0.6, wet: float = 0.35) -> np.ndarray:
    """A room: convolution with exponentially decaying noise (RT60 ~ `seconds`), mixed with the dry signal."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    ir /= np.sqrt(np.sum(ir**2))
    size = 1 << math.ceil(math.log2(x.size + n))
    wetsig = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: x.size]
    y = (1 - wet) * x + wet * wetsig
    return (y / max(1e-9, float(np.max(np.abs(y)))) * 0.9).astype(np.float32)


def phone(x: np.ndarray) -> np.ndarray:
    """Narrowband telephone: 300-3400 Hz, 8 kHz; G.711 mu-law happens in the writer (`pcm_mulaw`)."""
    return sa.band_pass(x, SR)


def write_mulaw_8k(path: Path, x: np.ndarray) -> None:
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_mulaw", rate=8000, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, :], np.float32), "flt", "mono")
        frame.sample_rate = SR
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))


@dataclass(frozen=True, slots=True)
class AudioEdit:
    name: str
    edit: Callable[[np.ndarray, int], np.ndarray]  # (samples, seed) -> samples
    suffix: str = ".wav"
    bitrate: int | None = None
    tempo: float = 1.0  # how much faster the copy plays (its duration is length / tempo)
    host_pad: float = 0.0  # > 0: inside a held-out track, this many seconds in


AUDIO_EDITS: dict[str, AudioEdit] = {e.name: e for e in (
    AudioEdit("mp3_64k", lambda x, _: x, ".mp3", 64_000),
    AudioEdit("pitch_+5%", lambda x, _: pitch_shift(x, 1.05)),
    AudioEdit("pitch_-5%", lambda x, _: pitch_shift(x, 0.95)),
    AudioEdit("tempo_+5%", lambda x, _: atempo(x, 1.05), tempo=1.05),
    AudioEdit("tempo_-5%", lambda x, _: atempo(x, 0.95), tempo=0.95),
    AudioEdit("phone_mulaw_8k", lambda x, _: phone(x)),
    AudioEdit("reverb", lambda x, s: reverb(x, s)),
    AudioEdit("noise_10dB", lambda x, s: sa.add_noise(x, 10.0, color="pink", seed=s)),
    AudioEdit("inside_other_audio", lambda x, _: x, host_pad=6.0),
)}  # fmt: skip


def write_edited_audio(path: Path, x: np.ndarray, edit: AudioEdit | None = None) -> None:
    if edit is not None and edit.name == "phone_mulaw_8k":
        write_mulaw_8k(path, x)
    else:
        sa.write_audio(path, x, bitrate=edit.bitrate if edit else None)


def build_music(corpus: RealCorpus, items: list[dict], gen: Path) -> None:
    p = corpus.profile
    long_enough: list[dict] = []
    for item in sorted(items, key=lambda i: i["path"]):
        with av.open(str(corpus.root / item["path"])) as container:
            seconds = (container.duration or 0) / av.time_base
        if seconds >= 45:  # jingles (victory, defeat...) are too short to excerpt
            long_enough.append(item)
        else:
            corpus.dropped.setdefault("audio", []).append(f"{item['path']}: {seconds:.0f} s, under 45 s")
    if p.audio_tracks is not None:
        long_enough = long_enough[: p.audio_tracks]
    tracks = [(item, sa.read_audio(corpus.root / item["path"], SR)) for item in long_enough]
    lib = [(item, x) for k, (item, x) in enumerate(tracks) if k % 2 == 0]
    held = [(item, x) for k, (item, x) in enumerate(tracks) if k % 2 == 1]
    refs: list[tuple[Reference, np.ndarray]] = []
    for item, x in lib:
        ref_id = f"audio-{slug(Path(item['path']).stem)}"
        corpus.origin[ref_id] = origin_of(item)
        refs.append((Reference(ref_id, "audio", corpus.root / item["path"]), x))  # the shipped .ogg as is
    corpus.references += [r for r, _ in refs]
    excerpt = p.audio_excerpt
    for item, x in held:
        stem = slug(Path(item["path"]).stem)
        corpus.origin[f"audio-neg-{stem}"] = origin_of(item)
        for k, at in enumerate((0.25, 0.65)):  # two moments of each held-out track
            start = round(at * (x.size / SR - excerpt), 2)
            path = gen / "audio" / f"neg-{stem}-{k}.mp3"
            clip = sa.excerpt(x, SR, start, excerpt)
            corpus.generated += put(path, lambda t, c=clip: sa.write_audio(t, c, bitrate=64_000))
            corpus.add(Query(f"audio-neg-{stem}-{k}", "audio", "negative", path, None), item["genre"])
    edits = p.audio_edits or tuple(AUDIO_EDITS)
    for e_index, name in enumerate(edits):
        edit = AUDIO_EDITS[name]
        chosen = [(e_index * (p.audio_per_edit or 1) + k) % len(refs) for k in range(p.audio_per_edit or len(refs))]
        for j in sorted(set(chosen)):
            ref, x = refs[j]
            host = held[e_index % len(held)][1] if held else None
            add_copy(corpus, edit, ref, x, excerpt, gen / "audio", host, 10.0, "library")


def add_copy(corpus: RealCorpus, edit: AudioEdit, ref: Reference, x: np.ndarray, excerpt: float, folder: Path,
             host: np.ndarray | None, host_at: float, group: str,
             write: Callable[[Path, np.ndarray], None] | None = None) -> None:  # fmt: skip
    """One query: an `excerpt` s copy of library item `ref` (samples `x`) through `edit`, from a start drawn from
    the edit and item (5 s clear of either end), inside `host` from `host_at` s when the edit embeds it; written
    once into `folder` (by `write`, default `write_edited_audio`) and added with its truth box."""
    seed = derive(corpus.seed, "audio", edit.name, ref.id)
    start = round(random.Random(seed).uniform(5.0, x.size / SR - excerpt - 5.0), 2)
    path = folder / f"q-{slug(edit.name)}-{ref.id}{edit.suffix}"
    embedded = edit.host_pad > 0 and host is not None

    def make(t: Path) -> None:
        clip = edit.edit(sa.excerpt(x, SR, start, excerpt), seed)
        if embedded:
            assert host is not None
            clip = sa.embed(clip, sa.excerpt(host, SR, host_at, clip.size / SR + 2 * edit.host_pad), SR, edit.host_pad)
        if write is not None:
            write(t, clip)
        else:
            write_edited_audio(t, clip, edit)

    corpus.generated += put(path, make)
    samples = round(excerpt * SR)
    shown = (round(samples / edit.tempo) if edit.tempo != 1.0 else samples) / SR
    pad = edit.host_pad if embedded else 0.0
    box = (pad, pad + shown, start, start + samples / SR)
    corpus.add(Query(f"audio-{edit.name}-{ref.id}", "audio", edit.name, path, ref.id, (box,)), group)
