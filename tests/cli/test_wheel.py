"""`pip install .` (non-editable) must give a CLI that works outside the checkout: the wheel carries the
deployment template and the function handlers the local stack wires, and nothing but the two runtime packages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every FC entry point in the checkout: the three pipeline functions and the review page.
HANDLERS = {p.parent.name for p in (ROOT / "functions").glob("*/index.py")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    src = tmp_path_factory.mktemp("src") / "fpscreen"
    shutil.copytree(
        ROOT,
        src,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", ".fpscreen", "__pycache__", ".*cache"),
    )
    out = tmp_path_factory.mktemp("wheel")
    # Offline: no build isolation, so the dev extra's setuptools (bdist_wheel built in) builds it.
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", out, src],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [built] = out.glob("fpscreen-*.whl")
    return built


def test_wheel_holds_the_two_packages_the_template_and_the_handlers(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"engine", "shared"}  # no tests/, scripts/, functions/ packages under generic names
    bundled = {name for name in names if name.startswith("engine/bundled/")}
    assert bundled == {"engine/bundled/template.yml"} | {f"engine/bundled/functions/{h}/index.py" for h in HANDLERS}
    with zipfile.ZipFile(wheel) as archive:
        # The wheel holds the template's content, not a dangling symlink.
        assert archive.read("engine/bundled/template.yml") == (ROOT / "template.yml").read_bytes()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "fpscreen = engine.cli:app" in archive.read(entry_points).decode()


def test_installed_cli_resolves_the_template_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile", "--target", site, wheel],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = (
        "import json, engine\n"
        "from engine.localstack.stack import DEFAULT_TEMPLATE\n"
        "from engine.template import load_template\n"
        "t = load_template(DEFAULT_TEMPLATE, {'MediaBucketName': 'media'})\n"
        "print(json.dumps({'engine': engine.__file__, 'template': str(DEFAULT_TEMPLATE),\n"
        "  'handlers': {f.name: f.handler_file(t.path.parent).is_file() for f in t.functions}}))\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # PYTHONPATH puts the installed copy ahead of the editable checkout; dependencies come from this interpreter.
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout)
    assert Path(found["engine"]).is_relative_to(site)
    assert Path(found["template"]).is_relative_to(site)
    assert found["handlers"] and all(found["handlers"].values()) and set(found["handlers"]) <= HANDLERS
    # The console script's module imports and lists the commands a newcomer runs first.
    help_run = subprocess.run(
        [sys.executable, "-c", "from engine.cli import app; app()", "--help"],
        cwd=elsewhere,
        env={**env, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert help_run.returncode == 0, help_run.stderr[-3000:]
    for command in ("demo", "up", "upload", "library"):
        assert command in help_run.stdout
