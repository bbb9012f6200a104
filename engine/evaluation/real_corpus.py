"""The real-media corpus: library items, real transforms of them (queries) and held-out same-genre negatives.

Built from what `scripts/fetch_corpus` put in the cache (see `real_fetch`), never from the network. Per genre the
fetched items are split deterministically into library items and held-out ones:
- video: each clip is cut into disjoint pieces (1 s apart); library and negative pieces alternate, so a negative
  is the same camera, room or scene at another moment (the incidental similarity the engine must not report);
  clips too short to cut go to the library whole. Pieces are scaled to <= 320 px wide and <= 15 fps.
- audio: the soundtrack's tracks alternate library / held-out (negatives: excerpts of held-out tracks); speech
  (one speaker's prompts, joined into items) is split by `real_speech`.
- text: licences are split by family (BSD-*, GPL-*, CC-* ... each wholly on one side, so no negative is a variant
  of a library licence); in the other genres (Python reference pages, Python guides and C API, man pages) pages
  alternate, and those the library leaves out (it takes `text_docs` per genre) are held out too. A held-out text
  that still shares >= 50% of its 8-word shingles with one library item is a derivative, not a negative, and is
  dropped (counted), as is any held-out text sharing a verbatim run of 12 words with a library item of any genre
  (a real passage, by the issue's definition; the engine searches every genre at once). A copy that also shares
  such a run with another library item names it in `Query.related`: reporting that item is neither a find nor a
  false report.
Queries are excerpts of library items through real edits (`VIDEO_EDITS`, `real_audio.AUDIO_EDITS`,
`TEXT_EDITS`), written under `<cache>/generated/<profile>-v<N>/` and reused on later runs (a file is renamed
into place when complete).
"""

from __future__ import annotations

import hashlib
import html
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.evaluation import real_speech
from engine.evaluation.corpus import Query, Reference, derive
from engine.evaluation.real_audio import build_music
from engine.evaluation.real_base import (
    FULL,
    GENERATED_VERSION,
    MODALITIES,
    RealCorpus,
    RealProfile,
    origin_of,
    put,
    slug,
)
from engine.evaluation.real_fetch import load_manifest
from engine.evaluation.transforms import reorder_with_truth
from engine.synth import text as st
from engine.synth import video as sv

MAX_WIDTH = 320
MAX_FPS = 15.0


# ------------------------------------------------------------------------------------------ video


def read_video(path: Path) -> sv.Clip:
    """Decode at <= MAX_WIDTH px wide (even sizes) and <= MAX_FPS (nearest frames), as RGB."""
    frames: list[np.ndarray] = []
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, MAX_WIDTH / width)
        w, h = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
        for frame in src.decode(stream):
            frames.append(frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray())
    fps = min(rate, MAX_FPS)
    if fps < rate:
        count = int(len(frames) * fps / rate)
        frames = [frames[min(len(frames) - 1, round(i * rate / fps))] for i in range(count)]
    return sv.Clip(np.stack(frames), round(fps, 3))


def write_video(
    clip: sv.Clip, path: Path, codec: str = "libx264", container: str | None = None, bitrate: int | None = None
) -> None:
    """Encode with PyAV; unlike `engine.synth.video.write_clip` this also does MJPEG (full-range YUV)."""
    if codec != "mjpeg":
        sv.write_clip(clip, path, codec=codec, container=container, bitrate=bitrate)
        return
    with av.open(str(path), "w", format=container or "avi") as out:
        stream = out.add_stream("mjpeg", rate=Fraction(clip.fps).limit_denominator(1001))
        width, height = clip.size
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuvj420p"
        if bitrate:
            stream.bit_rate = bitrate
        for i, rgb in enumerate(clip.frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: stream.height, : stream.width]), "rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@dataclass(frozen=True, slots=True)
class Rotate:
    """Rotate about the centre by `degrees` (nearest neighbour; the uncovered corners black), size kept."""

    degrees: float

    def __call__(self, clip: sv.Clip) -> sv.Clip:
        _, h, w, _ = clip.frames.shape
        a = math.radians(self.degrees)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        sx = np.rint(math.cos(a) * (xx - cx) + math.sin(a) * (yy - cy) + cx).astype(int)
        sy = np.rint(-math.sin(a) * (xx - cx) + math.cos(a) * (yy - cy) + cy).astype(int)
        inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
        out = clip.frames[:, np.clip(sy, 0, h - 1), np.clip(sx, 0, w - 1)]
        out[:, ~inside] = 0
        return sv.Clip(out, clip.fps)


