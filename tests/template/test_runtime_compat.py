"""The functions run on FC's `python3.10` runtime (template.yml) while development uses 3.11: the code that
ships (functions/ and the shared/ layer) must not need anything newer than 3.10."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine.template import load_template

ROOT = Path(__file__).resolve().parents[2]

# Standard-library names added in 3.11 that an import at module load would trip over on 3.10.
NEW_IN_311: dict[str, set[str]] = {
    "typing": {
        "Self",
        "LiteralString",
        "Never",
        "assert_never",
        "assert_type",
        "reveal_type",
        "Required",
        "NotRequired",
        "TypeVarTuple",
        "Unpack",
        "dataclass_transform",
        "get_overloads",
        "clear_overloads",
    },
    "enum": {
        "StrEnum",
        "ReprEnum",
        "EnumCheck",
        "FlagBoundary",
        "verify",
        "member",
        "nonmember",
        "global_enum",
        "show_flag_values",
    },
    "datetime": {"UTC"},
    "asyncio": {"TaskGroup", "Runner", "timeout", "Barrier"},
    "hashlib": {"file_digest"},
    "operator": {"call"},
}
NEW_MODULES_311 = {"tomllib", "wsgiref.types"}
NEW_BUILTINS_311 = {"ExceptionGroup", "BaseExceptionGroup"}


def _shipped_files() -> list[Path]:
    template = load_template(ROOT / "template.yml")
    files = sorted((ROOT / "shared").rglob("*.py"))
    for fn in template.functions:
        if fn.runtime.startswith("python"):
            files += sorted(fn.code_dir(template.root).rglob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


def _problems(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=str(path), feature_version=(3, 10))
    except SyntaxError as exc:
        return [f"{exc.lineno}: syntax not available in 3.10 ({exc.msg})"]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name in NEW_MODULES_311]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in NEW_MODULES_311:
                found.append(f"{node.lineno}: from {node.module} import ...")
            new = NEW_IN_311.get(node.module, set())
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names if a.name in new]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in NEW_IN_311.get(node.value.id, set()):
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in NEW_BUILTINS_311:
            found.append(f"{node.lineno}: {node.id}")
    return found


def test_the_checker_catches_311_features(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text(
        "import tomllib\nfrom enum import StrEnum\nimport datetime\nx = datetime.UTC\n"
        "try:\n    pass\nexcept* ValueError:\n    pass\n",
        encoding="utf-8",
    )
    assert _problems(sample)  # except* alone is a 3.10 syntax error
    sample.write_text("import tomllib\nfrom enum import StrEnum\nimport datetime\nx = datetime.UTC\n", "utf-8")
    assert len(_problems(sample)) == 3


@pytest.mark.parametrize("path", _shipped_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_code_runs_on_python310(path: Path) -> None:
    problems = _problems(path)
    assert not problems, f"{path.relative_to(ROOT)} needs Python 3.11+: {problems}"
