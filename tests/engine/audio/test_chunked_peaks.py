"""Issue 10 item 7: block-by-block peak picking gives exactly the whole-file peaks (so fingerprints are unchanged),
whatever the block size, the silences and where the loudest moment is."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio.chunked import find_peaks_chunked
from engine.audio.landmarks import find_peaks
from engine.audio.params import SAMPLE_RATE
from engine.synth import audio as synth


def _signals() -> dict[str, np.ndarray]:
    music = synth.music(91, 45.0, SAMPLE_RATE).astype(np.float32)
    gaps = music.copy()
    gaps[SAMPLE_RATE * 10 : SAMPLE_RATE * 14] = 0.0  # digital silence: everything sits on the floor
    gaps[SAMPLE_RATE * 30 : SAMPLE_RATE * 30 + 37] = 0.0
    late_peak = 0.05 * music
    late_peak[-SAMPLE_RATE * 2 :] *= 20  # the loudest moment (which sets the floor) is in the last block
    noisy = synth.add_noise(music, 3.0, seed=4).astype(np.float32)
    odd = music[: SAMPLE_RATE * 41 + 777]  # a length that is no multiple of the hop or of a block
    return {"music": music, "gaps": gaps, "late_peak": late_peak, "noisy": noisy, "odd": odd}


SIGNALS = _signals()


@pytest.mark.parametrize("name", sorted(SIGNALS))
@pytest.mark.parametrize("block", [64, 700])
def test_block_peaks_equal_whole_file_peaks(name: str, block: int) -> None:
    x = SIGNALS[name]
    t, f = find_peaks(x)
    bt, bf = find_peaks_chunked(x, block, whole_file_frames=0)
    assert t.size > 50
    np.testing.assert_array_equal(bt, t)
    np.testing.assert_array_equal(bf, f)
    assert bt.dtype == t.dtype and bf.dtype == f.dtype


def test_short_inputs_take_the_whole_file_path() -> None:
    for size in (0, 100, 1024, 5000):
        x = SIGNALS["music"][:size]
        got, want = find_peaks_chunked(x), find_peaks(x)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
