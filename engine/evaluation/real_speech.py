"""The speech genre of the real audio corpus: one speaker's recorded prompts, split into library and held-out items.

The fetched package (`asterisk-core-sounds-en-g722`, see `real_fetch.SOURCES`) holds 358 telephone prompts read
by one speaker, 0.5-73 s each (about 21 minutes). Most are shorter than an excerpt, so an item is a concatenation
of one side's prompts, deterministic and documented:
- duplicates: a prompt whose decoded samples equal an earlier one (by name) is dropped.
- family: a prompt's family is its name up to the first "-" (`conf-adminmenu`, `conf-adminmenu-18` and
  `conf-adminmenu-162` are one family: the same text re-recorded with small changes, so never on both sides).
- sides: families, longest in total first (ties by name), go to whichever side has less speech so far (library
  on a tie). A held-out prompt is therefore another recording of the same voice, microphone and phrasing.
- re-cut takes: a held-out prompt whose name's words are a run of a library prompt's name's words, or the other
  way round (`invalid` / `pbx-invalid`, `goodbye` / `vm-goodbye`), may be the same take cut differently (the
  French `invalid` and `pbx-invalid` share 2.5 s of samples): it shares a real recording, so it is no negative and
  is dropped (listed in `corpus.dropped`).
- items: each side's prompts in name order, `GAP_SECONDS` of silence between them, cut into items at the first
  prompt boundary at or past `ITEM_SECONDS`; a remainder shorter than half that joins the side's last item.
Library items are written as FLAC (they are generated, unlike the soundtrack's shipped .ogg files). Queries are
the music's edits (`real_audio.AUDIO_EDITS`) plus `phone_gsm_8k`: GSM 06.10 full rate at 8 kHz after the
300-3400 Hz band-pass, encoded by libsndfile (the `soundfile` wheel bundles it; PyAV's FFmpeg only decodes GSM).
Negatives are two excerpts of each held-out item (mp3 64k), and the first of them also through the GSM phone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from engine.evaluation.corpus import Query, Reference
from engine.evaluation.real_audio import AUDIO_EDITS, AudioEdit, add_copy
from engine.evaluation.real_base import RealCorpus, origin_of, put, slug
from engine.synth import audio as sa

SR = sa.SAMPLE_RATE
GENRE_PREFIX = "speech-"
ITEM_SECONDS = 60.0
GAP_SECONDS = 0.3
PHONE_RATE = 8000
LAYOUT = 2  # in the generated folder's name: bump when the split or the items change (2: re-cut takes dropped)
PHONE_GSM = AudioEdit("phone_gsm_8k", lambda x, _: x)  # band-pass, 8 kHz and GSM happen in `write_gsm_8k`


def is_speech(item: dict) -> bool:
    return str(item["genre"]).startswith(GENRE_PREFIX)


def family(stem: str) -> str:
    return stem.split("-", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class Clip:
    stem: str
    samples: np.ndarray
    item: dict


def _words(stem: str) -> list[str]:
    return stem.lower().split("-")


def related(a: str, b: str) -> bool:
    """Is one prompt's name (as words) a run of the other's: possibly one take, cut twice?"""
    short, long = sorted((_words(a), _words(b)), key=len)
    return any(long[i : i + len(short)] == short for i in range(len(long) - len(short) + 1))


def split_sides(durations: dict[str, float]) -> tuple[list[str], list[str]]:
    """(library, held-out) clip names: whole families, longest first, to the side with less speech so far."""
    totals: dict[str, float] = {}
    for stem, seconds in durations.items():
        totals[family(stem)] = totals.get(family(stem), 0.0) + seconds
    sides: tuple[list[str], list[str]] = ([], [])
    amount = [0.0, 0.0]
    for fam in sorted(totals, key=lambda f: (-totals[f], f)):
        side = 0 if amount[0] <= amount[1] else 1
        amount[side] += totals[fam]
        sides[side].extend(s for s in durations if family(s) == fam)
    return sorted(sides[0]), sorted(sides[1])


def group_items(stems: list[str], durations: dict[str, float]) -> list[list[str]]:
    """Consecutive clips (in name order) cut into items of >= ITEM_SECONDS; a short remainder joins the last."""
    items: list[list[str]] = []
    current: list[str] = []
    seconds = 0.0
    for stem in stems:
        current.append(stem)
        seconds += durations[stem] + GAP_SECONDS
        if seconds >= ITEM_SECONDS:
            items.append(current)
            current, seconds = [], 0.0
    if current:
        if items and seconds < ITEM_SECONDS / 2:
            items[-1].extend(current)
        else:
            items.append(current)
    return items


def concatenate(clips: list[np.ndarray]) -> np.ndarray:
    gap = np.zeros(round(GAP_SECONDS * SR), np.float32)
    parts: list[np.ndarray] = []
    for k, clip in enumerate(clips):
        parts += [gap, clip] if k else [clip]
    return np.concatenate(parts).astype(np.float32)


def write_gsm_8k(path: Path, x: np.ndarray, sr: int = SR) -> None:
    """A GSM 06.10 full-rate call: 300-3400 Hz, resampled to 8 kHz, GSM-coded in a WAV (`gsm_ms`)."""
    try:
        import soundfile  # the `eval` extra; only generating the speech queries needs it
    except ImportError as exc:
        raise RuntimeError("the speech corpus's GSM phone edit needs soundfile: pip install -e '.[eval]'") from exc

    band = sa.band_pass(x, sr)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=PHONE_RATE)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(band[None, :], np.float32), "flt", "mono")
    frame.sample_rate = sr
    out = [f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]]
    narrow = np.clip(np.concatenate(out), -1.0, 1.0)
    soundfile.write(str(path), narrow, PHONE_RATE, subtype="GSM610", format="WAV")


def _read_clips(root: Path, items: list[dict], dropped: list[str]) -> list[Clip]:
    clips: list[Clip] = []
    seen: dict[str, str] = {}
    for item in sorted(items, key=lambda i: i["path"]):
        stem = Path(item["path"]).stem
        x = sa.read_audio(root / item["path"], SR)
        digest = hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest()
        if digest in seen:
            dropped.append(f"{item['path']}: the same samples as {seen[digest]}")
            continue
        seen[digest] = stem
        clips.append(Clip(stem, x, item))
    return clips


def build_speech(corpus: RealCorpus, items: list[dict], gen: Path) -> None:
    """Add one speaker's library items, copies and held-out negatives to `corpus`, per speech genre."""
    for genre in sorted({i["genre"] for i in items}):
        _build_genre(corpus, genre, [i for i in items if i["genre"] == genre], gen)


