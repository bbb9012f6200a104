"""A cached virtualenv of the oldest supported Python (the FC runtime) holding the layer's pins and the handler
tests' own, built in the background while the rest of the suite runs (pip mostly waits on the network)."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import threading
from concurrent.futures import Future
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
OLDEST = (3, 10)
# Beyond the layer's own dependencies, the handler tests need only these (pins taken from pyproject.toml).
TEST_ONLY = ("pytest", "moto", "alibabacloud-mts20140618", "alibabacloud-tea-openapi")

_lock = threading.Lock()
_build: Future[Path | None] | None = None


def _project() -> dict[str, object]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, object] = data["project"]
    return project


def requires_python_floor() -> tuple[int, int]:
    spec = str(_project()["requires-python"])
    floor = next(part for part in spec.split(",") if part.strip().startswith(">="))
    major, minor = floor.strip()[2:].split(".")[:2]
    return int(major), int(minor)


def _name(pin: str) -> str:
    return re.split(r"[\[=;<> ]", pin, maxsplit=1)[0]


def requirements() -> list[str]:
    project = _project()
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    pinned = [pin for extra in extras.values() for pin in extra]
    wanted = [pin for pin in pinned if _name(pin) in TEST_ONLY]
    if {_name(pin) for pin in wanted} != set(TEST_ONLY):
        raise AssertionError(f"pyproject.toml must pin each of {TEST_ONLY}; found {wanted}")
    dependencies: list[str] = project["dependencies"]  # type: ignore[assignment]
    return [*dependencies, *wanted]


def find_interpreter(version: tuple[int, int] = OLDEST) -> str | None:
    """`python3.10` on PATH, or one pyenv installed but did not put on PATH; verified by running it."""
    name = f"python{version[0]}.{version[1]}"
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    installed = glob.glob(f"{pyenv_root}/versions/{version[0]}.{version[1]}*/bin/{name}")
    for candidate in filter(None, [shutil.which(name), *sorted(installed)]):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0 and probe.stdout.strip() == str(version):
            return candidate
    return None


def _build_venv() -> Path | None:
    """The venv's python, or None when no such interpreter is installed. Raises if the pins do not resolve."""
    interpreter = find_interpreter()
    if interpreter is None:
        return None
    pins = requirements()
    key = hashlib.sha256("\n".join([interpreter, *pins]).encode()).hexdigest()[:12]
    venv = Path.home() / ".cache" / "fpscreen" / f"venv-py{OLDEST[0]}{OLDEST[1]}-{key}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, capture_output=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins],
        capture_output=True,
        text=True,
        check=False,
    )
    if install.returncode != 0:
        raise RuntimeError(f"the pins do not resolve on Python {OLDEST}:\n{install.stderr[-3000:]}")
    (venv / ".complete").write_text(key)
    return python


def start_building() -> Future[Path | None]:
    """Start (once) building the venv on a daemon thread; the future gives its python."""
    global _build
    with _lock:
        if _build is None:
            future: Future[Path | None] = Future()

            def run() -> None:
                try:
                    future.set_result(_build_venv())
                except BaseException as exc:  # handed to the test that waits for it
                    future.set_exception(exc)

            threading.Thread(target=run, name="oldest-python-venv", daemon=True).start()
            _build = future
        return _build