@dataclass(frozen=True, slots=True)
class RealPip:
    """The copy at `scale` of the width over unrelated real footage (`host`, looped to length)."""

    host: sv.Clip
    scale: float = 1 / 3

    def __call__(self, clip: sv.Clip) -> sv.Clip:
        width, height = clip.size
        idx = np.arange(len(clip.frames)) % len(self.host.frames)
        canvas = np.stack([
            av.VideoFrame.from_ndarray(np.ascontiguousarray(self.host.frames[i]), "rgb24")
            .reformat(width=width, height=height).to_ndarray()
            for i in idx
        ])  # fmt: skip
        iw, ih = max(2, round(width * self.scale / 2) * 2), max(2, round(height * self.scale / 2) * 2)
        x0, y0 = round((width - iw) * 0.9), round((height - ih) * 0.15)
        for i, rgb in enumerate(clip.frames):
            small = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24").reformat(width=iw, height=ih)
            canvas[i, y0 : y0 + ih, x0 : x0 + iw] = small.to_ndarray()
        return sv.Clip(canvas, clip.fps)


@dataclass(frozen=True, slots=True)
class VideoEdit:
    name: str
    ops: Callable[[sv.Clip], list[sv.Op]]  # unrelated host footage -> ops
    suffix: str = ".mp4"
    codec: str = "libx264"
    container: str | None = None
    bitrate: int | None = None
    speed: float = 1.0


def _cif(_: sv.Clip) -> list[sv.Op]:
    return [sv.Scale(352, 288)]  # H.263 takes only its standard picture sizes


VIDEO_EDITS: dict[str, VideoEdit] = {e.name: e for e in (
    VideoEdit("h264_200k", lambda _: [], bitrate=200_000),
    VideoEdit("vp8_webm", lambda _: [], ".webm", "libvpx", bitrate=300_000),
    VideoEdit("vp9_webm", lambda _: [], ".webm", "libvpx-vp9"),
    VideoEdit("mpeg4_avi", lambda _: [], ".avi", "mpeg4", bitrate=300_000),
    VideoEdit("h263_cif", _cif, ".avi", "h263", bitrate=300_000),
    VideoEdit("wmv2_asf", lambda _: [], ".wmv", "wmv2", "asf", bitrate=300_000),
    VideoEdit("mjpeg_avi", lambda _: [], ".avi", "mjpeg"),
    VideoEdit("flv1", lambda _: [], ".flv", "flv", bitrate=300_000),
    VideoEdit("crop_20%", lambda _: [sv.Crop(0.2, 0.2)]),
    VideoEdit("scale_0.5x", lambda _: []),  # the ops need the size: see _video_ops
    VideoEdit("text_overlay", lambda _: [sv.TextOverlay()]),
    VideoEdit("logo_overlay", lambda _: [sv.LogoOverlay()]),
    VideoEdit("pip_1/3", lambda host: [RealPip(host)]),
    VideoEdit("rotate_4deg", lambda _: [Rotate(4.0)]),
    VideoEdit("speed_+10%", lambda _: [sv.Speed(1.1)], speed=1.1),
)}  # fmt: skip
VIDEO_NEGATIVE_EDITS = ("h264_200k", "crop_20%", "text_overlay")  # negatives as they'd be uploaded, too