def _build_genre(corpus: RealCorpus, genre: str, items: list[dict], gen: Path) -> None:
    p = corpus.profile
    clips = {c.stem: c for c in _read_clips(corpus.root, items, corpus.dropped.setdefault("audio", []))}
    durations = {s: c.samples.size / SR for s, c in clips.items()}
    lib_stems, held_stems = split_sides(durations)
    dropped = corpus.dropped.setdefault("audio", [])
    for stem in held_stems:
        twin = next((lib for lib in lib_stems if related(stem, lib)), None)
        if twin is not None:
            dropped.append(f"{clips[stem].item['path']}: may be a take of the library's {twin}, cut differently")
    held_stems = [s for s in held_stems if not any(related(s, lib) for lib in lib_stems)]
    lib_groups, held_groups = group_items(lib_stems, durations), group_items(held_stems, durations)
    if p.audio_tracks is not None:  # the quick run: a few items per side
        lib_groups, held_groups = lib_groups[: p.audio_tracks // 2], held_groups[: p.audio_tracks // 2]
    tag = genre.removeprefix(GENRE_PREFIX)
    out = gen / f"speech-v{LAYOUT}"

    def origin(stems: list[str]) -> dict:
        return {**origin_of(clips[stems[0]].item), "member": [clips[s].item["member"] for s in stems]}

    refs: list[tuple[Reference, np.ndarray]] = []
    for k, stems in enumerate(lib_groups):
        ref_id = f"audio-speech-{tag}-{k:02d}"
        x = concatenate([clips[s].samples for s in stems])
        path = out / f"lib-{slug(ref_id)}.flac"
        corpus.generated += put(path, lambda t, x=x: sa.write_audio(t, x))
        corpus.origin[ref_id] = origin(stems)
        refs.append((Reference(ref_id, "audio", path), x))
    corpus.references += [r for r, _ in refs]
    held = [concatenate([clips[s].samples for s in stems]) for stems in held_groups]
    excerpt = p.audio_excerpt
    for k, (stems, x) in enumerate(zip(held_groups, held, strict=True)):
        key = f"speech-{tag}-{k:02d}"
        corpus.origin[f"audio-neg-{key}"] = origin(stems)
        for j, at in enumerate((0.25, 0.65)):
            clip = sa.excerpt(x, SR, round(at * (x.size / SR - excerpt), 2), excerpt)
            path = out / f"neg-{key}-{j}.mp3"
            corpus.generated += put(path, lambda t, c=clip: sa.write_audio(t, c, bitrate=64_000))
            corpus.add(Query(f"audio-neg-{key}-{j}", "audio", "negative", path, None), genre)
            if j == 0:  # the same voice on a phone call: narrowband negatives keep the least detail
                path = out / f"neg-{key}-{j}-gsm.wav"
                corpus.generated += put(path, lambda t, c=clip: write_gsm_8k(t, c))
                corpus.add(Query(f"audio-neg-{key}-{j}-gsm", "audio", "negative", path, None), genre)
    edits = [AUDIO_EDITS[n] for n in (p.audio_edits or tuple(AUDIO_EDITS))] + [PHONE_GSM]
    per_edit = min(p.audio_per_edit or len(refs), len(refs))
    for e_index, edit in enumerate(edits):
        for j in sorted({(e_index * per_edit + k) % len(refs) for k in range(per_edit)}):
            ref, x = refs[j]
            host = held[e_index % len(held)] if held else None  # inside another recording of the same voice
            add_copy(corpus, edit, ref, x, excerpt, out, host, 5.0, genre, write_gsm_8k if edit is PHONE_GSM else None)
