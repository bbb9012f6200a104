"""Running one system over a corpus's queries and scoring each answer: shared by the synthetic and real-media
evaluations (engine.evaluation.runner, engine.evaluation.real_runner)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.evaluation.corpus import Corpus, Query
from engine.evaluation.metrics import QueryOutcome, Summary, boundary_errors, summarize, vcsl_precision_recall
from engine.evaluation.peers import Prediction, System


def outcome_of(query: Query, predictions: list[Prediction], localises: bool) -> QueryOutcome:
    """Score one system's answer to one query against the ground truth."""
    true = [p for p in predictions if p.ref_id == query.ref_id] if query.positive else []
    wrong = sum(p.ref_id != query.ref_id for p in predictions)
    if not query.positive:
        return QueryOutcome(positive=False, found=False, wrong=wrong)
    segment = None
    errors: list[float] = []
    if localises:
        boxes = [b for p in true for b in (p.boxes or ())]
        segment = vcsl_precision_recall(boxes, query.boxes)
        errors = boundary_errors(boxes, query.boxes)
    return QueryOutcome(
        positive=True,
        found=bool(true),
        wrong=wrong,
        group=query.ref_id or "",
        segment=segment,
        boundary=tuple(errors),
    )


@dataclass(slots=True)
class SystemRun:
    """One system's answers over one modality's queries."""

    name: str
    modality: str
    localises: bool
    outcomes: dict[str, QueryOutcome] = field(default_factory=dict)  # query id -> outcome
    predictions: dict[str, list[Prediction]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # index + all queries, for information only

    def summary(self, queries: list[Query]) -> Summary:
        return summarize(self.outcomes[q.id] for q in queries if q.id in self.outcomes)


def run_system(system: System, corpus: Corpus, log: Callable[[str], None]) -> SystemRun:
    modality = system.modality
    run = SystemRun(system.name, modality, system.localises)
    started = time.perf_counter()
    system.index(corpus.refs(modality))
    queries = corpus.queries_of(modality)
    for n, query in enumerate(queries, start=1):
        try:
            predictions = system.predict(query.path)
        except Exception as exc:  # a failure on one query is a miss, and is reported, not fatal
            run.errors[query.id] = f"{type(exc).__name__}: {exc}"
            predictions = []
        run.predictions[query.id] = predictions
        run.outcomes[query.id] = outcome_of(query, predictions, system.localises)
        if n % 20 == 0:
            log(f"  {system.name}: {n}/{len(queries)} {modality} queries")
    run.seconds = time.perf_counter() - started
    log(f"{system.name} ({modality}): {len(queries)} queries in {run.seconds:.1f} s")
    return run
