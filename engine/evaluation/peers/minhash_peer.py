"""datasketch MinHash LSH Ensemble as a text peer: the usual near-duplicate detector for documents.

Each document becomes the set of its word 5-shingles (lower case, \\w+ tokens), sketched with 128 permutations;
`MinHashLSHEnsemble` finds library documents that contain at least `THRESHOLD` of a query's shingles
(containment, not Jaccard, so an excerpt matches the whole document it came from). Does not localise.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from engine.evaluation.corpus import Reference
from engine.evaluation.peers import Availability, Prediction

SHINGLE = 5
PERMUTATIONS = 128
THRESHOLD = 0.5


def availability() -> Availability:
    try:
        version = importlib.metadata.version("datasketch")
        import datasketch  # noqa: F401
    except Exception as exc:
        return Availability(False, f"not installed ({type(exc).__name__}); pip install -e '.[eval]'")
    return Availability(True, f"datasketch {version}")


def shingles(text: str, n: int = SHINGLE) -> set[bytes]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < n:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


class MinHashPeer:
    name = "minhash-lsh"
    modality = "text"
    localises = False

    def __init__(self) -> None:
        self._refs: list[tuple[str, object, int]] = []
        self._lsh: object | None = None

    def _sketch(self, items: set[bytes]) -> object:
        from datasketch import MinHash

        m = MinHash(num_perm=PERMUTATIONS, seed=1)
        m.update_batch(list(items))
        return m

    def index(self, refs: list[Reference]) -> None:
        from datasketch import MinHashLSHEnsemble

        for ref in refs:
            items = shingles(ref.path.read_text(encoding="utf-8"))
            if items:
                self._refs.append((ref.id, self._sketch(items), len(items)))
        lsh = MinHashLSHEnsemble(threshold=THRESHOLD, num_perm=PERMUTATIONS, num_part=16)
        lsh.index(self._refs)
        self._lsh = lsh
        self._sketches = {ref_id: m for ref_id, m, _ in self._refs}

    def predict(self, path: Path) -> list[Prediction]:
        items = shingles(path.read_text(encoding="utf-8"))
        if not items or self._lsh is None:
            return []
        query = self._sketch(items)
        hits = self._lsh.query(query, len(items))  # type: ignore[attr-defined]
        return [Prediction(ref_id, float(query.jaccard(self._sketches[ref_id])), None) for ref_id in sorted(hits)]
