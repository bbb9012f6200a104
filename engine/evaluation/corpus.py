"""The evaluation corpus: references, transformed copies (with ground-truth boxes) and negatives, per modality.

Everything is generated from one seed with `engine.synth` (no downloads). Media files are cached under
`<cache>/<seed>/`, each named after a digest of what made it, so a re-run (or a run of another profile that shares
files) only makes what is missing; a file is written under a temporary name and renamed, so an interrupted run
leaves no half-written media behind. The ground truth is recomputed on every run: it is cheap and exact.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.evaluation.metrics import Box
from engine.evaluation.transforms import (
    AUDIO_TRANSFORMS,
    SR,
    TEXT_TRANSFORMS,
    VIDEO_FPS,
    VIDEO_NEGATIVE_OPS,
    VIDEO_SIZE,
    VIDEO_TRANSFORMS,
)
from engine.synth import audio as sa
from engine.synth import text as st
from engine.synth import video as sv

CORPUS_VERSION = 1  # bump when a generator changes what a cached file holds
MODALITIES = ("video", "audio", "text")


@dataclass(frozen=True, slots=True)
class Profile:
    """Corpus sizes. `*_per_transform`: how many references each transform is applied to (None: all)."""

    name: str
    video_refs: int
    video_seconds: float
    video_clip: float
    video_per_transform: int | None
    video_negatives: int
    audio_refs: int
    audio_seconds: float
    audio_clip: float
    audio_per_transform: int | None
    audio_negatives: int
    text_refs: dict[str, int]  # language -> documents
    text_chars: dict[str, int]
    text_excerpt: dict[str, int]
    text_per_transform: int | None
    text_negatives: int
    video_transforms: tuple[str, ...] = tuple(VIDEO_TRANSFORMS)
    audio_transforms: tuple[str, ...] = tuple(AUDIO_TRANSFORMS)
    text_transforms: tuple[str, ...] = tuple(TEXT_TRANSFORMS)


# Sized for well under 10 minutes on two shared cores, peers included: 108 video copies (6 per transform),
# 80 audio, 68 text; video query generation dominates (about 1.5 s of CPU per copy).
FULL = Profile(
    name="full",
    video_refs=8, video_seconds=40.0, video_clip=20.0, video_per_transform=6, video_negatives=8,
    audio_refs=8, audio_seconds=45.0, audio_clip=20.0, audio_per_transform=None, audio_negatives=12,
    text_refs={"en": 8, "zh": 4}, text_chars={"en": 6000, "zh": 3000}, text_excerpt={"en": 1500, "zh": 600},
    text_per_transform=None, text_negatives=12,
)  # fmt: skip
# Every code path once, on tiny media: what CI runs.
QUICK = Profile(
    name="quick",
    video_refs=2, video_seconds=16.0, video_clip=8.0, video_per_transform=1, video_negatives=1,
    audio_refs=2, audio_seconds=20.0, audio_clip=10.0, audio_per_transform=1, audio_negatives=1,
    text_refs={"en": 2, "zh": 1}, text_chars={"en": 3000, "zh": 1500}, text_excerpt={"en": 1000, "zh": 500},
    text_per_transform=1, text_negatives=1,
    video_transforms=("reencode_60k", "crop_20%", "hflip", "inserted_at_8s"),
    audio_transforms=("clip_mp3_64k", "noise_10dB", "inside_other_audio"),
)  # fmt: skip
PROFILES = {p.name: p for p in (FULL, QUICK)}


@dataclass(frozen=True, slots=True)
class Reference:
    id: str  # the PrimaryKey it is stored under
    modality: str
    path: Path


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    modality: str
    transform: str  # "negative" for negatives
    path: Path
    ref_id: str | None  # the reference it copies; None for a negative
    boxes: tuple[Box, ...] = ()  # ground truth against `ref_id`
    # Library items the query also really shares a passage with (text: a verbatim run of >= 12 words, the issue's
    # line between a copy and a stock phrase): reporting one is neither a find nor a false report.
    related: frozenset[str] = frozenset()

    @property
    def positive(self) -> bool:
        return self.ref_id is not None


class CorpusViews:
    """What the runner and the reports read of a corpus (generated or real): its items and queries by modality."""

    __slots__ = ()
    references: list[Reference]
    queries: list[Query]

    def refs(self, modality: str) -> list[Reference]:
        return [r for r in self.references if r.modality == modality]

    def queries_of(self, modality: str) -> list[Query]:
        return [q for q in self.queries if q.modality == modality]

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            m: {
                "references": len(self.refs(m)),
                "queries": sum(q.positive for q in self.queries_of(m)),
                "negatives": sum(not q.positive for q in self.queries_of(m)),
            }
            for m in MODALITIES
        }


@dataclass(slots=True)
class Corpus(CorpusViews):
    seed: int
    profile: Profile
    root: Path
    references: list[Reference] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)
    generated: int = 0  # files made by this build (the rest came from the cache)


def derive(seed: int, *labels: object) -> int:
    """A sub-seed: stable across runs, machines and Python versions (unlike `hash()`)."""
    digest = hashlib.blake2b(repr((seed, *labels)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (2**31 - 1)


# ------------------------------------------------------------------------------------------ media tasks


@dataclass(frozen=True, slots=True)
class Task:
    """One media file to make: `kind` and plain `params`, so a worker process can rebuild everything."""

    kind: str
    path: Path
    params: tuple


def _cached_path(folder: Path, label: str, suffix: str, kind: str, params: tuple) -> Path:
    digest = hashlib.blake2b(repr((CORPUS_VERSION, kind, params)).encode(), digest_size=5).hexdigest()
    return folder / f"{label}-{digest}{suffix}"


def _video_clip(seed: int, seconds: float) -> sv.Clip:
    return sv.render_clip(seed, seconds, VIDEO_SIZE, VIDEO_FPS)


def _make(task: Task) -> None:
    """Write `task.path` (via a temporary name in the same folder, renamed when complete)."""
    tmp = task.path.with_name(f".tmp-{os.getpid()}-{task.path.name}")
    p = task.params
    if task.kind == "video_ref":
        seed, seconds = p
        sv.make_video(tmp, seed, seconds, VIDEO_SIZE, VIDEO_FPS)
    elif task.kind == "video_negative":
        seed, seconds, variant = p
        sv.write_clip(sv.apply_ops(_video_clip(seed, seconds), VIDEO_NEGATIVE_OPS[variant]()), tmp)
    elif task.kind == "video_query":
        ref_path, name, start, length, content_seed = p
        t = VIDEO_TRANSFORMS[name]
        sv.transform_video(ref_path, tmp, t.ops(content_seed), start=start, seconds=length, bitrate=t.bitrate)
    elif task.kind == "audio_ref":
        seed, seconds = p
        sa.write_audio(tmp, sa.music(seed, seconds))
    elif task.kind == "audio_negative":
        seed, seconds, variant = p
        x = sa.music(seed, seconds)
        if variant % 3 == 2:
            x = sa.add_noise(x, 10.0, seed=seed)
        sa.write_audio(tmp, x, bitrate=64_000 if tmp.suffix == ".mp3" else None)
    elif task.kind == "audio_query":
        ref_path, name, start, length, seed = p
        sa.write_audio(tmp, _audio_query_samples(Path(ref_path), name, start, length, seed), bitrate=_bitrate(name))
    else:
        raise ValueError(f"unknown task kind {task.kind!r}")
    os.replace(tmp, task.path)


def _bitrate(name: str) -> int | None:
    return AUDIO_TRANSFORMS[name].bitrate


def _audio_query_samples(ref_path: Path, name: str, start: float, length: float | None, seed: int) -> np.ndarray:
    t = AUDIO_TRANSFORMS[name]
    x = sa.read_audio(ref_path, SR)
    clip = x if length is None else sa.excerpt(x, SR, start, length)
    clip = t.edit(clip, seed)
    if t.host_pad > 0:
        host = sa.music(derive(seed, "host"), clip.size / SR + 2 * t.host_pad)
        clip = sa.embed(clip, host, SR, t.host_pad)
    return clip


def run_tasks(tasks: Sequence[Task], workers: int, log: Callable[[str], None]) -> int:
    """Make the files of `tasks` that do not exist yet; returns how many were made."""
    todo = [t for t in tasks if not t.path.exists()]
    if not todo:
        return 0
    log(f"generating {len(todo)} media files ({len(tasks) - len(todo)} cached)...")
    if workers <= 1 or len(todo) == 1:
        for task in todo:
            _make(task)
        return len(todo)
    # spawn, not fork: the parent may hold PyAV/numpy threads, and a forked copy of a lock held by one hangs.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for _ in pool.map(_make, todo):
            pass
    return len(todo)


# ------------------------------------------------------------------------------------------ the corpus


def _assign(n_refs: int, per_transform: int | None, t_index: int) -> list[int]:
    """Which references transform number `t_index` is applied to: a rotating window, so all get used evenly."""
    per = n_refs if per_transform is None else min(per_transform, n_refs)
    return sorted({(t_index * per + k) % n_refs for k in range(per)})


def _video(corpus: Corpus, folder: Path) -> tuple[list[Task], list[Task]]:
    seed, p = corpus.seed, corpus.profile
    first: list[Task] = []
    refs = []
    for i in range(p.video_refs):
        params = (derive(seed, "video", "ref", i), p.video_seconds)
        task = Task("video_ref", _cached_path(folder, f"ref{i:02d}", ".mp4", "video_ref", params), params)
        first.append(task)
        refs.append(Reference(f"video-ref{i:02d}", "video", task.path))
    for i in range(p.video_negatives):
        params = (derive(seed, "video", "negative", i), p.video_clip, i % len(VIDEO_NEGATIVE_OPS))
        task = Task("video_negative", _cached_path(folder, f"neg{i:02d}", ".mp4", "video_negative", params), params)
        first.append(task)
        corpus.queries.append(Query(f"video-neg{i:02d}", "video", "negative", task.path, None))
    second: list[Task] = []
    for t_index, name in enumerate(p.video_transforms):
        transform = VIDEO_TRANSFORMS[name]
        length = p.video_seconds if transform.whole else p.video_clip
        frames = round(length * VIDEO_FPS)
        for j in _assign(p.video_refs, p.video_per_transform, t_index):
            rng = random.Random(derive(seed, "video", "start", name, j))
            start = 0.0 if transform.whole else float(rng.randint(1, int(p.video_seconds - p.video_clip) - 1))
            params = (str(refs[j].path), name, start, frames / VIDEO_FPS, derive(seed, "video", "content", name, j))
            label = f"q-{_slug(name)}-ref{j:02d}"
            key = (refs[j].path.name, *params[1:])  # the reference by its (digest-bearing) name: the cache can move
            task = Task("video_query", _cached_path(folder, label, ".mp4", "video_query", key), params)
            second.append(task)
            box = transform.box(start, length, VIDEO_FPS)
            corpus.queries.append(Query(f"video-{name}-ref{j:02d}", "video", name, task.path, refs[j].id, (box,)))
    corpus.references += refs
    return first, second


def _audio(corpus: Corpus, folder: Path) -> tuple[list[Task], list[Task]]:
    seed, p = corpus.seed, corpus.profile
    first: list[Task] = []
    refs = []
    for i in range(p.audio_refs):
        params = (derive(seed, "audio", "ref", i), p.audio_seconds)
        task = Task("audio_ref", _cached_path(folder, f"ref{i:02d}", ".wav", "audio_ref", params), params)
        first.append(task)
        refs.append(Reference(f"audio-ref{i:02d}", "audio", task.path))
    for i in range(p.audio_negatives):
        params = (derive(seed, "audio", "negative", i), p.audio_clip, i)
        suffix = ".mp3" if i % 3 == 1 else ".wav"
        task = Task("audio_negative", _cached_path(folder, f"neg{i:02d}", suffix, "audio_negative", params), params)
        first.append(task)
        corpus.queries.append(Query(f"audio-neg{i:02d}", "audio", "negative", task.path, None))
    second: list[Task] = []
    for t_index, name in enumerate(p.audio_transforms):
        transform = AUDIO_TRANSFORMS[name]
        for j in _assign(p.audio_refs, p.audio_per_transform, t_index):
            rng = random.Random(derive(seed, "audio", "start", name, j))
            start = 0.0 if transform.whole else float(rng.randint(1, int(p.audio_seconds - p.audio_clip) - 1))
            length = None if transform.whole else p.audio_clip
            params = (str(refs[j].path), name, start, length, derive(seed, "audio", "edit", name, j))
            label = f"q-{_slug(name)}-ref{j:02d}"
            key = (refs[j].path.name, *params[1:])
            task = Task("audio_query", _cached_path(folder, label, transform.suffix, "audio_query", key), params)
            second.append(task)
            samples = round((p.audio_seconds if length is None else length) * SR)
            box = transform.box(start, samples)
            corpus.queries.append(Query(f"audio-{name}-ref{j:02d}", "audio", name, task.path, refs[j].id, (box,)))
    corpus.references += refs
    return first, second


def _write_text(path: Path, text: str) -> Path:
    if not path.exists():
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


def _text(corpus: Corpus, folder: Path) -> None:
    seed, p = corpus.seed, corpus.profile
    docs: list[tuple[str, str, str]] = []  # (ref id, language, text)
    for lang, count in p.text_refs.items():
        for i in range(count):
            doc = st.document(derive(seed, "text", "ref", lang, i), p.text_chars[lang], lang)
            ref_id = f"text-ref-{lang}{i:02d}"
            path = _write_text(_cached_path(folder, f"ref-{lang}{i:02d}", ".txt", "text", (doc,)), doc)
            corpus.references.append(Reference(ref_id, "text", path))
            docs.append((ref_id, lang, doc))
    langs = list(p.text_refs)
    for i in range(p.text_negatives):
        lang = langs[i % len(langs)]
        doc = st.document(derive(seed, "text", "negative", i), p.text_excerpt[lang], lang)
        path = _write_text(_cached_path(folder, f"neg{i:02d}", ".txt", "text", (doc,)), doc)
        corpus.queries.append(Query(f"text-neg{i:02d}", "text", "negative", path, None))
    for t_index, name in enumerate(p.text_transforms):
        transform = TEXT_TRANSFORMS[name]
        eligible = [d for d in docs if d[1] in transform.languages]
        for j in _assign(len(eligible), p.text_per_transform, t_index):
            ref_id, lang, doc = eligible[j]
            edit_seed = derive(seed, "text", "edit", name, ref_id)
            start, passage = st.excerpt(doc, p.text_excerpt[lang], edit_seed)
            query, rel = transform.edit(passage, edit_seed)
            offset = 0
            if transform.host:
                host = st.document(derive(edit_seed, "host"), 2 * p.text_excerpt[lang], lang)
                offset, query = st.embed(query, host, edit_seed)
            boxes = tuple((offset + qs, offset + qe, start + rs, start + re) for qs, qe, rs, re in rel)
            path = _write_text(_cached_path(folder, f"q-{_slug(name)}-{ref_id}", ".txt", "text", (query,)), query)
            corpus.queries.append(Query(f"text-{name}-{ref_id}", "text", name, path, ref_id, boxes))


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def build_corpus(
    seed: int,
    profile: Profile,
    cache_dir: Path,
    *,
    workers: int = 2,
    modalities: Sequence[str] = MODALITIES,
    log: Callable[[str], None] = lambda _: None,
) -> Corpus:
    """The corpus of `profile` for `seed`, making whatever media `cache_dir/<seed>/` does not hold yet."""
    root = Path(cache_dir) / str(seed)
    corpus = Corpus(seed=seed, profile=profile, root=root)
    first: list[Task] = []
    second: list[Task] = []
    for modality in modalities:
        folder = root / modality
        folder.mkdir(parents=True, exist_ok=True)
        if modality == "video":
            a, b = _video(corpus, folder)
        elif modality == "audio":
            a, b = _audio(corpus, folder)
        elif modality == "text":
            _text(corpus, folder)
            continue
        else:
            raise ValueError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
        first += a
        second += b
    # Queries are cut from the reference files, so references come first.
    corpus.generated = run_tasks(first, workers, log) + run_tasks(second, workers, log)
    return corpus
