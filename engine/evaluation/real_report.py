"""The real-media evaluation's outputs: JSON (schema `fpscreen-eval-real/1`) and the Markdown tables.

Per modality and transform: recall, wrong-item reports on positives (a query reporting an item it does not copy),
VCSL segment F1 and boundary error; per modality: negatives flagged (held-out same-genre items with any report at
all). Every false report is listed with its slices (length, similarity), which is what precision work acts on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.evaluation.peers import Availability
from engine.evaluation.real_base import RealCorpus
from engine.evaluation.report import UNITS, _cells, _frac, _query_records, _summary_rows

if TYPE_CHECKING:
    from engine.evaluation.execution import SystemRun

SCHEMA = "fpscreen-eval-real/1"


def _words(path: Path, start: float, end: float) -> int:
    return len(re.findall(r"\w+", path.read_text(encoding="utf-8")[int(start) : int(end)]))


def false_reports(corpus: RealCorpus, runs: list[SystemRun]) -> list[dict[str, Any]]:
    """Every reported item a query does not copy: on negatives, and wrong items on positives."""
    out = []
    for run in runs:
        for q in corpus.queries_of(run.modality):
            for p in run.predictions.get(q.id, []):
                if p.ref_id == q.ref_id or p.ref_id in q.related:
                    continue
                slices = []
                for b in p.boxes or ():
                    s: dict[str, Any] = {
                        "query": [round(b[0], 2), round(b[1], 2)],
                        "ref": [round(b[2], 2), round(b[3], 2)],
                        "length": round(b[1] - b[0], 2),
                    }
                    if q.modality == "text":
                        s["words"] = _words(q.path, b[0], b[1])
                    slices.append(s)
                out.append({
                    "system": run.name, "modality": q.modality, "query": q.id, "transform": q.transform,
                    "kind": "negative" if not q.positive else "wrong-item", "reported": p.ref_id,
                    "similarity": round(p.score, 4), "slices": slices,
                })  # fmt: skip
    return out


# Longest slice of a false report, bucketed: the formulaic-phrase (text) and short-slice (media) failure modes.
BUCKETS = {"video": (3.0, 6.0), "audio": (3.0, 6.0), "text": (15, 50)}  # seconds; words for text


def _buckets(modality: str, reports: list[dict[str, Any]]) -> dict[str, int] | None:
    key = "words" if modality == "text" else "length"
    longest = [max(s[key] for s in f["slices"]) for f in reports if f["slices"]]
    if not longest:
        return None
    lo, hi = BUCKETS[modality]
    unit = "words" if modality == "text" else "s"
    return {
        f"<= {lo:g} {unit}": sum(x <= lo for x in longest),
        f"{lo:g}-{hi:g} {unit}": sum(lo < x <= hi for x in longest),
        f"> {hi:g} {unit}": sum(x > hi for x in longest),
    }


def _flagged_by_group(corpus: RealCorpus, runs: list[SystemRun], modality: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    negatives = [q for q in corpus.queries_of(modality) if not q.positive]
    for r in (r for r in runs if r.modality == modality):
        counts: dict[str, list[int]] = {}
        for q in negatives:
            c = counts.setdefault(corpus.groups.get(q.id, "?"), [0, 0])
            c[0] += bool(r.predictions.get(q.id))
            c[1] += 1
        out[r.name] = {g: f"{a}/{n}" for g, (a, n) in sorted(counts.items())}
    return out


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, float)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())}


def build(
    corpus: RealCorpus,
    runs: list[SystemRun],
    peers: dict[str, Availability],
    meta: dict[str, Any],
    unlocated: dict[str, int],
) -> dict[str, Any]:
    modalities = list(dict.fromkeys(r.modality for r in runs))
    false = false_reports(corpus, runs)
    stats: dict[str, dict[str, Any]] = {}
    for m in modalities:
        for r in (r for r in runs if r.modality == m):
            mine = [f for f in false if f["system"] == r.name and f["modality"] == m]
            lengths = [s["length"] for f in mine for s in f["slices"]]
            words = [s["words"] for f in mine for s in f["slices"] if "words" in s]
            stats.setdefault(m, {})[r.name] = {
                "reports": len(mine),
                "on_negatives": sum(f["kind"] == "negative" for f in mine),
                "wrong_item_on_positives": sum(f["kind"] == "wrong-item" for f in mine),
                "slice_length": _spread(lengths),
                "slice_words": _spread(words),
                "similarity": _spread([f["similarity"] for f in mine]),
                "longest_slice": _buckets(m, mine),
            }
    return {
        "schema": SCHEMA,
        "meta": meta,
        "peers": {name: {"installed": a.installed, "detail": a.detail} for name, a in peers.items()},
        "corpus": {m: c for m, c in corpus.counts().items() if m in modalities},
        "dropped": corpus.dropped,
        "results": {m: _summary_rows(corpus, runs, m) for m in modalities},
        "false_report_stats": stats,
        "negatives_flagged_by_source": {m: _flagged_by_group(corpus, runs, m) for m in modalities},
        "false_reports": false,
        "unlocated_text_slices": unlocated,
        "origin": corpus.origin,
        "queries": _query_records(corpus, runs),
    }


def _fmt(spread: dict[str, float] | None, unit: str) -> str:
    if spread is None:
        return "—"
    return f"{spread['min']:.4g}–{spread['max']:.4g} {unit} (median {spread['median']:.4g})"


def render(document: dict[str, Any], max_listed: int = 12) -> str:
    meta = document["meta"]
    lines = [
        f"## Real-media evaluation ({meta['profile']})",
        "",
        f"`{meta['command']}` — {meta['elapsed_seconds']:.0f} s on {meta['machine']} "
        f"({meta['files_generated']} query files generated, the rest cached); corpus {meta['corpus_dir']}.",
        "",
    ]
    for modality, res in document["results"].items():
        systems, localises, unit = res["systems"], res["localises"], UNITS[modality]
        c = document["corpus"][modality]
        lines += [f"### {modality}: {c['references']} library items, {c['queries']} copies, {c['negatives']} "
                  "held-out negatives", ""]  # fmt: skip
        cols = ["transform", "n"]
        for s in systems:
            cols += [f"{s} recall", f"{s} wrong-item"] + ([f"{s} VCSL F1 (P/R)", f"{s} boundary err"]
                                                          if localises[s] else [])  # fmt: skip
        lines += ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]

        def cells(
            summaries: dict[str, Any], systems: list[str] = systems, localises: dict = localises, unit: str = unit
        ) -> list[str]:
            out: list[str] = []
            for s in systems:
                parts = list(_cells({s: summaries[s]}, [s], localises, unit))
                out += [parts[0], str(summaries[s]["wrong_matches"]), *parts[1:]]
            return out

        for row in res["rows"]:
            lines.append("| " + " | ".join([row["transform"], str(row["n"]), *cells(row["systems"])]) + " |")
        copies = res["copies"]
        lines.append("| **all copies** | " + str(copies[systems[0]]["positives"]) + " | "
                     + " | ".join(f"**{x}**" for x in cells(copies)) + " |")  # fmt: skip
        flagged = ["**negatives flagged**", str(c["negatives"])]
        for s in systems:
            neg = res["negatives"][s]
            flagged += [f"**{_frac(neg['negatives_matched'], neg['negatives'])}**", ""]
            if localises[s]:
                flagged += ["", ""]
        lines += ["| " + " | ".join(flagged) + " |", ""]
        stats = document["false_report_stats"].get(modality, {})
        for s in systems:
            st = stats.get(s)
            if not st or not st["reports"]:
                continue
            size = _fmt(st["slice_length"], unit) if localises[s] else "n/a (does not localise)"
            lines.append(
                f"- {s}: {st['reports']} false reports ({st['on_negatives']} on negatives, "
                f"{st['wrong_item_on_positives']} wrong-item on copies); slices {size}"
                + (f", {_fmt(st['slice_words'], 'words')}" if st["slice_words"] else "")
                + f"; similarity {_fmt(st['similarity'], '')}"
                + (f"; longest slice per report: {st['longest_slice']}" if st["longest_slice"] else "")
            )
        by_source = document["negatives_flagged_by_source"].get(modality, {})
        for s in systems:
            if by_source.get(s):
                groups = ", ".join(f"{g} {v}" for g, v in by_source[s].items())
                lines.append(f"- {s} negatives flagged by source: {groups}")
        engine_false = [f for f in document["false_reports"] if f["modality"] == modality
                        and f["system"] == systems[0]]  # fmt: skip
        if engine_false:
            lines += ["", f"{systems[0]} false reports (first {min(max_listed, len(engine_false))}):", ""]
            for f in engine_false[:max_listed]:
                sl = "; ".join(
                    f"q {s['query'][0]:g}–{s['query'][1]:g} ↔ ref {s['ref'][0]:g}–{s['ref'][1]:g}"
                    + (f" ({s['words']} words)" if "words" in s else f" ({s['length']:g} {unit})")
                    for s in f["slices"][:4]
                )
                lines.append(f"  - [{f['kind']}] {f['query']} → {f['reported']} sim {f['similarity']:.3f}: {sl}")
        lines.append("")
    peers = ", ".join(f"{n}: {p['detail']}" for n, p in document["peers"].items())
    dropped = "; ".join(f"{m}: {len(v)}" for m, v in document["dropped"].items())
    lines += [
        f"Peers — {peers}.",
        f"Held-out items not used as negatives (too short, or a derivative of a library item): {dropped or 'none'}.",
        "Recall: copies whose library item was reported. Wrong-item: reports of items a copy does not copy. "
        "Negatives flagged: held-out same-genre items with any report at all. VCSL and boundary error as in the "
        "synthetic evaluation (scripts/eval).",
        "",
    ]
    return "\n".join(lines)
