"""Tests of shared.mps (MPS clients, retry, rate limit), engine.service.auth and the FakeMps test double."""
