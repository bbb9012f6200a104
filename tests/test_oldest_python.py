"""The handlers' tests also run on the oldest Python the project supports (the FC runtime, python3.10), when that
interpreter is on this machine: `shared/` and `functions/` must work where they are deployed, not just here.

The interpreter's environment is a virtualenv cached under ~/.cache/fpscreen (keyed by the pins) and built in the
background from the start of the session (tests/conftest.py), so only the first run pays for the install; the
engine extra's numpy/PyAV/Typer are marked 3.11+ in pyproject.toml and are not part of it.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.oldest_python import OLDEST, ROOT, requires_python_floor, start_building

# What the FC layer and the handlers touch; the engine's own tests need 3.11+.
HANDLER_TESTS = ["tests/functions", "tests/contracts", "tests/store", "tests/mps"]


def test_the_declared_floor_is_the_fc_runtime() -> None:
    assert requires_python_floor() == OLDEST


def test_handler_tests_pass_on_the_oldest_supported_python() -> None:
    python = start_building().result(timeout=900)
    if python is None:
        pytest.skip(f"no python{OLDEST[0]}.{OLDEST[1]} on this machine")
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *HANDLER_TESTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert run.returncode == 0, f"handler tests failed on Python {OLDEST}:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
