"""audfprint2 (Dan Ellis's landmark audio fingerprinter, PyPI `audfprint2`) as an audio peer.

Its own file reader shells out to an `ffmpeg` binary, which this project does not need (PyAV decodes); so the
audio is decoded with PyAV at the analyzer's rate (11025 Hz mono) and fed to audfprint2's own pipeline:
`Analyzer.find_peaks` -> `peaks2landmarks` -> `landmarks2hashes`, a `HashTable`, and `Matcher.match_hashes` with
`find_time_range` (so it localises) and the package's defaults (density 20, >= 5 time-aligned common hashes).
Every reference with an alignment above that threshold is reported, as its best alignment.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from engine.evaluation.corpus import Reference
from engine.evaluation.peers import Availability, Prediction
from engine.synth import audio as sa


def availability() -> Availability:
    try:
        version = importlib.metadata.version("audfprint2")
        import audfprint2.core.analyzer  # noqa: F401  (scipy, h5py are its own dependencies)
    except Exception as exc:  # not installed, or installed without its dependencies
        return Availability(False, f"not installed ({type(exc).__name__}); pip install -e '.[eval]'")
    return Availability(True, f"audfprint2 {version}")


class AudfprintPeer:
    name = "audfprint2"
    modality = "audio"
    localises = True

    def __init__(self) -> None:
        from audfprint2.core import analyzer, hash_table, matcher

        self._analyzer_mod = analyzer
        self.analyzer = analyzer.Analyzer()
        self.table = hash_table.HashTable()
        self.matcher = matcher.Matcher()
        self.matcher.find_time_range = True
        self.matcher.max_returns = 1000
        self.hop = self.analyzer.n_hop / self.analyzer.target_sr

    def _hashes(self, path: Path) -> np.ndarray:
        x = sa.read_audio(path, self.analyzer.target_sr).astype(np.float64)
        peaks = self.analyzer.find_peaks(x, self.analyzer.target_sr)
        if not peaks:
            return np.zeros((0, 2), np.int32)
        hashes = self._analyzer_mod.landmarks2hashes(self.analyzer.peaks2landmarks(peaks))
        return np.unique(np.asarray(hashes, np.int32), axis=0)

    def index(self, refs: list[Reference]) -> None:
        for ref in refs:
            self.table.store(ref.id, self._hashes(ref.path))

    def predict(self, path: Path) -> list[Prediction]:
        hashes = self._hashes(path)
        if not len(hashes):
            return []
        rows = np.asarray(self.matcher.match_hashes(self.table, hashes))
        best: dict[str, Prediction] = {}
        for track, count, skew, _raw, _rank, t0, t1 in rows:
            ref_id = str(self.table.names[int(track)])
            if ref_id in best:  # rows come best first; keep each reference's best alignment
                continue
            q0, q1 = t0 * self.hop, t1 * self.hop
            box = (q0, q1, q0 + skew * self.hop, q1 + skew * self.hop)
            best[ref_id] = Prediction(ref_id, float(count), (box,))
        return list(best.values())
