"""The root of the `fpscreen` CLI: the one Typer `app` and the data-directory option every area shares.

Areas (`engine.cli` for libraries and matching, `engine.localstack.cli`, `engine.service.cli`) import from here and
register their commands on `app`; `engine.cli` composes them. Nothing here imports an area, so no area imports
back into another one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

DATA_DIR_ENV = "FPSCREEN_DATA_DIR"
DEFAULT_DATA_DIR = Path("~/.fpscreen")

app = typer.Typer(
    name="fpscreen",
    help="Media fingerprinting and copyright screening: the local engine behind the MPS Video DNA API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: Rich markup would eat "[env …; default …]" and label every flag <bool>.
    rich_markup_mode=None,
)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=f"The stack, its bucket and libraries live here [env {DATA_DIR_ENV}; default {DEFAULT_DATA_DIR}].",
    ),
]


@app.callback()
def main(ctx: typer.Context, data_dir: DataDirOption = None) -> None:
    ctx.obj = {"data_dir": data_dir}


def data_dir(ctx: typer.Context | None, override: Path | None = None) -> Path:
    """The data directory: a command's `--data-dir`, else the top-level one, else $FPSCREEN_DATA_DIR, else
    ~/.fpscreen."""
    chosen = override
    if chosen is None and ctx is not None:
        root = ctx.find_root()
        if isinstance(root.obj, dict):
            chosen = root.obj.get("data_dir")
    if chosen is None and os.environ.get(DATA_DIR_ENV):
        chosen = Path(os.environ[DATA_DIR_ENV])
    return (chosen or DEFAULT_DATA_DIR).expanduser()
