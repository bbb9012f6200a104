from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from engine.text.normalize import normalize
from engine.text.winnowing import DEFAULT_K, DEFAULT_W, kgram_hashes, winnow


@pytest.mark.parametrize("w", [1, 2, 4, 6])
def test_winnow_picks_the_rightmost_minimum_of_every_window(w: int) -> None:
    hashes = np.random.default_rng(w).integers(0, 20, 3000).astype(np.uint64)  # many ties on purpose
    selected_hashes, positions = winnow(hashes, w)
    windows = sliding_window_view(hashes, w)
    expected = np.unique(np.arange(len(windows)) + (w - 1) - np.argmin(windows[:, ::-1], axis=1))
    assert positions.tolist() == expected.tolist()
    assert selected_hashes.tolist() == hashes[expected].tolist()


def test_short_input_still_yields_one_fingerprint() -> None:
    hashes = np.array([5, 3, 9], dtype=np.uint64)
    assert winnow(hashes, 6)[1].tolist() == [1]
    assert len(kgram_hashes(np.arange(DEFAULT_K - 1, dtype=np.uint32))) == 0


def test_shared_run_of_w_plus_k_minus_one_shares_a_fingerprint() -> None:
    rng = np.random.default_rng(7)
    run = rng.integers(0x4E00, 0x9FA5, DEFAULT_W + DEFAULT_K - 1).astype(np.uint32)
    for seed in range(20):
        noise = np.random.default_rng(100 + seed).integers(0x4E00, 0x9FA5, (2, 50)).astype(np.uint32)
        a = np.concatenate((noise[0], run))
        b = np.concatenate((run, noise[1]))
        ha, _ = winnow(kgram_hashes(a))
        hb, _ = winnow(kgram_hashes(b))
        assert set(ha.tolist()) & set(hb.tolist())


def test_density_is_about_two_over_w_plus_one() -> None:
    text = "".join(chr(c) for c in np.random.default_rng(1).integers(0x4E00, 0x9FA5, 20000))
    hashes, _ = winnow(kgram_hashes(normalize(text).codes))
    assert 0.8 * 2 / (DEFAULT_W + 1) < len(hashes) / 20000 < 1.2 * 2 / (DEFAULT_W + 1)
