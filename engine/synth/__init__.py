"""Deterministic synthetic media for tests, benchmarks and the demo."""
