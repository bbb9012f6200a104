"""The audio modality: landmark (peak-pair) fingerprints of audio tracks, an inverted index, and its oracle.

`AudioModality().extract(path)` decodes the first audio stream of any file (mp3, m4a, wav, flac, ogg, or a
video's soundtrack) to 8 kHz mono and keeps its spectral peaks; `new_index()` finds which library items, and
which time ranges of them, a query copies.

Modules: `decode` (PyAV -> mono samples), `landmarks` (peaks, peak pairs, 22-bit hashes), `fingerprint`
(`AudioFingerprint`), `alignment` (hash hits -> Hough votes -> segments; shared by both indexes), `base` (the
search driver, speed hypotheses), `index` (the fast inverted index), `reference` (brute force, for tests),
`modality` (`AudioModality`), `params` (every analysis constant).

What it withstands (5 s excerpts, measured): MP3/AAC/Opus re-encoding down to 32-64 kbit/s, white or pink
noise down to about -5 dB SNR, volume changes (clipping included), telephone band-pass, and, with
`AudioModality(speeds=SPEED_GRID)`, playback speed changes of +-3 % (pitch and tempo together); the default
single hypothesis tolerates about +-0.3 %. Offsets come out within ~10 ms.
"""

from .base import DEFAULT_SPEEDS, SPEED_GRID
from .fingerprint import AudioFingerprint
from .index import AudioIndex
from .modality import AudioModality
from .reference import ReferenceAudioIndex

__all__ = ["DEFAULT_SPEEDS", "SPEED_GRID", "AudioFingerprint", "AudioIndex", "AudioModality", "ReferenceAudioIndex"]
