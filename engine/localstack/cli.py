"""The local stack's commands: `fpscreen up`, `fpscreen upload`, `fpscreen results`, `fpscreen demo`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from engine.cli_root import data_dir
from engine.localstack.results import ResultsDamaged, ScreeningResult, read_screening_results
from engine.localstack.stack import DEFAULT_BUCKET, DEFAULT_TEMPLATE, LocalStack, StackPaths, StackSettings, upload_file

OssRootOption = Annotated[
    Path | None, typer.Option("--oss-root", help="Directory holding the buckets [default: <data-dir>/oss].")
]
TemplateOption = Annotated[Path, typer.Option("--template", help="The deployment template to wire from.")]
BucketOption = Annotated[str, typer.Option("--bucket", help="The media bucket (template's MediaBucketName).")]

VERDICT_STYLE = {"copy": "bold red", "clean": "green", "failed": "yellow", "pending": "dim", "stored": "cyan"}


def _paths(ctx: typer.Context, oss_root: Path | None) -> StackPaths:
    return StackPaths.under(data_dir(ctx), oss_root)


def up(
    ctx: typer.Context,
    oss_root: OssRootOption = None,
    template: TemplateOption = DEFAULT_TEMPLATE,
    bucket: BucketOption = DEFAULT_BUCKET,
    workers: Annotated[int, typer.Option("--workers", help="Engine worker threads.")] = 2,
) -> None:
    """Start the whole stack — local MNS, the engine service, the bucket watcher and the three functions wired
    to their triggers as template.yml declares them — and run until interrupted."""
    stack = LocalStack(
        StackSettings(
            _paths(ctx, oss_root), template_path=template, bucket=bucket, engine_workers=workers, log_file=True
        )
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    stack.start()
    print(f"stack up: engine {stack.engine.url} mns {stack.mns.endpoint} bucket {stack.bucket_dir.root}", flush=True)
    print(f"function logs: {stack.paths.data_dir / 'stack.log'}", flush=True)
    try:
        stopping.wait()
    finally:
        stack.stop()


def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    key: Annotated[str, typer.Option("--key", help="Object key, e.g. uploads/clip.mp4 or library/film.mp4.")],
    oss_root: OssRootOption = None,
    template: TemplateOption = DEFAULT_TEMPLATE,
    bucket: BucketOption = DEFAULT_BUCKET,
) -> None:
    """Put FILE into the local bucket as KEY; its OSS trigger event is queued for the stack (durably: a stack
    that is down picks it up when it starts)."""
    obj, fresh = upload_file(_paths(ctx, oss_root), file, key, bucket=bucket, template_path=template)
    state = "queued" if fresh else "unchanged (this version was already uploaded)"
    print(f"oss://{obj.bucket}/{obj.key} etag {obj.etag} {obj.size} bytes: {state}")


def _slices_text(result: ScreeningResult) -> tuple[str, str, str]:
    if not result.matches:
        return "", "", ""
    items, sims, ranges = [], [], []
    for match in result.matches[:3]:
        items.append(match.library_object or match.primary_key)
        sims.append(f"{match.similarity:.2f}")
        spans = sorted(match.slices, key=lambda s: (s.kind, s.input_start))[:4]
        ranges.append("  ".join(s.describe() for s in spans))
    return "\n".join(items), "\n".join(sims), "\n".join(ranges)


def print_results(results: list[ScreeningResult], *, as_json: bool, console: Console | None = None) -> None:
    if as_json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    table = Table(title="Screening results", show_lines=True)
    for column in ("upload", "verdict", "matched library item", "similarity", "aligned time ranges (upload ↔ library)"):
        table.add_column(column)
    for result in results:
        item, sim, ranges = _slices_text(result)
        verdict = result.verdict if result.verdict != "failed" else f"failed\n{result.code}"
        table.add_row(result.upload, f"[{VERDICT_STYLE.get(result.verdict, '')}]{verdict}", item, sim, ranges)
    (console or Console(width=160)).print(table)


def results(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    uploads_only: Annotated[bool, typer.Option("--uploads-only", help="Hide library items.")] = False,
    limit: Annotated[int, typer.Option("--limit")] = 200,
) -> None:
    """List screening results: upload, verdict, matched library item, similarity, aligned time ranges."""
    path = _paths(ctx, None).results
    if not path.exists():
        raise typer.BadParameter(f"no results yet at {path}: run `fpscreen up` and upload something")
    try:
        rows = read_screening_results(path, limit=limit, include_library=not uploads_only)
    except ResultsDamaged as exc:
        Console(stderr=True).print(f"[bold red]Error[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    print_results(rows, as_json=as_json)


def demo(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Keep the demo's stack here (default: a temp dir).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Build a small library and a batch of uploads, run them through the full local stack, print the results."""
    from engine.localstack.demo import run_demo

    console = Console(stderr=as_json)
    report = run_demo(data_dir, keep=data_dir is not None, progress=lambda m: console.print(m))
    print_results(report.results, as_json=as_json)
    console.print(f"failed jobs reported to MPS: {report.reported_failures}; demo took {report.seconds:.0f} s")
    if report.problems:
        for problem in report.problems:
            console.print(f"[red]✗ {problem}")
        raise typer.Exit(1)
    console.print("[green]✓ every copy found with its time ranges, the original is clean, the broken file failed")


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("upload")(upload)
    app.command("results")(results)
    app.command("demo")(demo)
