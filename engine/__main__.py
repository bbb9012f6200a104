"""`python -m engine …` is `fpscreen …` (for environments where the console script is not on PATH)."""

from engine.cli import app

app(prog_name="fpscreen")
