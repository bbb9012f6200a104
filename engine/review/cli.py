"""`fpscreen review`: the review page over the local stack's results, on 127.0.0.1."""

from __future__ import annotations

import getpass
import os
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from engine.cli_root import data_dir
from engine.localstack.stack import StackPaths
from engine.review.thumbnails import ThumbnailCache, bucket_resolver
from engine.wsgi import HttpLimits, WsgiServer
from shared.config import Settings
from shared.credentials import resolve_credentials
from shared.review.app import TrustedLocalUser, create_app
from shared.runtime import actions_for
from shared.services.actions import ActionRunner
from shared.store.sqlite import SqliteStore
from shared.verdicts.service import VerdictService


def _actions(settings: Settings) -> ActionRunner | None:
    """Verdict actions when the environment configures them (FPSCREEN_OSS_ENDPOINT, FPSCREEN_MNS_ENDPOINT …)."""
    if not (settings.oss_endpoint or settings.mns_endpoint):
        return None
    return actions_for(settings, resolve_credentials())


def reevaluate(ctx: typer.Context) -> None:
    """Re-decide every stored screening result under the current policies (FPSCREEN_POLICIES), without
    fingerprinting again; reviewer decisions stay. Prints one line per upload whose verdict changed."""
    paths = StackPaths.under(data_dir(ctx), None)
    if not paths.results.exists():
        raise typer.BadParameter(f"no results yet at {paths.results}: run `fpscreen up` and upload something")
    settings = Settings.from_env()
    with SqliteStore(paths.results) as store:
        before = {v.job_id: v.final_verdict for v in store.recent_verdicts(100_000)}
        records = VerdictService(store, settings.policies, _actions(settings)).reevaluate()
    changed = [r for r in records if before.get(r.job_id) != r.final_verdict]
    console = Console(highlight=False)
    for record in changed:
        console.print(Text(f"{record.object_key}  {before.get(record.job_id) or '-'} → {record.final_verdict}  "
                           f"({record.rule})"))  # fmt: skip
    console.print(Text(f"re-evaluated {len(records)} upload(s); {len(changed)} verdict(s) changed"))


def review(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", help="0 = any free port.")] = 8470,
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who the decisions are recorded as.")] = "",
    oss_root: Annotated[Path | None, typer.Option("--oss-root", help="The directory bucket (thumbnails).")] = None,
) -> None:
    """Serve the review page: verdicts, match evidence, thumbnails, and reviewer decisions."""
    paths = StackPaths.under(data_dir(ctx), oss_root)
    if not paths.results.exists():
        raise typer.BadParameter(f"no results yet at {paths.results}: run `fpscreen up` and upload something")
    settings = Settings.from_env()
    store = SqliteStore(paths.results)
    app = create_app(
        store,
        policies=settings.policies,
        auth=TrustedLocalUser(reviewer or os.environ.get("USER") or getpass.getuser()),
        actions=_actions(settings),
        thumbnails=ThumbnailCache(bucket_resolver(paths.oss_root), paths.data_dir / "thumbnails"),
    )
    server = WsgiServer(app, "127.0.0.1", port, limits=HttpLimits(threads=4), name="review").start()
    typer.echo(f"review page on http://127.0.0.1:{server.port}/ (Ctrl-C to stop)")
    try:
        threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        store.close()
