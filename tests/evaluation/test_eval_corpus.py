"""Ground truth of the corpus: boxes must point at the very text or time they claim."""

from __future__ import annotations

import pytest

from engine.evaluation.corpus import QUICK, _assign, build_corpus, derive
from engine.evaluation.transforms import AUDIO_TRANSFORMS, VIDEO_TRANSFORMS, reorder_with_truth
from engine.synth import text as st


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reordered_sentences_map_back_to_their_source(seed: int) -> None:
    source = st.document(seed, 1500, "en")[100:1300]
    query, boxes = reorder_with_truth(source, seed)
    assert query == st.reorder_sentences(source, seed)
    assert len(boxes) >= 3
    for qs, qe, rs, re in boxes:
        assert query[qs:qe] == source[rs:re]
    # Boxes tile the query in order, leaving out only whitespace.
    assert sorted(boxes) == boxes
    covered = sum(qe - qs for qs, qe, _, _ in boxes)
    assert covered >= len(query.strip()) - 2 * len(boxes)


def test_time_boxes_of_speed_and_insertion() -> None:
    # 20 s at 15 fps played 10% faster: round(300 / 1.1) = 273 frames.
    assert VIDEO_TRANSFORMS["speed_+10%"].box(5.0, 20.0, 15.0) == (0.0, 273 / 15, 5.0, 25.0)
    assert VIDEO_TRANSFORMS["inserted_at_8s"].box(3.0, 20.0, 15.0) == (8.0, 28.0, 3.0, 23.0)
    assert AUDIO_TRANSFORMS["inside_other_audio"].box(2.0, 22050 * 10) == (7.0, 17.0, 2.0, 12.0)
    qs, qe, rs, re = AUDIO_TRANSFORMS["speed_-5%"].box(0.0, 22050 * 10)
    assert (qs, rs, re) == (0.0, 0.0, 10.0) and qe == pytest.approx(10 / 0.95, abs=1e-4)


def test_assignment_rotates_over_references() -> None:
    assert _assign(8, 4, 0) == [0, 1, 2, 3] and _assign(8, 4, 1) == [4, 5, 6, 7]
    assert _assign(8, None, 3) == list(range(8))
    assert _assign(2, 5, 0) == [0, 1]
    assert derive(1, "a") == derive(1, "a") != derive(2, "a")


def test_text_corpus_truth_quotes_the_reference(tmp_path) -> None:
    corpus = build_corpus(7, QUICK, tmp_path, modalities=("text",))
    refs = {r.id: r.path.read_text(encoding="utf-8") for r in corpus.refs("text")}
    queries = corpus.queries_of("text")
    assert {q.transform for q in queries} == set(QUICK.text_transforms) | {"negative"}
    for q in queries:
        if not q.positive:
            continue
        text = q.path.read_text(encoding="utf-8")
        for qs, qe, rs, re in q.boxes:
            if q.transform in ("inside_other_doc", "sentence_reorder", "case_change"):
                assert text[qs:qe].lower() == refs[q.ref_id][rs:re].lower()
            assert 0 <= qs < qe <= len(text) and 0 <= rs < re <= len(refs[q.ref_id])
    # A second build reuses every file.
    again = build_corpus(7, QUICK, tmp_path, modalities=("text",))
    assert [q.path for q in again.queries] == [q.path for q in queries]
