"""The README a newcomer reads first: its order, commands that exist, the local facts it states, and headline
figures that agree with the full tables in docs/benchmarks.md."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app
from engine.service.app import LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET
from shared.vocabulary import DEFAULT_REGION

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BENCHMARKS = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")


def _sections(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, flags=re.M)


def test_sections_come_in_the_order_a_newcomer_needs_them() -> None:
    order = ["The two commands", "After the demo", "Deploying", "Layout", "The engine", "Headline figures"]
    titles = _sections(README)
    positions = [next(i for i, title in enumerate(titles) if title.startswith(want)) for want in order]
    assert positions == sorted(positions), titles


def test_every_fpscreen_command_in_the_readme_exists() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    commands = [line.split("#")[0].split() for line in lines if line.startswith("fpscreen ")]
    assert len(commands) >= 5
    runner = CliRunner()
    for words in commands:
        result = runner.invoke(app, [words[1], "--help"])
        assert result.exit_code == 0, (words, result.output)


def test_the_local_facts_match_the_code() -> None:
    after = README[README.index("## After the demo") : README.index("## Deploying")]
    for fact in (
        "~/.fpscreen",
        "FPSCREEN_DATA_DIR",
        "--data-dir",
        "Ctrl-C",
        LOCAL_ACCESS_KEY_ID,
        LOCAL_ACCESS_KEY_SECRET,
    ):
        assert fact in after, fact
    assert f'"{DEFAULT_REGION}"' in after


def test_headline_figures_have_a_command_and_agree_with_the_full_tables() -> None:
    headline = README[README.index("## Headline figures") :]
    rows = [line for line in headline.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) >= 5
    for row in rows:
        assert re.search(r"`python scripts/(bench|eval)[^`]*`", row), row
    # The full tables moved out of the README, and every jobs/minute figure quoted anywhere is the table's.
    assert "| transform | n | fpscreen recall" not in README and "| transform | n | fpscreen recall" in BENCHMARKS
    table_rates = set(re.findall(r"\| (\d[\d,]*) jobs/minute", BENCHMARKS))
    assert len(table_rates) == 2  # as deployed, and with the client's limit lifted
    quoted = set(re.findall(r"(?<!ceiling of )(?<!\d)(\d[\d,]*)\s+jobs/minute", README + BENCHMARKS))
    quoted |= set(re.findall(r"(?<![\d.])(\d{3}) with the limit lifted", README))
    assert quoted <= table_rates, quoted
    assert "1,100" not in README + BENCHMARKS
    # Every count (found/total) and every latency and duration the headline quotes is one the full tables show.
    figures = set(re.findall(r"(?<![\d/])\d+/\d+(?![\d/])", "\n".join(rows)))
    figures |= set(re.findall(r"\d+(?:\.\d+)? (?:s|ms) median", "\n".join(rows)))
    assert {"108/108", "80/80", "68/68"} <= figures  # the generated-media row is among them
    for figure in figures:
        assert figure.removesuffix(" median") in BENCHMARKS, figure


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    two = README[README.index("## The two commands") :]
    blocks = re.findall(r"```bash\n(.*?)\n```", two, flags=re.S)
    test_command = next(block for block in blocks if "pytest" in block)
    assert test_command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
