"""The engine's audio index with the evaluated library inside a synthetic background: `scripts/eval --real
--background-hours H`.

A real library of an hour or less never tests what a large one changes: the chance model asks more matches of a
segment as the library grows (`engine.audio.alignment`), the full search's posting budget starts to bind, and the
speed scan's votes compete with many more chance windows. Real media of a thousand hours does not ship in registry
packages, so the library's own items are searched for inside `hours` of synthetic items whose landmarks follow
the library's stored statistics (`engine.benchmarks.scale.add_audio_background`: what the scale bench measures
latency and memory on). A report of a background item counts as a wrong item.
"""

from __future__ import annotations

from pathlib import Path

from engine.audio import AudioFingerprint, AudioModality
from engine.benchmarks.scale import add_audio_background, new_bulk_audio_index
from engine.evaluation.corpus import Reference
from engine.evaluation.peers import Prediction

BACKGROUND = "background"  # the ref id a background item is reported under


class BackgroundAudioSystem:
    """`System` (see `engine.evaluation.peers`): the audio index searched directly, the library among `hours` of
    synthetic items. Its index is built once `index` knows the library (the background follows its statistics)."""

    modality = "audio"
    localises = True

    def __init__(self, hours: float, seed: int = 1) -> None:
        self.hours = hours
        self.seed = seed
        self.name = f"fpscreen in {hours:,g} h"
        self._modality = AudioModality()
        self._index = new_bulk_audio_index()
        self._ref_ids: dict[int, str] = {}

    def index(self, refs: list[Reference]) -> None:
        fingerprints: list[tuple[str, AudioFingerprint]] = []
        for ref in refs:
            fp = self._modality.extract(ref.path)
            if fp is not None:
                fingerprints.append((ref.id, fp))
        if not fingerprints:
            raise ValueError("no library item has an audio track: nothing to draw a background from")
        add_audio_background(self._index, [fp for _, fp in fingerprints], self.hours, self.seed)
        for item_id, (ref_id, fp) in enumerate(fingerprints, start=1):
            self._index.add(item_id, fp)
            self._ref_ids[item_id] = ref_id
        self._index.flush()

    def predict(self, path: Path) -> list[Prediction]:
        query = self._modality.extract(path)
        if query is None:
            return []
        return [
            Prediction(
                self._ref_ids.get(match.item_id, BACKGROUND),
                match.similarity,
                tuple((s.input_start, s.input_end, s.ref_start, s.ref_end) for s in match.segments),
            )
            for match in self._index.search(query, max_items=20)
        ]
