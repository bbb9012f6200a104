"""The evaluation's outputs: a JSON document (schema `fpscreen-eval/1`) and the Markdown table printed from it.

Targets are stated here, and every miss is written up with its size and what the per-query data says about it
(no match at all, a wrong reference, segments too short or too long), so the table explains itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.evaluation.corpus import Corpus
from engine.evaluation.metrics import macro_average
from engine.evaluation.peers import Availability
from engine.evaluation.transforms import AUDIO_TRANSFORMS

if TYPE_CHECKING:  # the runner imports this module
    from engine.evaluation.execution import SystemRun

SCHEMA = "fpscreen-eval/1"
ENGINE = "fpscreen"
UNITS = {"video": "s", "audio": "s", "text": "chars"}
TARGETS: dict[str, Any] = {
    "recall": 0.9,  # per transform
    "false_match_rate": 0.0,  # negatives must not match
    "vcsl_f1": 0.8,  # per transform
    "boundary_mean": {"video": 1.0, "audio": 1.0, "text": 25.0},  # modality units
    "seconds": {"full": 600.0, "quick": 120.0},
}


def _summary_rows(corpus: Corpus, runs: list[SystemRun], modality: str) -> dict[str, Any]:
    queries = corpus.queries_of(modality)
    mine = [r for r in runs if r.modality == modality]
    transforms = list(dict.fromkeys(q.transform for q in queries if q.positive))
    rows = []
    for name in transforms:
        subset = [q for q in queries if q.transform == name]
        summaries = {r.name: r.summary(subset).to_json() for r in mine}
        rows.append({"transform": name, "n": len(subset), "systems": summaries})
    negatives = [q for q in queries if not q.positive]
    positives = [q for q in queries if q.positive]
    return {
        "systems": [r.name for r in mine],
        "localises": {r.name: r.localises for r in mine},
        "rows": rows,
        "negatives": {r.name: r.summary(negatives).to_json() for r in mine},
        "copies": {r.name: r.summary(positives).to_json() for r in mine},
        "overall": {r.name: r.summary(queries).to_json() for r in mine},
        "errors": {r.name: r.errors for r in mine if r.errors},
        "seconds": {r.name: round(r.seconds, 1) for r in mine},
    }


def _query_records(corpus: Corpus, runs: list[SystemRun]) -> list[dict[str, Any]]:
    records = []
    for q in corpus.queries:
        systems = {}
        for r in runs:
            if q.id not in r.outcomes:
                continue
            o = r.outcomes[q.id]
            systems[r.name] = {
                "found": o.found,
                "wrong": o.wrong,
                "vcsl": None if o.segment is None else {"precision": o.segment[0], "recall": o.segment[1]},
                "predictions": [
                    {"ref": p.ref_id, "score": p.score, "boxes": None if p.boxes is None else [*map(list, p.boxes)]}
                    for p in r.predictions[q.id]
                ],
                **({"error": r.errors[q.id]} if q.id in r.errors else {}),
            }
        records.append(
            {
                "id": q.id,
                "modality": q.modality,
                "transform": q.transform,
                "file": q.path.name,
                "ref": q.ref_id,
                "truth": [list(b) for b in q.boxes],
                "systems": systems,
            }
        )
    return records


def build(
    corpus: Corpus,
    runs: list[SystemRun],
    peers: dict[str, Availability],
    meta: dict[str, Any],
    unlocated: dict[str, int],
) -> dict[str, Any]:
    modalities = list(dict.fromkeys(r.modality for r in runs))
    results = {m: _summary_rows(corpus, runs, m) for m in modalities}
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "meta": meta,
        "peers": {name: {"installed": a.installed, "detail": a.detail} for name, a in peers.items()},
        "corpus": {m: c for m, c in corpus.counts().items() if m in modalities},
        "targets": TARGETS,
        "results": results,
        "unlocated_text_slices": unlocated,
        "queries": _query_records(corpus, runs),
    }
    document["notes"] = notes(document)
    return document


def write_json(document: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------ notes


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def _rows(document: dict[str, Any], modality: str, transform: str, system: str) -> list[tuple[dict, dict]]:
    return [
        (q, q["systems"][system])
        for q in document["queries"]
        if q["modality"] == modality and q["transform"] == transform and system in q["systems"]
    ]


def _missed_why(document: dict[str, Any], modality: str, transform: str, system: str) -> str:
    """What the per-query records say about the misses of one row, plus what the engine's settings say."""
    records = _rows(document, modality, transform, system)
    none = sum(not s["found"] and not s["wrong"] for _, s in records)
    wrong_only = sum(not s["found"] and s["wrong"] > 0 for _, s in records)
    parts = []
    if none:
        parts.append(f"{none} found no match at all")
    if wrong_only:
        parts.append(f"{wrong_only} matched only a wrong reference")
    parts += _engine_facts(modality, transform)
    return "; ".join(parts)


