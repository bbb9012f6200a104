"""The speech genre of the real audio corpus: how one speaker's prompts become library items and negatives, and the
GSM phone edit. Offline: stand-in prompts, laid out as `scripts/fetch_corpus` lays out the fetched ones."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.evaluation import real_base as rb
from engine.evaluation import real_speech as rs
from engine.evaluation.corpus import Query
from engine.synth import audio as sa

SR = rs.SR


def test_families_stay_whole_and_the_sides_are_balanced() -> None:
    durations = {"conf-a": 30.0, "conf-a-18": 31.0, "vm-x": 20.0, "vm-y": 25.0, "demo-long": 50.0, "tt-1": 10.0}
    lib, held = rs.split_sides(durations)
    assert sorted(lib + held) == sorted(durations)
    for fam in {rs.family(s) for s in durations}:  # a re-recorded prompt never faces its other take
        sides = {s in lib for s in durations if rs.family(s) == fam}
        assert len(sides) == 1, fam
    total = sum(durations.values())
    assert abs(sum(durations[s] for s in lib) - total / 2) <= 20.0
    assert rs.split_sides(dict(reversed(list(durations.items())))) == (lib, held)  # order of listing: no matter


def test_a_prompt_named_inside_another_may_be_the_same_take() -> None:
    assert rs.related("invalid", "pbx-invalid") and rs.related("pbx-invalid", "invalid")
    assert rs.related("vm-from", "vm-from-extension") and rs.related("conf-adminmenu", "conf-adminmenu-18")
    assert not rs.related("vm-from", "vm-forward") and not rs.related("in", "vm-invalid")


def test_items_are_consecutive_prompts_of_at_least_a_minute() -> None:
    stems = [f"p{k:02d}" for k in range(20)]
    durations = dict.fromkeys(stems, 7.0)
    items = rs.group_items(stems, durations)
    assert [s for item in items for s in item] == stems
    assert all(sum(durations[s] + rs.GAP_SECONDS for s in item) >= rs.ITEM_SECONDS for item in items)
    # 20 x 7.3 s = 146 s: two items of 9 prompts, and a remainder of 2 (under half an item) joins the last
    assert [len(i) for i in items] == [9, 11]


def test_concatenation_puts_the_gap_between_prompts() -> None:
    a, b = np.ones(100, np.float32), np.full(50, 2.0, np.float32)
    x = rs.concatenate([a, b])
    gap = round(rs.GAP_SECONDS * SR)
    assert x.size == 150 + gap and not x[100 : 100 + gap].any() and x[-1] == 2.0


def test_gsm_phone_is_gsm_at_8k_and_narrowband(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    t = np.arange(2 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    path = tmp_path / "call.wav"
    rs.write_gsm_8k(path, x)
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        assert stream.codec_context.name == "gsm_ms" and stream.rate == 8000
    y = sa.read_audio(path, 8000)
    spectrum = np.abs(np.fft.rfft(y[2000:14000]))
    hz = np.fft.rfftfreq(12000, 1 / 8000)
    assert spectrum[np.abs(hz - 1000) < 30].max() > 20 * np.median(spectrum)  # the voice band is kept
    assert y.size == pytest.approx(2 * 8000, rel=0.02)


def _stand_in(root: Path) -> list[dict]:
    """Prompts of four families (two a side), 16 kHz like the fetched G.722 ones, with one exact duplicate."""
    media = root / "media" / "prompts"
    media.mkdir(parents=True)
    items = []
    names = [f"{fam}-{k}" for fam in ("conf", "vm", "demo", "dir") for k in range(4)] + ["vm-conf-0"]
    for k, name in enumerate(names):
        sa.write_audio(media / f"{name}.flac", sa.music(400 + k, 16.0, 16000), 16000)
        path = f"media/prompts/{name}.flac"
        items.append({"path": path, "modality": "audio", "genre": "speech-test", "package": "stand-in==0",
                      "registry": "none", "member": name, "licence": "generated"})  # fmt: skip
    (media / "zz-copy.flac").write_bytes((media / "conf-0.flac").read_bytes())
    items.append({**items[0], "path": "media/prompts/zz-copy.flac", "member": "zz-copy"})
    return items


def test_library_items_copies_and_negatives_come_from_opposite_sides(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    items = _stand_in(tmp_path)
    profile = rb.RealProfile("t", None, None, 8.0, None, ("mp3_64k",), 12.0, 1, None, None, 1, 100)
    corpus = rb.RealCorpus(root=tmp_path, profile=profile)
    rs.build_speech(corpus, items, tmp_path / "generated")
    assert any("zz-copy" in d and "same samples" in d for d in corpus.dropped["audio"])
    assert any("conf-0" in d and "may be a take" in d for d in corpus.dropped["audio"])  # vm-conf-0 / conf-0
    lib_members = {m for r in corpus.references for m in corpus.origin[r.id]["member"]}
    negatives = [q for q in corpus.queries if not q.positive]
    held_keys = [k for k in corpus.origin if k.startswith("audio-neg-")]
    assert negatives and all(any(q.id.startswith(k + "-") for k in held_keys) for q in negatives)
    neg_members = {m for k in held_keys for m in corpus.origin[k]["member"]}
    assert lib_members and neg_members and not lib_members & neg_members
    assert {rs.family(m) for m in lib_members}.isdisjoint({rs.family(m) for m in neg_members})
    assert not any(rs.related(a, b) for a in lib_members for b in neg_members)
    copies: list[Query] = [q for q in corpus.queries if q.positive]
    assert {q.transform for q in copies} == {"mp3_64k", "phone_gsm_8k"}
    assert any(q.id.endswith("-gsm") for q in negatives)
    for q in corpus.queries:
        assert q.path.exists()
    gsm = next(q for q in copies if q.transform == "phone_gsm_8k")
    (q0, q1, r0, r1) = gsm.boxes[0]
    assert q1 - q0 == pytest.approx(12.0) and r1 - r0 == pytest.approx(12.0)
