"""The engine as an evaluated system, through its public job interface: `Matcher.run_job` on a `LibraryStore`.

References are stored with `SaveType=onlysave` under their id as `PrimaryKey`; queries run with `nosave`, and the
MPS-shaped result is read back: `FpShots` (video), `AudioFpShots` (audio), `TextFpShots` (text). Text slices
carry the input span but only the *text* of the duplicated passage, so its position in the reference is found by
searching the reference for that text (the passage is quoted verbatim from it).
"""

from __future__ import annotations

from pathlib import Path

from engine.evaluation.corpus import Reference
from engine.evaluation.metrics import Box
from engine.evaluation.peers import Prediction
from engine.library import LibraryStore
from engine.matcher import Matcher
from engine.modalities import model_id_of
from shared.contracts.mps import FpShotConfig, FpShotResult, TextFpShotSlice


def _config(key: str, save_type: str, fp_db_id: str) -> FpShotConfig:
    return FpShotConfig.model_validate({"PrimaryKey": key, "SaveType": save_type, "FpDBId": fp_db_id})


class EngineSystem:
    name = "fpscreen"
    localises = True

    def __init__(self, store: LibraryStore, modality: str) -> None:
        self.modality = modality
        self.store = store
        self.matcher = Matcher(store)
        self.fp_db_id = store.create_library(f"eval-{modality}", model_id_of(modality)).fp_db_id
        self._texts: dict[str, str] = {}
        self.unlocated_slices = 0  # text slices whose quoted passage could not be found in the reference

    def index(self, refs: list[Reference]) -> None:
        for ref in refs:
            self.matcher.run_job(ref.path, _config(ref.id, "onlysave", self.fp_db_id))
            if self.modality == "text":
                self._texts[ref.id] = ref.path.read_text(encoding="utf-8")

    def predict(self, path: Path) -> list[Prediction]:
        outcome = self.matcher.run_job(path, _config(f"query:{path.name}", "nosave", self.fp_db_id))
        return self._predictions(outcome.result)

    def _predictions(self, result: FpShotResult) -> list[Prediction]:
        if self.modality == "text":
            return [
                Prediction(
                    shot.primary_key,
                    float(shot.similarity),
                    tuple(b for s in shot.slices if (b := self._text_box(shot.primary_key, s)) is not None),
                )
                for shot in result.text_matches()
            ]
        shots = result.video_matches() if self.modality == "video" else result.audio_matches()
        return [
            Prediction(
                shot.primary_key,
                float(shot.similarity),
                tuple((s.input.start, s.input.end, s.duplication.start, s.duplication.end) for s in shot.slices),
            )
            for shot in shots
        ]

    def _text_box(self, ref_id: str, piece: TextFpShotSlice) -> Box | None:
        quoted = piece.duplication_text
        at = self._texts.get(ref_id, "").find(quoted) if quoted else -1
        if at < 0:
            self.unlocated_slices += 1
            return None
        span = piece.input_fragment
        return (span.start, span.end, float(at), float(at + len(quoted)))