def _engine_facts(modality: str, transform: str) -> list[str]:
    """Settings of the engine that bear on a transform it misses (read from the engine, not assumed)."""
    if modality == "audio" and transform in AUDIO_TRANSFORMS and AUDIO_TRANSFORMS[transform].speed != 1.0:
        from engine.audio.base import SCAN_SPEEDS  # the speeds the default audio search scans

        return [
            f"the engine's audio search scans playback speeds {min(SCAN_SPEEDS):.2f}x-{max(SCAN_SPEEDS):.2f}x "
            f"({len(SCAN_SPEEDS)} steps); this copy plays at {AUDIO_TRANSFORMS[transform].speed:g}x"
        ]
    if modality == "video" and transform.startswith("pip_"):
        from engine.video.frame_features import WINDOWS  # the crops a query frame is hashed on

        smallest = min(min(hx - lx, hy - ly) for (lx, hx), (ly, hy) in WINDOWS)
        largest = max(max(hx - lx, hy - ly) for (lx, hx), (ly, hy) in WINDOWS)
        scale = float(transform.removeprefix("pip_").removesuffix("x"))
        return [
            f"the copy fills {scale:.0%} of each axis of the frame, while the engine's query crop windows span "
            f"{smallest:.0%}-{largest:.0%} of each axis: the rest of the frame (unrelated video) dominates every hash"
        ]
    return []


def _vcsl_split(document: dict[str, Any], modality: str, transform: str, system: str) -> str:
    """VCSL F1 by document language when a text row mixes them, and slices that chain several true boxes."""
    records = _rows(document, modality, transform, system)
    parts = []
    if modality == "text":
        for lang in ("en", "zh"):
            pairs = [
                (q["ref"], s["vcsl"]["precision"], s["vcsl"]["recall"]) for q, s in records if f"-{lang}" in q["ref"]
            ]
            if pairs and (avg := macro_average(pairs)) is not None:
                parts.append(f"{lang} F1 {avg[2]:.2f}")
    chained = total = 0
    for q, s in records:
        truth = q["truth"]
        for p in s["predictions"]:
            if p["ref"] != q["ref"] or not p["boxes"]:
                continue
            for b in p["boxes"]:
                total += 1
                overlaps = sum(min(b[1], t[1]) > max(b[0], t[0]) and min(b[3], t[3]) > max(b[2], t[2]) for t in truth)
                chained += overlaps > 1
    if chained:
        parts.append(f"{chained} of {total} slices join passages that are apart in the reference")
    return "; ".join(parts)


