"""The audio modality: landmark (peak-pair) fingerprints of audio tracks, an inverted index, and its oracle.

`AudioModality().extract(path)` decodes the first audio stream of any file (mp3, m4a, wav, flac, ogg, or a
video's soundtrack) to 8 kHz mono and keeps its spectral peaks; `new_index()` finds which library items, and
which time ranges of them, a query copies.

Modules: `decode` (PyAV -> mono samples), `landmarks` (peaks, peak pairs, 22-bit hashes), `fingerprint`
(`AudioFingerprint`), `alignment` (hash hits -> Hough votes -> segments; shared by both indexes), `base` (the
search driver: full search, speed scan, verification), `index` (the fast inverted index), `reference` (brute
force over every item: what `AudioModality.search_all`, the oracle,
runs), `modality` (`AudioModality`), `params` (every analysis constant).

What it withstands (5 s excerpts, measured): MP3/AAC/Opus re-encoding down to 32-64 kbit/s, white or pink
noise down to about -5 dB SNR, volume changes (clipping included), telephone band-pass, and playback speed
changes (pitch and tempo together: resampled, "nightcore", "slowed") of up to +-8 %, found by the default
speed scan (`SCAN_SPEEDS`; `AudioModality(scan=())` turns it off, leaving the +-0.3 % one full search at 1.0
tolerates), and tempo alone or pitch alone changed by up to +-6 % (`TEMPO_SCAN`, `PITCH_SCAN` in `base`).
Offsets come out within ~10 ms; a speed-changed copy's two spans each in its own file's seconds. A slice is
reported only when its evidence is significant for the library's size and lasts 5 s (see `alignment`).
"""

from .base import DEFAULT_SPEEDS, SCAN_SPEEDS, SPEED_GRID
from .fingerprint import AudioFingerprint
from .index import AudioIndex
from .modality import AudioModality
from .reference import ReferenceAudioIndex

__all__ = [
    "DEFAULT_SPEEDS",
    "SCAN_SPEEDS",
    "SPEED_GRID",
    "AudioFingerprint",
    "AudioIndex",
    "AudioModality",
    "ReferenceAudioIndex",
]
