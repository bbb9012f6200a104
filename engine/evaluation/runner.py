"""`scripts/eval`: build the corpus, run every system on every query, score, print the table, write the JSON.

python scripts/eval                  # full run (~10 min budget on 2 cores, peers included when installed)
python scripts/eval --quick          # every code path on a tiny corpus (what CI runs)
python scripts/eval --seed 7 --out eval.json --modality audio --no-peers
python scripts/eval --real [--quick]     # the real-media corpus: see engine/evaluation/real_runner.py
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from engine.evaluation import report
from engine.evaluation.corpus import FULL, MODALITIES, QUICK, Corpus, build_corpus
from engine.evaluation.engine_system import EngineSystem
from engine.evaluation.execution import SystemRun, run_system
from engine.evaluation.peers import Availability, System, chromaprint_peer, vpdq_peer
from engine.library import LibraryStore

ROOT = Path(__file__).resolve().parents[2]  # the checkout: its .fpscreen/ is gitignored
DEFAULT_CACHE = ROOT / ".fpscreen" / "eval-cache"
DEFAULT_OUT_DIR = ROOT / ".fpscreen" / "eval"


def peer_availability() -> dict[str, Availability]:
    return {"vpdq": vpdq_peer.availability(), "chromaprint": chromaprint_peer.availability()}


def make_systems(modality: str, store: LibraryStore, peers: dict[str, Availability], use_peers: bool) -> list[System]:
    systems: list[System] = [EngineSystem(store, modality)]
    if not use_peers:
        return systems
    if modality == "video" and peers["vpdq"].installed:
        shared: dict = {}  # both rules read the same hashes
        systems += [vpdq_peer.VpdqPeer(vpdq_peer.DOCUMENTED, shared), vpdq_peer.VpdqPeer(vpdq_peer.QUERY80, shared)]
    if modality == "audio" and peers["chromaprint"].installed:
        systems.append(chromaprint_peer.ChromaprintPeer())
    return systems


def evaluate(
    corpus: Corpus,
    modalities: tuple[str, ...] = MODALITIES,
    *,
    use_peers: bool = True,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[list[SystemRun], dict[str, Availability], dict[str, int]]:
    """Run every system on the corpus. Returns the runs, the peers' availability and unlocated text slices."""
    peers = peer_availability()
    runs: list[SystemRun] = []
    notes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="fpscreen-eval-") as data_dir, LibraryStore(data_dir) as store:
        for modality in modalities:
            for system in make_systems(modality, store, peers, use_peers):
                runs.append(run_system(system, corpus, log))
                if isinstance(system, EngineSystem) and system.unlocated_slices:
                    notes[modality] = system.unlocated_slices
    return runs, peers, notes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny corpus: every code path, in well under 2 minutes")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--out", type=Path, help="JSON output (default .fpscreen/eval/<profile>-seed<N>.json)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="media cache (.fpscreen/eval-cache)")
    parser.add_argument("--workers", type=int, default=2, help="processes generating media (default 2)")
    parser.add_argument("--modality", action="append", choices=MODALITIES, help="only these (repeatable)")
    parser.add_argument("--no-peers", action="store_true", help="evaluate the engine only")
    parser.add_argument("--real", action="store_true", help="the real-media corpus (see scripts/fetch_corpus)")
    parser.add_argument(
        "--corpus-dir", type=Path, help="real-media corpus (default $FPSCREEN_CORPUS or ~/.cache/fpscreen/corpus)"
    )
    parser.add_argument(
        "--background-hours",
        type=float,
        default=0.0,
        help="--real: also search the audio library inside this many hours of synthetic items (significance at scale)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.real:
        from engine.evaluation.real_runner import run

        return run(args, argv)
    profile = QUICK if args.quick else FULL
    modalities = tuple(m for m in MODALITIES if m in (args.modality or MODALITIES))
    out = args.out or DEFAULT_OUT_DIR / f"{profile.name}-seed{args.seed}.json"

    def log(message: str) -> None:
        print(f"[eval {time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    log(f"profile {profile.name}, seed {args.seed}, cache {args.cache_dir / str(args.seed)}")
    corpus = build_corpus(args.seed, profile, args.cache_dir, workers=args.workers, modalities=modalities, log=log)
    corpus_seconds = time.perf_counter() - started
    log(f"corpus ready ({corpus.generated} files generated): {corpus.counts()}")
    try:
        runs, peers, unlocated = evaluate(corpus, modalities, use_peers=not args.no_peers, log=log)
    except Exception:
        traceback.print_exc()
        return 1
    elapsed = time.perf_counter() - started
    meta = {
        "seed": args.seed,
        "profile": profile.name,
        "command": " ".join(["python", "scripts/eval", *(argv if argv is not None else sys.argv[1:])]),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {_cpus()} CPUs",
        "elapsed_seconds": round(elapsed, 1),
        "corpus_seconds": round(corpus_seconds, 1),
        "files_generated": corpus.generated,
        "peers_requested": not args.no_peers,
    }
    document = report.build(corpus, runs, peers, meta, unlocated)
    out.parent.mkdir(parents=True, exist_ok=True)
    report.write_json(document, out)
    table = report.render(document)
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
