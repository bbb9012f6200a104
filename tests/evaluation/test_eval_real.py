"""The real-media evaluation (`scripts/eval --real`): its edits, its ground truth, and the pipeline end to end.

No test here touches the network. The pipeline runs on a tiny stand-in cache (synthetic media laid out and
listed exactly as `scripts/fetch_corpus` lays out and lists fetched media), and once more on the fetched corpus
when this machine has one (skipped otherwise).
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.evaluation import real_audio as ra
from engine.evaluation import real_base as rb
from engine.evaluation import real_corpus as rc
from engine.evaluation.real_fetch import MANIFEST, SCHEMA, Source, _convert, _wanted, default_dir, load_manifest
from engine.synth import audio as sa
from engine.synth import text as st
from engine.synth import video as sv

ROOT = Path(__file__).resolve().parents[2]
SR = rb.SR

# ------------------------------------------------------------------------------------------ edits


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x[SR : 3 * SR]))
    return float(np.argmax(spectrum) * SR / (2 * SR))


def test_atempo_changes_duration_not_pitch() -> None:
    x = _tone(4.0)
    y = ra.atempo(x, 1.05)
    assert y.size == pytest.approx(x.size / 1.05, rel=0.01)
    assert _peak_hz(y) == pytest.approx(440, abs=2)


def test_pitch_shift_changes_pitch_not_duration() -> None:
    x = _tone(4.0)
    y = ra.pitch_shift(x, 1.05)
    assert y.size == pytest.approx(x.size, rel=0.01)
    assert _peak_hz(y) == pytest.approx(462, abs=3)


def test_phone_writer_is_8k_mulaw(tmp_path: Path) -> None:
    import av

    path = tmp_path / "phone.wav"
    ra.write_mulaw_8k(path, ra.phone(_tone(2.0)))
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        assert (stream.codec_context.name, stream.rate) == ("pcm_mulaw", 8000)


def test_rotate_keeps_size_and_moves_pixels() -> None:
    frames = np.zeros((2, 40, 60, 3), np.uint8)
    frames[:, 5:8, :] = 255  # a horizontal bar near the top
    out = rc.Rotate(4.0)(sv.Clip(frames, 10.0)).frames
    assert out.shape == frames.shape
    assert not np.array_equal(out, frames)
    left, right = (float(np.nonzero(out[0, :, x, 0])[0].mean()) for x in (10, 50))
    assert 1.5 <= abs(left - right) <= 4.0  # tilted: 40 px * tan(4 deg) = 2.8 rows, give or take nearest pixels


def test_reverb_keeps_length_and_changes_signal() -> None:
    x = _tone(2.0)
    y = ra.reverb(x, seed=1)
    assert y.shape == x.shape and not np.allclose(x, y)


DOC = st.document(5, 3000, "en")


@pytest.mark.parametrize("name", list(rc.TEXT_EDITS))
def test_text_edit_boxes_point_at_copied_text(name: str) -> None:
    """Each box's reference span is text of the source; the query span holds that text (edited) at that place."""
    edit = rc.TEXT_EDITS[name]
    query, boxes = edit.edit(DOC, 7, st.document(9, 1500, "en"))
    assert boxes
    for qs, qe, rs, re_ in boxes:
        assert 0 <= qs < qe <= len(query) and 0 <= rs < re_ <= len(DOC)
        if name in ("verbatim_excerpt", "sentence_reorder", "delete_25%_sentences", "insert_sentences"):
            assert query[qs:qe] == DOC[rs:re_]
    if name == "html_wrapped":
        assert query.startswith("<!DOCTYPE html>") and "&copy;" in query
    if name == "ocr_homoglyph_5%":
        assert len(query) == len(DOC) and query != DOC


def test_deleting_sentences_never_takes_more_than_a_quarter_of_the_text() -> None:
    short = "A title. " + "One long sentence that carries nearly all of this short item's text, " * 6 + "and ends."
    for seed in range(40):
        for text in (short, DOC):
            _, boxes = rc.delete_sentences(text, seed)
            kept = sum(qe - qs for qs, qe, _, _ in boxes)
            assert kept >= 0.75 * len(text.rstrip()) - 2 * len(boxes), (seed, len(text))
    lost = [len(rc.delete_sentences(DOC, seed)[0]) < len(DOC) for seed in range(10)]
    assert sum(lost) >= 8  # it still deletes


