"""Copy detection end to end on synthetic documents: what is found, where, and that both indexes agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core import ExtractOptions, ItemMatch, ModalityIndex
from engine.synth import text as synth
from engine.text import TextFingerprint, TextModality

MODALITY = TextModality()


@pytest.fixture(scope="module")
def library() -> list[str]:
    return [synth.document(seed, 6000, "en") for seed in range(8)] + [
        synth.document(100 + seed, 4000, "zh") for seed in range(4)
    ]


def _indexes(library: list[str]) -> list[ModalityIndex[TextFingerprint]]:
    indexes = [MODALITY.new_index(), MODALITY.reference_index()]
    for item_id, text in enumerate(library):
        fingerprint = TextFingerprint.from_text(text)
        for index in indexes:
            index.add(item_id, fingerprint)
    return indexes


@pytest.fixture(scope="module")
def indexes(library: list[str]) -> list[ModalityIndex[TextFingerprint]]:
    return _indexes(library)


def _search(indexes: list[ModalityIndex[TextFingerprint]], text: str) -> list[ItemMatch]:
    query = TextFingerprint.from_text(text)
    fast, reference = (index.search(query) for index in indexes)
    assert fast == reference  # the inverted index must find exactly what brute force finds
    return fast


@pytest.mark.parametrize(("item", "seed"), [(2, 0), (5, 1), (9, 2)])
def test_excerpt_with_five_percent_edits_is_found_with_its_fragment(
    indexes: list[ModalityIndex[TextFingerprint]], library: list[str], item: int, seed: int
) -> None:
    lang = "zh" if item >= 8 else "en"
    ref_start, passage = synth.excerpt(library[item], 300, seed)
    copied = synth.char_edits(passage, 0.05, seed)
    offset, query = synth.embed(copied, synth.document(500 + seed, 2000, lang), seed)

    matches = _search(indexes, query)

    assert [m.item_id for m in matches] == [item]
    segments = matches[0].segments
    # The slices cover the copied passage (within a few characters at either end) and nothing else.
    assert segments[0].input_start == pytest.approx(offset, abs=12)
    assert segments[-1].input_end == pytest.approx(offset + len(copied), abs=12)
    assert segments[0].ref_start == pytest.approx(ref_start, abs=12)
    assert segments[-1].ref_end == pytest.approx(ref_start + 300, abs=12)
    assert sum(s.input_duration for s in segments) >= 0.9 * len(copied)
    for segment in segments:
        assert segment.input_text == query[int(segment.input_start) : int(segment.input_end)]
        assert segment.ref_text == library[item][int(segment.ref_start) : int(segment.ref_end)]
    assert 0.85 <= matches[0].similarity < 1.0


def test_exact_copy_despite_case_punctuation_and_whitespace(
    indexes: list[ModalityIndex[TextFingerprint]], library: list[str]
) -> None:
    passage = library[4][1000:2500]
    disguised = synth.change_whitespace(synth.change_punctuation(synth.change_case(passage, 1), 1), 1)
    matches = _search(indexes, disguised)
    assert [m.item_id for m in matches] == [4]
    assert matches[0].similarity == pytest.approx(1.0)
    assert matches[0].segments[0].ref_start == pytest.approx(1000, abs=3)
    assert matches[0].segments[-1].ref_end == pytest.approx(2500, abs=3)


def test_reordered_sentences_give_one_slice_per_moved_run(
    indexes: list[ModalityIndex[TextFingerprint]], library: list[str]
) -> None:
    passage = library[1][:3000]
    matches = _search(indexes, synth.reorder_sentences(passage, 3))
    assert [m.item_id for m in matches] == [1]
    segments = matches[0].segments
    assert len(segments) > 5
    assert sum(s.ref_duration for s in segments) > 0.8 * len(passage)
    assert [s.input_start for s in segments] == sorted(s.input_start for s in segments)


def test_unrelated_texts_do_not_match(indexes: list[ModalityIndex[TextFingerprint]]) -> None:
    for seed in range(6):
        assert _search(indexes, synth.document(900 + seed, 4000, "en" if seed % 2 else "zh")) == []


def test_one_query_copying_two_items(indexes: list[ModalityIndex[TextFingerprint]], library: list[str]) -> None:
    query = library[0][:800] + "\n\n" + library[10][2000:2600]
    matches = _search(indexes, query)
    assert sorted(m.item_id for m in matches) == [0, 10]
    assert matches[0].item_id == 0  # more copied text ranks first


def test_remove_and_re_add(library: list[str]) -> None:
    indexes = _indexes(library[:4])
    query = library[3][500:1500]
    for index in indexes:
        index.remove(3)
        assert len(index) == 3
    assert _search(indexes, query) == []
    for index in indexes:
        index.add(3, TextFingerprint.from_text(library[3]))
        index.add(3, TextFingerprint.from_text(library[3]))  # re-adding an id replaces it
    assert [m.item_id for m in _search(indexes, query)] == [3]
    assert indexes[0].memory_bytes() > 0


def test_asr_copy_is_reported_in_seconds(tmp_path: Path, library: list[str]) -> None:
    timed = synth.cues(library[6][:2000], chars_per_second=10)
    asr = tmp_path / "talk.json"
    asr.write_text(synth.to_asr_json(timed), encoding="utf-8")
    index = MODALITY.new_index()
    index.add(1, MODALITY.extract(asr, ExtractOptions(text_type="ASR")))

    matches = index.search(TextFingerprint.from_text(library[6][1000:1600]))

    assert [m.item_id for m in matches] == [1]
    segment = matches[0].segments[0]
    assert segment.input_start == pytest.approx(0, abs=3)  # query is plain text: characters
    cue = next(c for c in timed if library[6][1000:1010].strip()[:5] in c[2])
    assert cue[0] - 1 <= segment.ref_start <= cue[1]  # ref is ASR: seconds inside the right cue
    assert segment.ref_end <= timed[-1][1]
