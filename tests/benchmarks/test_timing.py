"""Interleaved timing: rotating order, and extra rounds for short runs up to a bound (a fake clock: no timing here)."""

from __future__ import annotations

import pytest

from engine.benchmarks import timing


@pytest.fixture
def half_second_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def run_once(fn: object) -> tuple[float, float, object]:
        calls.append(fn())  # type: ignore[operator]
        return 0.5, 0.4, None

    monkeypatch.setattr(timing, "run_once", run_once)
    return calls


@pytest.mark.parametrize(("min_seconds", "rounds"), [(0.0, 2), (1.5, 2), (3.0, 3), (3.2, 4), (100.0, 8)])
def test_rounds_go_on_until_min_seconds_at_most_four_times_reps(
    half_second_runs: list[str], min_seconds: float, rounds: int
) -> None:
    fns = {"a": lambda: "a", "b": lambda: "b"}  # a round of both takes 1 s on the fake clock
    samples = timing.interleaved(fns, 2, warmup=False, min_seconds=min_seconds)
    assert {name: len(s.wall) for name, s in samples.items()} == {"a": rounds, "b": rounds}
    assert half_second_runs[:4] == ["a", "b", "b", "a"]  # rotating order: neither always runs first
