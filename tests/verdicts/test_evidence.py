"""Evidence from an MPS result: how much of the upload (and of the library item) each match covers."""

from __future__ import annotations

import pytest

from shared.verdicts.evidence import Evidence, covered, job_evidence, job_from_result_json

from .media import job, media_shot, text_shot


def test_union_of_spans() -> None:
    assert covered([]) == 0.0
    assert covered([(0, 10), (5, 12), (20, 21)]) == 13.0
    assert covered([(3, 4), (0, 10)]) == 10.0


def test_a_one_second_slice_is_not_a_full_copy() -> None:
    sliver = job_evidence(job(duration=60, video=[media_shot("lib-a", 0.76, (10, 1, 40, 0.76))]))
    full = job_evidence(job(duration=60, video=[media_shot("lib-a", 1.0, (0, 60, 0, 1.0))]))
    (s,), (f,) = sliver.items, full.items
    assert (s.matched, s.upload_share, s.best_similarity) == (1.0, pytest.approx(1 / 60, abs=1e-4), 0.76)
    assert (f.matched, f.upload_share, f.best_similarity) == (60.0, 1.0, 1.0)


def test_pictures_and_soundtrack_over_the_same_seconds_count_once_and_both_agree() -> None:
    evidence = job_evidence(
        job(
            duration=40,
            video=[media_shot("lib-a", 0.9, (0, 10, 30, 0.95), (20, 5, 70, 0.85))],
            audio=[media_shot("lib-a", 0.8, (1, 12, 31, 0.8))],
        )
    )
    (item,) = evidence.items
    assert item.matched == 18.0  # [0,13) ∪ [20,25)
    assert item.upload_share == pytest.approx(18 / 40)
    assert item.modalities == {"video": 15.0, "audio": 12.0}
    assert item.agreement == "both" and item.labels == ["pictures", "soundtrack"]
    assert item.library_matched == 18.0  # [30,43) ∪ [70,75)
    assert item.library_share is None and any("unknown" in a for a in item.approximated)
    assert (item.best_similarity, item.similarity, item.slices) == (0.95, 0.9, 3)


def test_library_share_uses_a_known_item_length() -> None:
    fp_job = job(duration=30, video=[media_shot("lib-a", 1.0, (0, 30, 0, 1.0))])
    (item,) = job_evidence(fp_job, library_lengths={"lib-a": 120.0}).items
    assert item.library_share == 0.25
    assert not any(a.startswith("library_share") for a in item.approximated)


def test_items_are_ordered_by_coverage_and_best_is_the_largest() -> None:
    evidence = job_evidence(
        job(
            duration=100,
            video=[media_shot("small", 1.0, (0, 2, 0, 1.0)), media_shot("big", 0.8, (10, 50, 0, 0.8))],
        )
    )
    assert [i.primary_key for i in evidence.items] == ["big", "small"]
    assert evidence.best is not None and evidence.best.primary_key == "big"


def test_plain_text_is_measured_in_characters_with_the_library_side_approximated() -> None:
    copied = "the quick brown fox jumps over the lazy dog " * 5
    evidence = job_evidence(
        job(duration=1000, text=[text_shot("novel", (100, 220, copied, copied, 0.97))], text_type="Text"),
        object_key="uploads/essay.txt",
    )
    (item,) = evidence.items
    assert evidence.unit == "chars" and item.unit == "chars"
    assert (item.matched, item.upload_share, item.library_matched) == (220.0, 0.22, float(len(copied)))
    assert item.modalities == {"text": 220.0}
    assert any("no library range for text" in a for a in item.approximated)


def test_no_result_no_items_and_a_round_trip() -> None:
    assert job_evidence(job(duration=10)).items == []
    evidence = job_evidence(job(duration=20, audio=[media_shot("x", 0.9, (0, 5, 1, 0.9))]))
    assert Evidence.from_dict(evidence.to_dict()) == evidence


def test_stored_result_json_parses_back() -> None:
    fp_job = job(duration=20, video=[media_shot("x", 0.9, (0, 5, 1, 0.9))])
    again = job_from_result_json(fp_job.to_wire_json())
    assert again is not None and job_evidence(again) == job_evidence(fp_job)
    assert job_from_result_json("") is None and job_from_result_json("{not json") is None
