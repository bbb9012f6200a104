"""The peers' matching rules on synthetic fingerprints (no peer needs to be installed), and their absence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.evaluation import execution, report, runner
from engine.evaluation.corpus import Query
from engine.evaluation.engine_system import EngineSystem
from engine.evaluation.peers import Availability, Prediction
from engine.evaluation.peers.chromaprint_peer import (
    ITEM_SECONDS,
    box_filter,
    gaussian_filter,
    match_segments,
    segment_box,
)
from engine.evaluation.peers.vpdq_peer import DOCUMENTED, QUERY80, VpdqPeer, match_percentages
from engine.library import LibraryStore


def _flip_bits(fp: np.ndarray, per_item: int, rng: np.random.Generator) -> np.ndarray:
    out = fp.copy()
    for i in range(len(out)):
        for bit in rng.choice(32, per_item, replace=False):
            out[i] ^= np.uint32(1 << int(bit))
    return out


def test_chromaprint_matcher_finds_an_excerpt_and_its_offset() -> None:
    rng = np.random.default_rng(1)
    reference = rng.integers(0, 2**32, 400, dtype=np.uint64).astype(np.uint32)
    query = _flip_bits(reference[120:300], 3, rng)  # an excerpt with 3 of 32 bits wrong per item
    [(pos1, pos2, duration, score)] = match_segments(query, reference)
    assert (pos1, pos2) == (0, 120)
    assert duration == 180
    assert score == pytest.approx(3.0)
    qs, qe, rs, re = segment_box(pos1, pos2, duration)
    assert qs == 0.0 and rs == pytest.approx(120 * ITEM_SECONDS) and qe - qs == pytest.approx(re - rs)


def test_chromaprint_matcher_rejects_unrelated_fingerprints() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 2**32, 300, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 2**32, 300, dtype=np.uint64).astype(np.uint32)
    assert match_segments(a, b) == []  # random items differ in ~16 of 32 bits, far above the threshold of 10
    assert match_segments(a[:0], b) == []


def test_chromaprint_box_filter_reflects_edges() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # Width 3: [x0, x0, x1], [x0, x1, x2], ... with the edge sample repeated (chromaprint's ReflectIterator).
    expected = [(1 + 1 + 2) / 3, 2.0, 3.0, 4.0, (4 + 5 + 5) / 3]
    assert box_filter(x, 3) == pytest.approx(expected)
    # Wider than the signal: it keeps bouncing between the edges.
    assert box_filter(np.array([1.0, 3.0]), 5) == pytest.approx([(3 + 1 + 1 + 3 + 3) / 5, (1 + 1 + 3 + 3 + 1) / 5])
    assert gaussian_filter(np.full(50, 7.0)) == pytest.approx(np.full(50, 7.0))


def test_vpdq_rules_on_frame_bags() -> None:
    rng = np.random.default_rng(3)
    library = rng.integers(0, 256, (40, 32), dtype=np.uint8)
    query = library[10:30].copy()
    query[:, 0] ^= 0b111  # 3 bits off: within the distance of 31
    q_pct, c_pct = match_percentages(query, library)
    assert (q_pct, c_pct) == (100.0, 50.0)
    assert match_percentages(rng.integers(0, 256, (5, 32), dtype=np.uint8), library) == (0.0, 0.0)

    shared = {"q": query, "lib": library}
    documented, query80 = VpdqPeer(DOCUMENTED, shared), VpdqPeer(QUERY80, shared)
    for peer in (documented, query80):
        peer._library = {"ref": library}
    # Half the library video is in the query: not a match by the README's rule, a match by the swapped one.
    assert documented.predict(Path("q")) == []
    assert [p.ref_id for p in query80.predict(Path("q"))] == ["ref"]


def test_outcome_scores_the_true_pair_only() -> None:
    query = Query("q", "video", "crop", Path("q.mp4"), "r1", ((0.0, 10.0, 5.0, 15.0),))
    predictions = [Prediction("r2", 0.5, ((0.0, 10.0, 0.0, 10.0),)), Prediction("r1", 0.9, ((0.0, 10.0, 5.0, 15.0),))]
    o = execution.outcome_of(query, predictions, localises=True)
    assert o.found and o.wrong == 1 and o.group == "r1"
    assert o.segment == (pytest.approx(1.0, abs=1e-6), pytest.approx(1.0, abs=1e-6))
    assert execution.outcome_of(query, [Prediction("r1", 1.0, None)], localises=False).segment is None
    missed = execution.outcome_of(query, [], localises=True)
    assert not missed.found and missed.segment == (1.0, 0.0)  # VCSL: truth without predictions
    negative = execution.outcome_of(Query("n", "video", "negative", Path("n.mp4"), None), predictions, localises=True)
    assert not negative.positive and negative.wrong == 2


def test_missing_peers_are_skipped_and_reported(tmp_path: Path) -> None:
    absent = {"vpdq": Availability(False, "not installed (x)"), "chromaprint": Availability(False, "not installed")}
    with LibraryStore(tmp_path / "db") as store:
        for modality in ("video", "audio"):
            systems = runner.make_systems(modality, store, absent, use_peers=True)
            assert [type(s) for s in systems] == [EngineSystem]
    document = {
        "peers": {k: {"installed": v.installed, "detail": v.detail} for k, v in absent.items()},
        "meta": {"profile": "quick", "elapsed_seconds": 1.0},
        "results": {},
    }
    assert report.notes(document)[:2] == ["peer vpdq: not installed (x)", "peer chromaprint: not installed"]