def notes(document: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, peer in document["peers"].items():
        if not peer["installed"]:
            out.append(f"peer {name}: {peer['detail']}")
    seconds = document["meta"].get("elapsed_seconds")
    budget = TARGETS["seconds"].get(document["meta"].get("profile", ""), None)
    if seconds is not None and budget is not None and seconds > budget:
        out.append(f"target missed: run took {seconds:.0f} s, budget {budget:.0f} s (+{seconds - budget:.0f} s)")
    for modality, res in document["results"].items():
        unit = UNITS[modality]
        for system, errors in res["errors"].items():
            first = next(iter(errors.items()))
            out.append(f"{modality}: {system} failed on {len(errors)} queries, counted as misses (first: {first})")
        if ENGINE not in res["systems"]:
            continue
        for row in res["rows"]:
            s = row["systems"][ENGINE]
            where = f"{modality}/{row['transform']}"
            if s["recall"] is not None and s["recall"] < TARGETS["recall"]:
                why = _missed_why(document, modality, row["transform"], ENGINE)
                out.append(
                    f"target missed: {where} recall {_pct(s['recall'])} < {_pct(TARGETS['recall'])} "
                    f"({100 * (s['recall'] - TARGETS['recall']):+.0f} pts; {s['found']}/{s['positives']}: {why})"
                )
            vcsl = s["vcsl"]
            if vcsl is not None and s["found"] and vcsl["f1"] < TARGETS["vcsl_f1"]:  # found nothing: said above
                weak = "recall: segments cover too little of the copy" if vcsl["recall"] < vcsl["precision"] else (
                    "precision: segments reach past the copy"
                )
                split = _vcsl_split(document, modality, row["transform"], ENGINE)
                out.append(
                    f"target missed: {where} VCSL F1 {vcsl['f1']:.2f} < {TARGETS['vcsl_f1']:.2f} "
                    f"({vcsl['f1'] - TARGETS['vcsl_f1']:+.2f}; P {vcsl['precision']:.2f}, R {vcsl['recall']:.2f}: "
                    f"weaker on {weak}{'; ' + split if split else ''})"
                )
            mean = s["boundary_error"]["mean"]
            limit = TARGETS["boundary_mean"][modality]
            if mean is not None and mean > limit:
                out.append(
                    f"target missed: {where} mean boundary error {mean:.2f} {unit} > {limit:g} {unit} "
                    f"(+{mean - limit:.2f}; p90 {s['boundary_error']['p90']:.2f} {unit})"
                )
        neg = res["negatives"][ENGINE]
        if neg["false_match_rate"] is not None and neg["false_match_rate"] > TARGETS["false_match_rate"]:
            out.append(
                f"target missed: {modality} negatives matched {neg['negatives_matched']}/{neg['negatives']} "
                f"(target 0)"
            )
        wrong = res["copies"][ENGINE]["wrong_matches"]
        if wrong:
            out.append(f"{modality}: {wrong} wrong references reported on copies (they lower detection precision)")
        out += _comparison(res, modality)
    for modality, count in document.get("unlocated_text_slices", {}).items():
        out.append(f"{modality}: {count} slices quote text not found verbatim in the reference (left out of VCSL)")
    return out


def _comparison(res: dict[str, Any], modality: str) -> list[str]:
    """Where the engine wins and where each peer wins: recall first, then VCSL F1 when both localise."""
    out = []
    for peer in res["systems"]:
        if peer == ENGINE:
            continue
        ours, theirs, ties = [], [], []
        for row in res["rows"]:
            a, b = row["systems"][ENGINE], row["systems"][peer]
            delta = (a["recall"] or 0) - (b["recall"] or 0)
            if abs(delta) < 1e-9 and a["vcsl"] and b["vcsl"]:
                delta = a["vcsl"]["f1"] - b["vcsl"]["f1"]
                delta = 0.0 if abs(delta) < 0.02 else delta
            label = row["transform"]
            (ours if delta > 0 else theirs if delta < 0 else ties).append(label)
        out.append(
            f"{modality}: {ENGINE} vs {peer}: {ENGINE} better on {len(ours)} ({', '.join(ours) or '-'}); "
            f"{peer} better on {len(theirs)} ({', '.join(theirs) or '-'}); even on {len(ties)}"
        )
        a, b = res["negatives"][ENGINE], res["negatives"][peer]
        out.append(
            f"{modality}: false matches on negatives: {ENGINE} {a['negatives_matched']}/{a['negatives']}, "
            f"{peer} {b['negatives_matched']}/{b['negatives']}"
        )
    return out


# ------------------------------------------------------------------------------------------ the table


def _frac(found: int, total: int) -> str:
    return f"{found}/{total}" if total else "—"


def _vcsl(v: dict[str, float] | None) -> str:
    return "n/a" if v is None else f"{v['f1']:.2f} ({v['precision']:.2f}/{v['recall']:.2f})"


def _err(s: dict[str, Any], unit: str) -> str:
    mean = s["boundary_error"]["mean"]
    return "—" if mean is None else f"{mean:.2f} {unit}" if unit == "s" else f"{mean:.0f} {unit}"


def _header(systems: list[str], localises: dict[str, bool]) -> list[str]:
    cols = ["transform", "n"]
    for s in systems:
        cols.append(f"{s} recall")
        if localises[s]:
            cols += [f"{s} VCSL F1 (P/R)", f"{s} boundary err"]
    return cols


def _cells(summaries: dict[str, Any], systems: list[str], localises: dict[str, bool], unit: str) -> Iterable[str]:
    for s in systems:
        x = summaries[s]
        yield _frac(x["found"], x["positives"])
        if localises[s]:
            yield _vcsl(x["vcsl"])
            yield _err(x, unit)


def render(document: dict[str, Any]) -> str:
    meta = document["meta"]
    lines = [
        f"## Accuracy evaluation ({meta['profile']}, seed {meta['seed']})",
        "",
        f"`{meta['command']}` — {meta['elapsed_seconds']:.0f} s on {meta['machine']} "
        f"({meta['files_generated']} media files generated, the rest cached).",
        "",
    ]
    for modality, res in document["results"].items():
        systems, localises, unit = res["systems"], res["localises"], UNITS[modality]
        c = document["corpus"][modality]
        lines += [
            f"### {modality}: {c['references']} references, {c['queries']} copies, {c['negatives']} negatives",
            "",
        ]
        header = _header(systems, localises)
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for row in res["rows"]:
            lines.append(
                "| "
                + " | ".join([row["transform"], str(row["n"]), *_cells(row["systems"], systems, localises, unit)])
                + " |"
            )
        copies = res["copies"]
        lines.append(
            "| **all copies** | "
            + str(copies[systems[0]]["positives"])
            + " | "
            + " | ".join(f"**{c}**" for c in _cells(copies, systems, localises, unit))
            + " |"
        )
        negatives = ["**negatives matched** (must be 0)", str(c["negatives"])]
        precision = ["**detection precision**", ""]
        for s in systems:
            neg, overall = res["negatives"][s], res["overall"][s]
            negatives.append(_frac(neg["negatives_matched"], neg["negatives"]))
            precision.append(_pct(overall["precision"]))
            if localises[s]:
                negatives += ["", ""]
                precision += ["", ""]
        lines += ["| " + " | ".join(negatives) + " |", "| " + " | ".join(precision) + " |", ""]
    peers = ", ".join(f"{n}: {p['detail']}" for n, p in document["peers"].items())
    lines += [
        f"Peers — {peers}.",
        "Recall: copies whose reference was reported. VCSL: segment precision/recall/F1 over aligned (query, "
        "reference) boxes, macro-averaged per reference (VCSL's definition). Boundary err: mean |error| of the "
        "four boundaries of each copied passage against the hull of the slices overlapping it. vpdq: the README's "
        "rule (>= 80% of the library video's frames within Hamming 31 of a query frame, quality >= 50); "
        "vpdq-query80: the same with the 80% asked of the query's frames instead (vPDQ does not localise). "
        "Detection precision counts every reported reference, negatives included.",
        "",
        "Notes:",
        "",
        *[f"- {n}" for n in document["notes"]],
        "",
    ]
    return "\n".join(lines)
