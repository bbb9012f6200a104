"""The local stack's commands: `fpscreen up`, `fpscreen upload`, `fpscreen results`, `fpscreen demo`."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from engine.cli_root import DataDirOption, data_dir
from engine.localstack.bucket import BucketError, validate_key
from engine.localstack.progress import UploadProgress
from engine.localstack.results import (
    MatchedItem,
    Problem,
    ResultsDamaged,
    ScreeningResult,
    problems,
    read_screening_results,
)
from engine.localstack.skipped import skip_reason
from engine.localstack.stack import DEFAULT_BUCKET, DEFAULT_TEMPLATE, LocalStack, StackPaths, StackSettings, upload_file
from engine.template import Template, TemplateError, load_template
from shared.store.sqlite import SqliteStore

OssRootOption = Annotated[
    Path | None, typer.Option("--oss-root", help="Directory holding the buckets [default: <data-dir>/oss].")
]
TemplateOption = Annotated[Path, typer.Option("--template", help="The deployment template to wire from.")]
BucketOption = Annotated[str, typer.Option("--bucket", help="The media bucket (template's MediaBucketName).")]


@cache
def load_template_cached(path: Path, bucket: str) -> Template:
    """The template as `upload` reads triggers and routes from it (the bootstrapped ids do not matter there)."""
    return load_template(path, {"MediaBucketName": bucket})


VERDICT_STYLE = {"copy": "bold red", "clean": "green", "failed": "yellow", "pending": "dim", "stored": "cyan"}


def _paths(ctx: typer.Context, oss_root: Path | None, override: Path | None = None) -> StackPaths:
    return StackPaths.under(data_dir(ctx, override), oss_root)


def _fail(message: str) -> NoReturn:
    """One line on stderr and exit status 1: a newcomer's mistake is not a traceback."""
    Console(stderr=True).print(f"[bold red]Error[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def _only_stack(paths: StackPaths) -> Iterator[None]:
    """One `fpscreen up` per data directory: a second one would fight the first over the same queues."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = paths.data_dir / "stack.lock"
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "another process"
            _fail(
                f"a stack is already running on {paths.data_dir} (pid {owner}): use it, stop it (Ctrl-C in its "
                "terminal), or pick another --data-dir"
            )
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def up(
    ctx: typer.Context,
    oss_root: OssRootOption = None,
    template: TemplateOption = DEFAULT_TEMPLATE,
    bucket: BucketOption = DEFAULT_BUCKET,
    workers: Annotated[int, typer.Option("--workers", help="Engine worker threads.")] = 2,
    data_dir_: DataDirOption = None,
) -> None:
    """Start the whole stack — local MNS, the engine service, the bucket watcher and the three functions wired
    to their triggers as template.yml declares them — and run until interrupted (Ctrl-C stops it). Each upload
    is shown as it goes: received, submitted, result."""
    paths = _paths(ctx, oss_root, data_dir_)
    stack = LocalStack(
        StackSettings(paths, template_path=template, bucket=bucket, engine_workers=workers, log_file=True)
    )
    stopping = threading.Event()
    with _only_stack(paths):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        try:
            stack.start()
        except Exception as exc:  # ports, a broken template, an unreadable directory: say what, not where
            stack.stop()
            _fail(f"the stack did not start: {exc} (details in {paths.data_dir / 'stack.log'})")
        console = Console()
        console.print(
            f"stack up: engine {stack.engine.url} mns {stack.mns.endpoint} bucket {stack.bucket_dir.root}\n"
            f"function logs: {paths.data_dir / 'stack.log'}\n"
            f"upload with `fpscreen upload FILE|DIR --data-dir {paths.data_dir}`; Ctrl-C stops the stack",
            highlight=False,
            soft_wrap=True,
        )
        try:
            watch_uploads(UploadProgress(paths, bucket), stopping, console)
        finally:
            stack.stop()


def watch_uploads(progress: UploadProgress, stopping: threading.Event, console: Console) -> None:
    """A live line per upload in flight (received → submitted); each result is printed once, above them."""
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            done, flying = progress.poll()
            for line in done:
                live.console.print(line, highlight=False, soft_wrap=True)
            live.update(Group(*(Text.from_markup(line) for line in flying)))
            if stopping.wait(0.5):  # the display refresh, not a synchronisation
                return


def _upload_keys(source: Path, key: str | None, prefix: str) -> list[tuple[Path, str]]:
    if source.is_dir():
        if key is not None:
            raise typer.BadParameter("--key names one object: for a folder use --prefix", param_hint="--key")
        files = sorted(p for p in source.rglob("*") if p.is_file())
        pairs = [(p, prefix + p.relative_to(source).as_posix()) for p in files]
        return [(p, k) for p, k in pairs if not any(part.startswith(".") for part in k.split("/"))]
    return [(source, key if key is not None else prefix + source.name)]


def upload(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Argument(metavar="FILE|DIR", exists=True, readable=True, help="A file, or a folder (recursive).")
    ],
    key: Annotated[
        str | None, typer.Option("--key", help="Object key for a FILE, e.g. library/film.mp4 [default: PREFIX+name].")
    ] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Key prefix: uploads/ is screened, library/ fills the library.")
    ] = "uploads/",
    oss_root: OssRootOption = None,
    template: TemplateOption = DEFAULT_TEMPLATE,
    bucket: BucketOption = DEFAULT_BUCKET,
    data_dir_: DataDirOption = None,
) -> None:
    """Put FILE (or every file under DIR, keyed PREFIX + relative path) into the local bucket; each one's OSS
    trigger event is queued for the stack (durably: a stack that is down picks it up when it starts). Objects the
    pipeline will not screen are reported as skipped, with the reason."""
    paths = _paths(ctx, oss_root, data_dir_)
    pairs = _upload_keys(source, key, prefix)
    for _, object_key in pairs:
        try:
            validate_key(object_key)
        except BucketError as exc:
            _fail(f"{exc}: keys are relative paths like uploads/clip.mp4")
    if not pairs:
        _fail(f"no files under {source}")
    console = Console(highlight=False)
    skipped = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=len(pairs) == 1,
    ) as bar:
        task = bar.add_task("uploading", total=len(pairs))
        for path, object_key in pairs:
            try:
                obj, fresh = upload_file(paths, path, object_key, bucket=bucket, template_path=template)
            except (BucketError, TemplateError, OSError) as exc:
                _fail(f"{path}: {exc}")
            reason = skip_reason(load_template_cached(template, bucket), object_key, bucket)
            if not fresh:
                state = "unchanged (this version was already uploaded)"
            elif reason is not None:
                skipped += 1
                state = f"skipped: {reason}"
            else:
                state = "queued"
            line = Text(f"oss://{obj.bucket}/{obj.key} etag {obj.etag} {obj.size} bytes: {state}")  # never markup
            if state.startswith("skipped"):
                line.highlight_words(["skipped"], style="yellow")
            console.print(line, soft_wrap=True)
            bar.advance(task)
    if len(pairs) > 1:
        console.print(f"{len(pairs)} file(s): {len(pairs) - skipped} queued or unchanged, {skipped} skipped")


MAX_ITEMS = 5  # matched items per upload in the table (--all: every one); the rest are counted, never dropped
MAX_SLICES = 4  # aligned slices per item
POLICY_STYLE = {"block": "bold red", "review": "bold yellow", "allow": "green"}


def _share(value: object) -> str:
    return f"{float(value) * 100:.0f}%" if isinstance(value, int | float) else "?"


def _evidence_line(match: MatchedItem) -> str:
    ev = match.evidence
    if not ev:
        return f"similarity {match.similarity:.2f}"
    unit = ev.get("unit", "s")
    modalities = set(ev.get("modalities") or {})
    agree = "both" if {"video", "audio"} <= modalities else "+".join(sorted(modalities)) or "?"
    return (
        f"{float(ev.get('matched', 0)):.1f} {unit} · {_share(ev.get('upload_share'))} of upload · "
        f"{_share(ev.get('library_share'))} of item · {agree} · "
        f"best {float(ev.get('best_similarity', 0)):.2f} / overall {float(ev.get('similarity', 0)):.2f}"
    )


def _matches_cell(result: ScreeningResult, *, everything: bool) -> Text:
    """Every item's evidence and aligned ranges, as plain text (never markup): a name may hold brackets."""
    cell = Text()
    shown = result.matches if everything else result.matches[:MAX_ITEMS]
    for n, match in enumerate(shown):
        if n:
            cell.append("\n")
        cell.append(match.library_object or match.primary_key, style="bold")
        cell.append("\n  " + _evidence_line(match))
        slices = sorted(match.slices, key=lambda s: (s.kind, s.input_start))
        for piece in slices if everything else slices[:MAX_SLICES]:
            cell.append("\n  " + piece.describe())
        hidden = 0 if everything else len(slices) - MAX_SLICES
        if hidden > 0:
            cell.append(f"\n  +{hidden} more slice{'s' if hidden > 1 else ''} (--all or --json)", style="dim")
    hidden_items = len(result.matches) - len(shown)
    if hidden_items > 0:
        cell.append(f"\n+{hidden_items} more item{'s' if hidden_items > 1 else ''} (--all or --json)", style="dim")
    return cell


def _verdict_cell(result: ScreeningResult) -> Text:
    cell = Text()
    if result.policy_verdict:
        cell.append(result.policy_verdict, style=POLICY_STYLE.get(result.policy_verdict, ""))
        cell.append(f"\nrule {result.rule}\npolicy {result.policy}", style="dim")
        if result.review:
            cell.append(f"\n{result.review}")
        cell.append("\n")
    outcome = result.verdict if result.verdict != "failed" else f"failed {result.code}"
    cell.append(outcome, style=VERDICT_STYLE.get(result.verdict, ""))
    return cell


def _upload_cell(result: ScreeningResult) -> Text:
    cell = Text(result.upload)
    cell.append(f"\njob {result.job_id}", style="dim")
    cell.append(f"\n{result.version}", style="dim" if result.version == "current" else "yellow")
    if result.submitted:
        cell.append(f"\nsubmitted {result.submitted}", style="dim")
    if result.finished:
        cell.append(f"\nfinished {result.finished}", style="dim")
    return cell


def print_results(
    results: list[ScreeningResult], *, as_json: bool, console: Console | None = None, everything: bool = False
) -> None:
    if as_json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    table = Table(title="Screening results", show_lines=True)
    for column in ("upload", "verdict", "matched items: evidence and aligned ranges (upload ↔ library)"):
        table.add_column(column)
    for result in results:
        table.add_row(_upload_cell(result), _verdict_cell(result), _matches_cell(result, everything=everything))
    (console or Console(width=160)).print(table)


def results(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    uploads_only: Annotated[bool, typer.Option("--uploads-only", help="Hide library items.")] = False,
    limit: Annotated[int, typer.Option("--limit")] = 200,
    everything: Annotated[bool, typer.Option("--all", help="Every matched item and slice (default: counted).")] = False,
    data_dir_: DataDirOption = None,
) -> None:
    """List screening results: upload (job, version, times), the policy's verdict and the rule that decided,
    any reviewer decision, and per matched item the evidence and the aligned time ranges."""
    path = _paths(ctx, None, data_dir_).results
    if not path.exists():
        raise typer.BadParameter(f"no results yet at {path}: run `fpscreen up` and upload something")
    try:
        rows = read_screening_results(path, limit=limit, include_library=not uploads_only)
    except ResultsDamaged as exc:
        Console(stderr=True).print(Text.assemble(("Error ", "bold red"), str(exc)), highlight=False)
        raise typer.Exit(1) from exc
    print_results(rows, as_json=as_json, everything=everything)
    if not as_json:
        print_problems(_problems(_paths(ctx, None, data_dir_)))


def _problems(paths: StackPaths) -> list[Problem]:
    from engine.localstack.state import StackState

    dead: list[tuple[str, str, str]] = []
    if paths.state.exists():
        state = StackState(paths.state)
        try:
            dead = state.dead_letters()
        finally:
            state.close()
    return problems(SqliteStore(paths.results), dead) if paths.results.exists() else []


def print_problems(found: list[Problem], *, console: Console | None = None) -> None:
    if not found:
        return
    table = Table(title="Set aside (parked messages, dead letters, reports), with reasons", show_lines=True)
    for column in ("kind", "item", "source", "reason"):
        table.add_column(column)
    for problem in found:
        table.add_row(problem.kind, problem.item, problem.source, problem.reason)
    (console or Console(width=160)).print(table)


def problems_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    data_dir_: DataDirOption = None,
) -> None:
    """List what was set aside instead of processed: parked messages, dead letters, reports, each with its reason."""
    found = _problems(_paths(ctx, None, data_dir_))
    if as_json:
        json.dump([p.to_dict() for p in found], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    elif found:
        print_problems(found)
    else:
        Console().print("nothing parked, dead-lettered or left unreported")


def demo(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Keep the demo's stack here (default: a temp dir).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Build a small library and a batch of uploads, run them through the full local stack, print the results."""
    from engine.localstack.demo import run_demo

    console = Console(stderr=as_json)
    report = run_demo(data_dir, keep=data_dir is not None, progress=lambda m: console.print(Text(m)))
    print_results(report.results, as_json=as_json)
    console.print(f"failed jobs reported to MPS: {report.reported_failures}; demo took {report.seconds:.0f} s")
    if report.problems:
        for problem in report.problems:
            console.print(Text(f"✗ {problem}", style="red"))  # a problem names upload keys: text, not markup
        raise typer.Exit(1)
    console.print("[green]✓ every copy found with its time ranges, the original is clean, the broken file failed")


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("upload")(upload)
    app.command("results")(results)
    app.command("problems")(problems_command)
    app.command("demo")(demo)
    from engine.review.cli import reevaluate, review

    app.command("review")(review)
    app.command("reevaluate")(reevaluate)
