"""Test doubles shared by the test suites (e.g. `tests.support.fake_mps.FakeMps`, a loopback MPS endpoint)."""