def _video_ops(edit: VideoEdit, clip: sv.Clip, host: sv.Clip) -> list[sv.Op]:
    if edit.name == "scale_0.5x":
        w, h = clip.size
        return [sv.Scale(max(2, w // 4 * 2), max(2, h // 4 * 2))]
    return edit.ops(host)


def _pieces(duration: float) -> list[tuple[str, float, float]]:
    """Disjoint (side, start, end) pieces of a clip; side "lib" or "neg", 1 s apart."""
    if duration >= 60.0:
        third = (duration - 2.0) / 3
        return [("lib", 0.0, third), ("neg", third + 1, 2 * third + 1), ("lib", 2 * third + 2, duration)]
    if duration >= 7.5:
        half = (duration - 1.0) / 2
        return [("lib", 0.0, half), ("neg", half + 1.0, duration)]
    return [("lib", 0.0, duration)]


def _cut(clip: sv.Clip, start: float, end: float) -> sv.Clip:
    return sv.Clip(clip.frames[round(start * clip.fps) : round(end * clip.fps)], clip.fps)


def _build_video(corpus: RealCorpus, items: list[dict], gen: Path) -> None:
    p = corpus.profile
    lib: list[tuple[Reference, sv.Clip]] = []
    negs: list[tuple[str, sv.Clip]] = []
    for item in items:
        clip = read_video(corpus.root / item["path"])
        stem = slug(Path(item["path"]).stem)
        for k, (side, start, end) in enumerate(_pieces(clip.duration)):
            piece = _cut(clip, start, end)
            key = f"{stem}-{k}"
            corpus.origin[f"video-{key}"] = {**origin_of(item), "span_s": [round(start, 2), round(end, 2)]}
            if side == "lib":
                path = gen / "video" / f"lib-{key}.mp4"
                corpus.generated += put(path, lambda t, c=piece: write_video(c, t))
                lib.append((Reference(f"video-{key}", "video", path), piece))
            else:
                negs.append((key, piece))
    if p.video_items is not None:
        lib = sorted(lib, key=lambda r: r[1].duration)[: p.video_items]  # the quick run: the shortest pieces
        negs = sorted(negs, key=lambda r: r[1].duration)[: max(1, p.video_items // 2)]
    corpus.references += [r for r, _ in lib]
    edits = p.video_edits or tuple(VIDEO_EDITS)
    for key, piece in negs:
        for name in ("none", *(e for e in VIDEO_NEGATIVE_EDITS if e in edits)):
            path = gen / "video" / f"neg-{key}-{slug(name)}.mp4"
            ops = [] if name == "none" else _video_ops(VIDEO_EDITS[name], piece, piece)
            corpus.generated += put(path, lambda t, c=piece, o=ops: write_video(sv.apply_ops(c, o), t))
            corpus.add(Query(f"video-neg-{key}-{name}", "video", "negative", path, None), key.rsplit("-", 1)[0])
    host = negs[0][1] if negs else lib[0][1]
    for e_index, name in enumerate(edits):
        edit = VIDEO_EDITS[name]
        for j, (ref, piece) in enumerate(lib):
            rng = random.Random(derive(corpus.seed, "video", name, ref.id))
            length = min(p.video_excerpt, 0.8 * piece.duration)
            start = round(rng.uniform(0.0, piece.duration - length), 2)
            frames = round(length * piece.fps)
            excerpt = sv.Clip(piece.frames[round(start * piece.fps) :][:frames], piece.fps)
            # The host of a picture-in-picture is unrelated footage: a held-out piece (a library piece would be a
            # true second copy in the query). The "-h" file names keep older queries, hosted on library pieces,
            # from being reused.
            pip = name == "pip_1/3"
            other = negs[(j + 1 + e_index) % len(negs)][1] if pip and negs else host
            path = gen / "video" / f"q-{slug(name)}-{ref.id}{'-h' if pip else ''}{edit.suffix}"
            ops = _video_ops(edit, excerpt, other)

            def make(t: Path, c: sv.Clip = excerpt, o: list[sv.Op] = ops, e: VideoEdit = edit) -> None:
                write_video(sv.apply_ops(c, o), t, e.codec, e.container, e.bitrate)

            corpus.generated += put(path, make)
            shown = (round(frames / edit.speed) if edit.speed != 1.0 else frames) / piece.fps
            box = (0.0, shown, start, start + frames / piece.fps)
            group = ref.id.removeprefix("video-").rsplit("-", 1)[0]
            corpus.add(Query(f"video-{name}-{ref.id}", "video", name, path, ref.id, (box,)), group)


# ------------------------------------------------------------------------------------------ audio


def _build_audio(corpus: RealCorpus, items: list[dict], gen: Path) -> None:
    speech = [i for i in items if real_speech.is_speech(i)]
    if len(speech) < len(items):
        build_music(corpus, [i for i in items if not real_speech.is_speech(i)], gen)
    if speech:
        real_speech.build_speech(corpus, speech, gen)


# ------------------------------------------------------------------------------------------ text

TextBoxes = list[tuple[int, int, int, int]]
HOMOGLYPHS = {"o": "0", "O": "0", "l": "1", "I": "l", "e": "е", "a": "а", "c": "с", "p": "р", "S": "5", "B": "8"}


def homoglyphs(text: str, rate: float, seed: int) -> str:
    """OCR-like / homoglyph noise: one character for one (0/O, 1/l, Cyrillic look-alikes), so spans keep."""
    rng = random.Random(seed)
    return "".join(HOMOGLYPHS[c] if c in HOMOGLYPHS and rng.random() < rate else c for c in text)


def _runs(text: str) -> list[tuple[int, str]]:
    """Sentences with their offsets in `text`."""
    out, cursor = [], 0
    for part in st.sentences(text):
        at = text.find(part, cursor)
        out.append((at, part))
        cursor = at + len(part)
    return out


def delete_sentences(text: str, seed: int, rate: float = 0.25) -> tuple[str, TextBoxes]:
    """Each sentence deleted with probability `rate`, as long as no more than `rate` of the text goes: a short
    item of a few long sentences would otherwise lose most of itself, which is no longer this edit."""
    rng = random.Random(seed)
    parts = _runs(text)
    budget = rate * len(text)
    keep = []
    for at, s in parts:
        if rng.random() < rate and len(s) <= budget:
            budget -= len(s)
        else:
            keep.append((at, s))
    return _join(keep or parts[:1])


def insert_sentences(text: str, seed: int, foreign: str) -> tuple[str, TextBoxes]:
    """After every ~3rd sentence, a sentence of unrelated same-genre text."""
    rng = random.Random(seed)
    alien = [s for s in st.sentences(foreign) if len(s) > 20] or [foreign[:120]]
    mixed: list[tuple[int, str]] = []
    for k, (at, s) in enumerate(_runs(text)):
        mixed.append((at, s))
        if k % 3 == 2:
            mixed.append((-1, rng.choice(alien)))
    return _join(mixed)


def _join(parts: list[tuple[int, str]]) -> tuple[str, TextBoxes]:
    """Concatenate sentences (origin offset, -1 for foreign); one box per run of source-adjacent sentences."""
    out: list[str] = []
    boxes: TextBoxes = []
    pos = 0
    prev_end = None
    for at, s in parts:
        piece = s if s[-1:].isspace() else s + " "
        body = len(s.rstrip())
        if at >= 0:
            if boxes and prev_end is not None and at == prev_end and boxes[-1][1] <= pos:
                q0, _, r0, _ = boxes.pop()
                boxes.append((q0, pos + body, r0, at + body))
            else:
                boxes.append((pos, pos + body, at, at + body))
            prev_end = at + len(s)
        else:
            prev_end = None
        out.append(piece)
        pos += len(piece)
    return "".join(out), boxes


def html_wrap(text: str, seed: int) -> tuple[str, TextBoxes]:
    """A web page around the passage: navigation, cookie banner, footer; the passage escaped in <p>s."""
    rng = random.Random(seed)
    site = rng.choice(["Daily Ledger", "OpenDocs Mirror", "Legal Texts Online", "The Reference Hub"])
    head = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{site}</title></head><body>\n"
            f"<nav><a href=\"/\">Home</a> | <a href=\"/news\">News</a> | <a href=\"/about\">About us</a> | "
            f"<a href=\"/contact\">Contact</a></nav>\n<div class=\"cookie\">We use cookies to improve your "
            f"experience. By continuing you agree to our use of cookies.</div>\n<article>\n")  # fmt: skip
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in text.split("\n\n"))
    foot = (
        f"</article>\n<footer>&copy; 2024 {site}. All rights reserved. | Privacy policy | Terms of use"
        "</footer>\n</body></html>\n"
    )
    return head + body + foot, [(len(head), len(head) + len(body), 0, len(text))]


@dataclass(frozen=True, slots=True)
class TextEdit:
    name: str
    edit: Callable[[str, int, str], tuple[str, TextBoxes]]  # (passage, seed, unrelated same-genre text)
    host: bool = False  # inside an unrelated same-genre (held-out) document


def _whole(fn: Callable[[str, int], str]) -> Callable[[str, int, str], tuple[str, TextBoxes]]:
    def edit(text: str, seed: int, _: str) -> tuple[str, TextBoxes]:
        out = fn(text, seed)
        return out, [(0, len(out), 0, len(text))]

    return edit


TEXT_EDITS: dict[str, TextEdit] = {e.name: e for e in (
    TextEdit("verbatim_excerpt", _whole(lambda x, _: x)),
    TextEdit("typos_3%", _whole(lambda x, s: st.char_edits(x, 0.03, s))),
    TextEdit("ocr_homoglyph_5%", _whole(lambda x, s: homoglyphs(x, 0.05, s))),
    TextEdit("sentence_reorder", lambda x, s, _: reorder_with_truth(x, s)),
    TextEdit("delete_25%_sentences", lambda x, s, _: delete_sentences(x, s)),
    TextEdit("insert_sentences", lambda x, s, f: insert_sentences(x, s, f)),
    TextEdit("html_wrapped", lambda x, s, _: html_wrap(x, s)),
    TextEdit("inside_other_doc", _whole(lambda x, _: x), host=True),
)}  # fmt: skip


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in (".rst.txt", ".txt"):
        name = name.removesuffix(suffix)
    return name


def _family(item: dict) -> str:
    stem = _stem(item["path"])
    m = re.match(r"[A-Za-z]+", stem)
    return (m.group(0) if m else stem).lower()


def _shingles(text: str, n: int = 8) -> set[int]:
    words = re.findall(r"\w+", text.lower())
    return {hash(tuple(words[i : i + n])) for i in range(max(0, len(words) - n + 1))}


# The line between sharing a passage and sharing stock phrases: a verbatim run of this many words.
PASSAGE_WORDS = 12


def _split_text(corpus: RealCorpus, genre: str, items: list[dict]) -> tuple[list[dict], list[dict]]:
    """Library items of one genre and its held-out candidates, before `_unrelated` (see the module doc)."""
    items = [i for i in items if (corpus.root / i["path"]).stat().st_size <= 60_000]  # pages, not books
    if genre == "licences":
        families = sorted({_family(i) for i in items}, key=lambda f: derive(corpus.seed, "family", f))
        lib_f = set(families[::2])
        lib = [i for i in items if _family(i) in lib_f]
        held = [i for i in items if _family(i) not in lib_f]
    else:
        ordered = sorted(items, key=lambda i: derive(corpus.seed, "doc", i["path"]))
        lib, held = ordered[::2], ordered[1::2]
    n, negatives = corpus.profile.text_docs, corpus.profile.text_negatives
    lib = sorted(lib, key=lambda i: derive(corpus.seed, "pick", i["path"]))[:n]
    if genre != "licences":  # pages the library left out are held out too (a licence family stays on its side)
        chosen = {i["path"] for i in lib}
        held = [i for i in ordered if i["path"] not in chosen]
    held = sorted(held, key=lambda i: derive(corpus.seed, "pick", i["path"]))
    return lib, held[: None if negatives is None else 2 * negatives]


def _unrelated(corpus: RealCorpus, held: list[dict], library: list[tuple[str, str]]) -> list[dict]:
    """The held-out items that share no passage with any library item of any genre (`library`: (path, text)):
    the engine searches them all, and a Python page and the how-to on the same module are related whatever
    their genres."""
    lib_sh = [_shingles(text) for _, text in library]
    lib_runs = [_shingles(text, PASSAGE_WORDS) for _, text in library]
    kept = []
    for item in held:
        text = (corpus.root / item["path"]).read_text(encoding="utf-8")
        sh = _shingles(text)
        share = max((len(sh & other) / len(sh) for other in lib_sh if sh), default=0.0)
        runs = _shingles(text, PASSAGE_WORDS)
        sharing = next((path for (path, _), other in zip(library, lib_runs, strict=True) if runs & other), None)
        if share >= 0.5:
            corpus.dropped.setdefault("text", []).append(f"{item['path']}: {share:.0%} of it in one library item")
        elif sharing is not None:
            # Not unrelated: it shares a real passage with a library item (a licence's lineage, a page copied
            # between modules), so reporting it would be right; it cannot serve as a negative.
            corpus.dropped.setdefault("text", []).append(
                f"{item['path']}: shares a {PASSAGE_WORDS}-word verbatim run with {sharing}"
            )
        else:
            kept.append(item)
    return kept[: corpus.profile.text_negatives]


def _build_text(corpus: RealCorpus, items: list[dict], gen: Path) -> None:
    p = corpus.profile
    edits = p.text_edits or tuple(TEXT_EDITS)
    genres = sorted({i["genre"] for i in items})
    split = {g: _split_text(corpus, g, [i for i in items if i["genre"] == g]) for g in genres}
    library: list[tuple[str, str]] = []  # (path, text) of every genre's library items
    every_doc: list[tuple[Reference, str]] = []
    for genre in genres:
        for item in split[genre][0]:
            ref_id = f"text-{genre}-{slug(_stem(item['path']))}"
            corpus.origin[ref_id] = origin_of(item)
            path = corpus.root / item["path"]
            text = path.read_text(encoding="utf-8")
            corpus.references.append(Reference(ref_id, "text", path))
            library.append((item["path"], text))
            every_doc.append((Reference(ref_id, "text", path), text))
    doc_runs = [(r, _shingles(d, PASSAGE_WORDS)) for r, d in every_doc]
    for genre in genres:
        held = _unrelated(corpus, split[genre][1], library)
        docs = [(r, d) for r, d in every_doc if r.id.startswith(f"text-{genre}-")]
        held_texts = [(corpus.root / i["path"]).read_text(encoding="utf-8") for i in held]
        for item in held:
            key = f"text-neg-{genre}-{slug(_stem(item['path']))}"
            corpus.origin[key] = origin_of(item)
            corpus.add(Query(key, "text", "negative", corpus.root / item["path"], None), genre)
        for e_index, name in enumerate(edits):
            edit = TEXT_EDITS[name]
            for k in range(min(p.text_per_edit, len(docs))):
                ref, doc = docs[(e_index * p.text_per_edit + k) % len(docs)]
                seed = derive(corpus.seed, "text", name, ref.id)
                start, passage = (0, doc) if len(doc) <= p.text_excerpt else st.excerpt(doc, p.text_excerpt, seed)
                foreign = held_texts[(e_index + k) % len(held_texts)] if held_texts else ""
                query, rel = edit.edit(passage, seed, foreign)
                offset = 0
                if edit.host and foreign:
                    offset, query = st.embed(query, foreign, seed)
                boxes = tuple((offset + qs, offset + qe, start + rs, start + re) for qs, qe, rs, re in rel)
                path = gen / "text" / f"q-{slug(name)}-{ref.id}.txt"
                corpus.generated += put(path, lambda t, q=query: t.write_text(q, encoding="utf-8"))
                runs = _shingles(query, PASSAGE_WORDS)
                related = frozenset(r.id for r, other in doc_runs if r.id != ref.id and runs & other)
                corpus.add(Query(f"text-{name}-{ref.id}", "text", name, path, ref.id, boxes, related), genre)


# ------------------------------------------------------------------------------------------ the corpus


def build_real_corpus(
    root: Path,
    profile: RealProfile = FULL,
    *,
    seed: int = 1,
    modalities: tuple[str, ...] = MODALITIES,
    log: Callable[[str], None] = lambda _: None,
) -> RealCorpus | None:
    """The corpus from the fetched cache at `root`, or None when nothing was fetched there."""
    manifest = load_manifest(root)
    if manifest is None:
        return None
    corpus = RealCorpus(root=root, profile=profile, seed=seed)
    # keyed by what was fetched too: a re-fetch that brings other media never reuses queries cut from the old
    fetched = hashlib.blake2b(repr(sorted(i["sha256"] for i in manifest["items"])).encode(), digest_size=4)
    gen = root / "generated" / f"{profile.name}-v{GENERATED_VERSION}-seed{seed}-{fetched.hexdigest()}"
    builders = {"video": _build_video, "audio": _build_audio, "text": _build_text}
    for modality in modalities:
        items = [i for i in manifest["items"] if i["modality"] == modality]
        if not items:
            log(f"{modality}: nothing fetched, skipped")
            continue
        builders[modality](corpus, items, gen)
        log(f"{modality}: {corpus.counts()[modality]} ({corpus.generated} files generated so far)")
    return corpus
