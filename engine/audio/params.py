"""Analysis constants shared by extraction, hashing and search. Changing one bumps `FORMAT_VERSION`."""

from __future__ import annotations

FORMAT_VERSION = 1

# 8 kHz keeps the telephone band (300-3400 Hz), where landmarks survive every degradation we care about, and
# makes the STFT cheap. 1024-sample windows (128 ms) give smooth, noise-robust peaks; the 128-sample hop (16 ms)
# is the time resolution of anchors and offsets.
SAMPLE_RATE = 8000
N_FFT = 1024
HOP = 128
FRAME_SECONDS = HOP / SAMPLE_RATE

# Peaks are only taken between 250 Hz and 3.5 kHz: below, band-pass and small speakers remove the energy;
# above, lossy codecs at low bit rates do.
F_MIN_HZ = 250.0
F_MAX_HZ = 3500.0

# Peak picking: a peak is the maximum of a (2*PEAK_DT+1) frames x (2*PEAK_DF+1) bins neighbourhood of the
# (3-frame smoothed) log spectrogram, stands CONTRAST_DB above the mean of its +-2*PEAK_DF bins, and fewer than
# PEAKS_PER_SECOND louder peaks lie within +-0.5 s (a sliding, shift-invariant density cap: an excerpt picks
# the same peaks as the whole file, and the count does not depend on the volume).
PEAK_DT = 4
PEAK_DF = 12
TIME_SMOOTH = 1  # half-width in frames of the box smoothing along time
CONTRAST_DB = 6.0
PEAKS_PER_SECOND = 10
FLOOR_DB = 70.0  # ignore anything this far below the loudest bin (digital silence, dither)

# Landmarks pair an anchor peak with up to FANOUT later peaks in its target zone, 1..DT_MAX frames ahead and
# within +-DF_MAX hash bins. Hash = f1 (9 bits) | df + DF_MAX (7 bits) | dt (6 bits) = 22 bits. Hash bins are
# the FFT's own 7.8 Hz: the interpolated peak frequencies are precise to well under a bin even through noise,
# so the fine bins cost no robustness, and they make hashes 4x more specific than 15.6 Hz bins would (music
# piles its energy on a few notes: posting lists are long, and their length is what a search pays for).
HASH_BIN_HZ = SAMPLE_RATE / N_FFT
HASH_F_LO = 32  # bin 32 = 250 Hz, so f1 = bin - 32 fits 9 bits
FANOUT = 3
# An index stores each anchor's first LIBRARY_FANOUT landmark only, a query hashes FANOUT (library sparser than
# query, as audfprint and Olaf choose their densities): the stored pair (a, b) is still found when up to FANOUT - 1
# extra peaks (noise, a codec's artefacts, a mixed-in voice) slip in between a and b in the copy, and the index
# holds a third of the postings (9.3 landmarks a second on real music, was 26.6; 155 MiB per 1,000 h in
# `scripts/bench`). The real corpus's audio queries against its library inside 1,000 h of synthetic audio
# (`scripts/eval --real --background-hours 1000`): 288/290 copies found (289/290 storing all three), 0/91
# negatives, with the speed scan's thresholds set for it (`base`).
LIBRARY_FANOUT = 1
DT_MAX = 63
DF_MAX = 63
F1_BITS, DF_BITS, DT_BITS = 9, 7, 6
HASH_BITS = F1_BITS + DF_BITS + DT_BITS
