"""Timing on a shared, noisy machine: interleaved runs, medians, and CPU time beside wall time.

Things compared with each other are run in turns (a, b, c, then b, c, a, ...) so a burst of load from a
neighbour hits all of them alike and their ratio stays meaningful even when the absolute times do not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU time, all threads

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def run_once(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def interleaved(
    fns: dict[str, Callable[[], object]], reps: int, *, warmup: bool = True, min_seconds: float = 0.0
) -> dict[str, Samples]:
    """`reps` timed runs of each function, in rotating order, after one untimed warm-up run of each (file cache,
    codec and library set-up are not what is measured); then more rounds, up to 4x `reps` in all, until the
    rounds have taken `min_seconds` (short runs are the noisiest)."""
    names = list(fns)
    if warmup:
        for name in names:
            fns[name]()
    out = {name: Samples() for name in names}
    spent = 0.0
    rep = 0
    while rep < reps or (spent < min_seconds and rep < 4 * reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            wall, cpu, _ = run_once(fns[name])
            out[name].wall.append(wall)
            out[name].cpu.append(cpu)
            spent += wall
        rep += 1
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")
