"""`fpscreen engine serve`: the MPS RPC API on a local port (a typer sub-app, mounted as `fpscreen engine`).

    fpscreen engine serve --data-dir DIR --oss-root DIR [--host 127.0.0.1] [--port 8080] [--workers 2]
                          [--mns-endpoint http://127.0.0.1:PORT]

The first line on stdout, printed once requests are accepted, is exactly `listening on http://HOST:PORT`
(`--port 0` picks a free port, so scripts read it from there). Logs go to stderr. SIGINT/SIGTERM stop it
gracefully: running jobs finish, queued ones stay queued for the next start.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from engine.service.app import (
    DATA_DIR_ENV,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WORKERS,
    OSS_ROOT_ENV,
    EngineService,
    EngineSettings,
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

engine_app = typer.Typer(
    help="The local engine behind the MPS Video DNA API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich markup would eat "[env …; default …]"
)


@engine_app.callback()
def _group() -> None:
    """Keeps `serve` a sub-command even while it is the only one."""


def _data_dir(ctx: typer.Context, option: Path | None) -> Path | None:
    """`--data-dir`, else the top-level CLI's `--data-dir` (when mounted); None leaves it to `EngineSettings`."""
    if option is None:
        root = ctx.find_root()
        if isinstance(root.obj, dict) and root.obj.get("data_dir"):
            return Path(root.obj["data_dir"])
    return option


@engine_app.command("serve")
def serve(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help=f"Libraries and the job table (env {DATA_DIR_ENV}; default ~/.fpscreen)."),
    ] = None,
    oss_root: Annotated[
        Path | None,
        typer.Option(
            "--oss-root",
            help=f"Local OSS: an Input is <root>/<Bucket>/<Object> (env {OSS_ROOT_ENV}; default <data-dir>/oss).",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.", min=0, max=65535)] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(help="Jobs analysed in parallel (0: accept jobs, run none).", min=0)] = (
        DEFAULT_WORKERS
    ),
    mns_endpoint: Annotated[
        str | None, typer.Option("--mns-endpoint", help="MNS endpoint for pipeline notifications, http://HOST:PORT.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level on stderr.")] = "INFO",
) -> None:
    """Serve the MPS (Mts 2014-06-18) RPC API over HTTP, signed with ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr, format=LOG_FORMAT)
    settings = EngineSettings.from_env(
        data_dir=_data_dir(ctx, data_dir),
        oss_root=oss_root,
        host=host,
        port=port,
        workers=workers,
        mns_endpoint=mns_endpoint,
    )
    service = EngineService(settings)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            service.start()
        except (OSError, RuntimeError) as exc:
            typer.echo(f"error: cannot start the engine service: {exc}", err=True)
            raise typer.Exit(1) from exc
        sys.stdout.write(f"listening on {service.url}\n")
        sys.stdout.flush()
        logging.getLogger(__name__).info("access key id %s", service.access_key().access_key_id)
        stop.wait()
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    engine_app()
