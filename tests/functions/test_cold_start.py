"""Handlers import nothing heavy: an FC cold start must not pay for numpy or PyAV (the engine's extras)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "av", "scipy", "engine", "alibabacloud_mts20140618", "tablestore")


@pytest.mark.parametrize("function", ["submit_on_upload", "store_results", "report_failed"])
def test_handler_module_imports_nothing_heavy(function: str) -> None:
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('index', r'{ROOT / 'functions' / function / 'index.py'}')\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert callable(module.handler)\n"
        f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "", f"{function} imports {result.stdout.strip()} at cold start"