def test_insertions_add_foreign_sentences_between_runs() -> None:
    query, boxes = rc.insert_sentences(DOC, 3, "Completely unrelated words appear here. Another alien sentence.")
    assert len(boxes) > 1 and len(query) > len(DOC)


# ------------------------------------------------------------------------------------------ fetch (offline)


def test_spdx_records_become_licence_texts(tmp_path: Path) -> None:
    source = Source("npm", "x", "1", "text", "licences", ("package/licenses/*.json",), "MIT", "spdx-json")
    assert _wanted(source, "package/licenses/MIT.json") and not _wanted(source, "package/index.js")
    record = tmp_path / "MIT.json"
    record.write_text(json.dumps({"name": "MIT License", "licenseText": "Permission " * 60}), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    kept = _convert(source, record, out)
    assert kept is not None and kept[0].read_text(encoding="utf-8").startswith("Permission")
    stub = tmp_path / "Stub.json"
    stub.write_text(json.dumps({"licenseText": "short"}), encoding="utf-8")
    assert _convert(source, stub, out) is None


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff renders man pages")
def test_man_pages_are_rendered_and_aliases_skipped(tmp_path: Path) -> None:
    source = Source("deb", "x", "1", "text", "man-pages", ("usr/share/man/man3/*.3.gz",), "GPL", "man")
    page = tmp_path / "frob.3.gz"
    body = "The \\fBfrob\\fP() function frobnicates \\fIthing\\fP and returns zero on success. " * 8
    page.write_bytes(gzip.compress(f".TH FROB 3\n.SH NAME\nfrob \\- frobnicate\n.SH DESCRIPTION\n{body}\n".encode()))
    out = tmp_path / "out"
    out.mkdir()
    kept = _convert(source, page, out)
    assert kept is not None and kept[0].name == "frob.3.txt"
    text = kept[0].read_text(encoding="utf-8")
    assert "DESCRIPTION" in text and "frobnicates thing" in text and "\\f" not in text and "\b" not in text
    alias = tmp_path / "frob_alias.3.gz"
    alias.write_bytes(gzip.compress(b".so man3/frob.3\n"))
    link = tmp_path / "frob_link.3.gz"
    link.symlink_to(page)
    assert _convert(source, alias, out) is None and _convert(source, link, out) is None


def test_pages_of_several_folders_keep_apart(tmp_path: Path) -> None:
    source = Source("deb", "x", "1", "text", "guides", ("*/*.rst.txt",), "PSF", "flatten")
    for folder in ("howto", "faq"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "index.rst.txt").write_text(folder, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    names = {_convert(source, tmp_path / f / "index.rst.txt", out)[0].name for f in ("howto", "faq")}  # type: ignore[index]
    assert names == {"howto-index.rst.txt", "faq-index.rst.txt"}


def test_default_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FPSCREEN_CORPUS", str(tmp_path))
    assert default_dir() == tmp_path
    assert load_manifest(tmp_path) is None


# ------------------------------------------------------------------------------------------ the pipeline


def _stand_in_cache(root: Path) -> Path:
    """Synthetic media where fetched media would be, with a manifest in the fetcher's schema."""
    items = []

    def add(rel: str, modality: str, genre: str) -> None:
        items.append({"path": rel, "modality": modality, "genre": genre, "package": "stand-in==0",
                      "registry": "none", "member": rel, "licence": "generated", "bytes": 0, "sha256": ""})  # fmt: skip

    media = root / "media" / "stand-in"
    media.mkdir(parents=True)
    for i, seconds in enumerate((9.0, 5.0)):
        sv.make_video(media / f"clip{i}.mp4", 100 + i, seconds, (160, 120), 15.0)
        add(f"media/stand-in/clip{i}.mp4", "video", "clips")
    for i in range(4):
        sa.write_audio(media / f"track{i}.ogg", sa.music(200 + i, 50.0))
        add(f"media/stand-in/track{i}.ogg", "audio", "tracks")
    for i in range(8):
        (media / f"doc{i}.txt").write_text(st.document(300 + i, 2500, "en"), encoding="utf-8")
        add(f"media/stand-in/doc{i}.txt", "text", "docs")
    (root / MANIFEST).write_text(json.dumps({"schema": SCHEMA, "packages": [], "items": items}), encoding="utf-8")
    return root


def _run(corpus_dir: Path, out: Path) -> tuple[subprocess.CompletedProcess, dict]:
    command = [sys.executable, "scripts/eval", "--real", "--quick", "--no-peers", "--corpus-dir", str(corpus_dir)]
    done = subprocess.run([*command, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, json.loads(out.read_text(encoding="utf-8"))


def test_without_a_corpus_it_says_so(tmp_path: Path) -> None:
    command = [sys.executable, "scripts/eval", "--real", "--quick", "--corpus-dir", str(tmp_path / "none")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "scripts/fetch_corpus" in done.stderr


def test_quick_run_on_a_stand_in_cache(tmp_path: Path) -> None:
    done, document = _run(_stand_in_cache(tmp_path / "corpus"), tmp_path / "real.json")
    assert document["schema"] == "fpscreen-eval-real/1"
    for modality in rb.MODALITIES:
        assert f"### {modality}:" in done.stdout
        counts = document["corpus"][modality]
        assert counts["references"] and counts["queries"] and counts["negatives"], (modality, counts)
        engine = document["results"][modality]["copies"]["fpscreen"]
        assert engine["found"] >= 1, (modality, engine)  # unedited-enough copies of synthetic media are found
    # the held-out piece of a cut clip is a negative, its other piece a library item
    video_ids = {q["id"] for q in document["queries"] if q["modality"] == "video"}
    assert any(i.startswith("video-neg-clip0-1") for i in video_ids)
    # every false report names its slices
    assert all("slices" in f and "similarity" in f for f in document["false_reports"])
    # a second run reuses every generated file
    _, again = _run(tmp_path / "corpus", tmp_path / "real2.json")
    assert again["meta"]["files_generated"] == 0


@pytest.mark.skipif(load_manifest(default_dir()) is None, reason="no fetched corpus (run scripts/fetch_corpus)")
def test_quick_run_on_the_fetched_corpus(tmp_path: Path) -> None:
    _, document = _run(default_dir(), tmp_path / "real.json")
    for modality in rb.MODALITIES:
        assert document["corpus"][modality]["references"] > 0
    assert all(q["transform"] == "negative" or q["systems"]["fpscreen"] is not None for q in document["queries"])


def test_a_negative_shares_no_passage_with_the_library_of_any_genre(tmp_path: Path) -> None:
    """The engine searches every genre's library items at once, so a held-out page that quotes a library item of
    another genre (a how-to quoting the reference) is no negative."""
    media = tmp_path / "media"
    media.mkdir()
    items = []
    pages = []
    for i in range(4):
        pages.append(st.document(500 + i, 2000, "en").split())
        (media / f"a{i}.txt").write_text(" ".join(pages[-1]), encoding="utf-8")
        items.append({"path": f"media/a{i}.txt", "genre": "a", "package": "p==0", "member": "m", "licence": "x"})
    for i in range(6):
        # 15 words of each genre-a page, another stretch in each genre-b page (which share nothing among themselves)
        quotes = " ".join(" ".join(words[20 * i : 20 * i + 15]) for words in pages)
        text = st.document(600 + i, 2000, "en") + ("\n\n" + quotes if i % 2 else "")
        (media / f"b{i}.txt").write_text(text, encoding="utf-8")
        items.append({"path": f"media/b{i}.txt", "genre": "b", "package": "p==0", "member": "m", "licence": "x"})
    corpus = rb.RealCorpus(root=tmp_path, profile=rb.QUICK)
    rc._build_text(corpus, items, tmp_path / "generated")
    library = {r.path.name for r in corpus.references}
    negatives = {q.path.name for q in corpus.queries if q.transform == "negative"}
    quoting = {f"b{i}.txt" for i in (1, 3, 5)}
    assert negatives and not negatives & library
    dropped = {Path(d.split(":")[0]).name for d in corpus.dropped["text"]}
    assert not negatives & quoting and (quoting - library) <= dropped
