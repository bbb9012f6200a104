"""`fpscreen`: the developer CLI over the local engine.

The root `app` lives in `engine.cli_root`; this module adds the library and match commands and composes the other
areas (`fpscreen engine serve`, `fpscreen up`, `fpscreen demo`), which register on the same `app` and get the data
directory from `engine.cli_root.data_dir(ctx)`; none of them imports this module.

    fpscreen library create NAME --model video|audio|text
    fpscreen library list | items ID | add ID FILE|DIR... [--key PK] | remove ID PK... | delete ID [--purge]
    fpscreen match ID FILE [--json] [--threshold X]

Machine-readable output (`--json`, `library create --quiet`) goes to stdout; progress bars and errors go to stderr.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from engine.cli_root import DataDirOption, app, data_dir
from engine.errors import EngineError
from engine.library import LibraryStore
from engine.localstack.cli import register as register_localstack
from engine.matcher import JobOutcome, Matcher
from engine.modalities import kind_of, model_id_of
from shared.contracts.modalities import MODALITIES, kind_for, text_type_for
from shared.contracts.mps import FpShotConfig, FpShotResult

try:
    from engine.service.cli import engine_app
except ImportError:  # the service's CLI is optional in a trimmed install
    engine_app = None

library_app = typer.Typer(
    help="Create, fill, list and delete fingerprint libraries.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(library_app, name="library")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the MPS wire shape as JSON.")]
TextTypeOption = Annotated[
    str | None, typer.Option("--text-type", help="Text jobs: 'Text' or 'ASR' (JSON array of {start,end,text}).")
]


def _stderr() -> Console:
    return Console(stderr=True)


# `fpscreen match` exit statuses, as grep's: something matched, nothing did, or the search itself failed.
EXIT_MATCH, EXIT_NO_MATCH, EXIT_ERROR = 0, 1, 2


def library_dir(root: Path) -> Path:
    """Where the libraries of data directory `root` live: `fpscreen up` keeps its engine's in `<root>/engine`, so
    the library commands look there once a stack has used `root`; otherwise (a bare engine) `root` itself."""
    stack = root / "engine"
    if (root / "stack.db").exists() or (stack / "fpscreen.db").exists():
        return stack
    return root


@contextmanager
def open_store(ctx: typer.Context, override: Path | None = None, *, error_status: int = 1) -> Iterator[LibraryStore]:
    """The library store, with engine errors turned into a one-line message and exit status `error_status`."""
    try:
        with LibraryStore(library_dir(data_dir(ctx, override))) as store:
            yield store
    except EngineError as exc:
        message = Text.assemble(("Error", "bold red"), f" [{exc.code}] {exc.message}")  # text, never markup
        _stderr().print(message, highlight=False)
        raise typer.Exit(error_status) from exc


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_stderr(),
        transient=True,
    )


# --------------------------------------------------------------------------------------------- library


@library_app.command("create")
def library_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for people; the library's id is generated.")],
    model: Annotated[str, typer.Option("--model", "-m", help="video, audio or text (or ModelId 12, 13, 11).")],
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    config: Annotated[str | None, typer.Option(help="MPS Config, a JSON string kept as is.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new FpDBId.")] = False,
    as_json: JsonOption = False,
    data_dir_: DataDirOption = None,
) -> None:
    """Create a library (MPS CreateFpShotDB) and print its FpDBId."""
    with open_store(ctx, data_dir_) as store:
        library = store.create_library(name, model_id_of(model), description=description, config=config)
    if as_json:
        _echo_json(library.to_fp_shot_db().to_wire())
    elif quiet:
        typer.echo(library.fp_db_id)
    else:
        created = Text.assemble(f"Created {library.kind} library ", (library.name, "bold"), f": {library.fp_db_id}")
        Console().print(created, highlight=False)


@library_app.command("list")
def library_list(ctx: typer.Context, as_json: JsonOption = False, data_dir_: DataDirOption = None) -> None:
    """List libraries (MPS ListFpShotDB)."""
    with open_store(ctx, data_dir_) as store:
        libraries = store.list_libraries()
    if as_json:
        _echo_json({"FpShotDBList": {"FpShotDB": [lib.to_fp_shot_db().to_wire() for lib in libraries]}})
        return
    table = Table(title="Libraries")
    # Ids are what every other command takes: never wrapped or elided, whatever the terminal width.
    table.add_column("FpDBId", no_wrap=True, min_width=32)
    for column in ("Name", "Kind", "Items", "Created", "Description"):
        table.add_column(column)
    for lib in libraries:
        name = f"{lib.name} (default)" if lib.is_default else lib.name
        table.add_row(
            lib.fp_db_id, Text(name), lib.kind, str(lib.item_count), lib.created_at, Text(lib.description or "")
        )
    Console().print(table)


@library_app.command("delete")
def library_delete(
    ctx: typer.Context,
    fp_db_id: Annotated[str, typer.Argument(metavar="ID")],
    purge: Annotated[bool, typer.Option("--purge", help="Only empty the library (MPS DelType=Purge).")] = False,
    data_dir_: DataDirOption = None,
) -> None:
    """Delete a library and everything in it (MPS SubmitFpDBDeleteJob)."""
    with open_store(ctx, data_dir_) as store:
        if purge:
            removed = store.purge_library(fp_db_id)
            Console().print(f"Purged {fp_db_id}: {removed} item(s) removed", highlight=False)
        else:
            store.delete_library(fp_db_id)
            Console().print(f"Deleted {fp_db_id}", highlight=False)


def accepts(library_kind: str, name: str, text_type: str | None = None) -> bool:
    """Whether a file of this name can go into a library of this kind, by the shared suffix table: text only into
    text libraries (a `.txt` decoded as video would be stored as 1 s of nothing), media only into media ones."""
    is_text = kind_for(name, text_type) == "text"
    return is_text if library_kind == "text" else not is_text


def _expand(paths: list[Path], library_kind: str, text_type: str | None) -> tuple[list[tuple[Path, str]], list[str]]:
    """(file, PrimaryKey) pairs to add, and why others were skipped. A directory is walked recursively; its files
    are keyed by their path relative to it (two `a.mp4` in different folders stay two items) and the ones this
    library cannot hold are skipped. A FILE given by name that the library cannot hold is refused outright."""
    chosen: list[tuple[Path, str]] = []
    skipped: list[str] = []
    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = found.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue  # .DS_Store, .git and the like
                if accepts(library_kind, found.name, text_type):
                    chosen.append((found, rel.as_posix()))
                else:
                    skipped.append(f"{found}: not a {library_kind} file")
        elif not path.is_file():
            raise typer.BadParameter(f"{path} does not exist", param_hint="FILE")
        elif not accepts(library_kind, path.name, text_type):
            wanted = "a text file (.txt .md .srt .vtt .json)" if library_kind == "text" else "a video or audio file"
            raise typer.BadParameter(
                f"{path} cannot go into a {library_kind} library: give {wanted}", param_hint="FILE"
            )
        else:
            chosen.append((path, path.name))
    seen: dict[str, Path] = {}
    for path, primary_key in chosen:
        if primary_key in seen:
            raise typer.BadParameter(
                f"{seen[primary_key]} and {path} would both be stored as {primary_key!r} (the second replacing the "
                "first): add one with --key, or add their folder (items are then keyed by relative path)",
                param_hint="FILE",
            )
        seen[primary_key] = path
    return chosen, skipped


@library_app.command("add")
def library_add(
    ctx: typer.Context,
    fp_db_id: Annotated[str, typer.Argument(metavar="ID")],
    files: Annotated[list[Path], typer.Argument(metavar="FILE|DIR...", help="Files, or folders to add recursively.")],
    key: Annotated[
        str | None, typer.Option("--key", "-k", help="PrimaryKey (one file only; default: the file name).")
    ] = None,
    save_type: Annotated[
        str, typer.Option("--save-type", help="onlysave (store), save (store unless a duplicate), forcesave.")
    ] = "onlysave",
    threshold: Annotated[float | None, typer.Option(help="SimilarityThreshold for --save-type save.")] = None,
    text_type: TextTypeOption = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Fingerprint files (or whole folders) and store them in a library; an existing PrimaryKey is replaced."""
    if key is not None and (len(files) != 1 or files[0].is_dir()):
        raise typer.BadParameter("--key names one item: give exactly one FILE", param_hint="--key")
    if save_type not in ("onlysave", "save", "forcesave"):
        raise typer.BadParameter("use onlysave, save or forcesave", param_hint="--save-type")
    err = _stderr()
    failures = 0
    table = Table("PrimaryKey", "FileId", "Outcome", title="Stored")
    with open_store(ctx, data_dir_) as store:
        library = store.get_library(fp_db_id)  # fail before any fingerprinting
        todo, skipped = _expand(files, library.kind, text_type)
        for reason in skipped:
            err.print(f"[yellow]skipped[/] {reason}", highlight=False)
        matcher = Matcher(store)
        with _progress() as progress:
            task = progress.add_task("Fingerprinting", total=len(todo))
            for path, default_key in todo:
                progress.update(task, description=f"Fingerprinting {path.name}")
                primary_key = key or default_key
                try:
                    config = FpShotConfig(
                        primary_key=primary_key,
                        save_type=save_type,  # type: ignore[arg-type]
                        fp_db_id=fp_db_id,
                        text_type=text_type,  # type: ignore[arg-type]
                        similarity_threshold=threshold,
                    )
                    outcome = matcher.run_job(path, config, str(path.resolve()))
                except (EngineError, ValidationError) as exc:
                    failures += 1
                    message = exc.message if isinstance(exc, EngineError) else str(exc)
                    err.print(Text.assemble((str(path), "red"), f": {message}"), highlight=False)
                    table.add_row(Text(primary_key), "", Text("failed", style="red"))
                else:
                    table.add_row(Text(primary_key), outcome.file_id or "", Text(_store_outcome(outcome)))
                progress.advance(task)
    Console().print(table)
    if not todo:
        err.print(f"nothing to add: no {library.kind} files in {', '.join(map(str, files))}", highlight=False)
        raise typer.Exit(1)
    if failures:
        raise typer.Exit(1)


def _store_outcome(outcome: JobOutcome) -> str:
    if outcome.stored:
        return "stored"
    copies = [shot.primary_key for shot in _all_shots(outcome.result)]
    return f"duplicate of {', '.join(dict.fromkeys(copies))}" if outcome.duplicate else "not stored"


@library_app.command("items")
def library_items(
    ctx: typer.Context,
    fp_db_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: JsonOption = False,
    data_dir_: DataDirOption = None,
) -> None:
    """List the files stored in a library (MPS ListFpShotFiles)."""
    with open_store(ctx, data_dir_) as store:
        library = store.get_library(fp_db_id)
        items = store.list_items(fp_db_id)
    if as_json:
        files = [
            {"FileId": i.file_id, "PrimaryKey": i.primary_key, "StoreTime": i.store_time, "InputFile": i.input_file}
            for i in items
        ]
        _echo_json({"FpShotFileList": {"FpShotFile": files}})
        return
    unit = "chars" if library.kind == "text" else "s"
    table = Table(title=Text(library.name))
    table.add_column("Source", overflow="fold")
    table.add_column("PrimaryKey", no_wrap=True)
    for column in ("FileId", "StoreTime", f"Duration ({unit})"):
        table.add_column(column)
    for item in items:
        table.add_row(
            Text(source_name(item.input_file)),
            Text(item.primary_key),
            item.file_id,
            item.store_time,
            f"{item.duration:g}",
        )
    Console().print(table)


def source_name(input_file: str | None) -> str:
    """What a person recognises an item by: the stack stores MPS InputFile JSON (its PrimaryKey is a hash of the
    object), `library add` a path."""
    if not input_file:
        return ""
    try:
        wire = json.loads(input_file)
    except ValueError:
        return input_file
    if isinstance(wire, dict) and "Object" in wire:
        return f"oss://{wire.get('Bucket', '')}/{unquote(str(wire['Object']))}"
    return input_file


@library_app.command("remove")
def library_remove(
    ctx: typer.Context,
    fp_db_id: Annotated[str, typer.Argument(metavar="ID")],
    keys: Annotated[list[str], typer.Argument(metavar="PRIMARY_KEY...")],
    data_dir_: DataDirOption = None,
) -> None:
    """Remove items by PrimaryKey (MPS SubmitFpFileDeleteJob)."""
    with open_store(ctx, data_dir_) as store:
        removed = store.delete_items(fp_db_id, primary_keys=keys)
    missing = sorted(set(keys) - {item.primary_key for item in removed})
    Console().print(f"Removed {len(removed)} item(s)", highlight=False)
    if missing:
        _stderr().print(f"Not in the library: {', '.join(missing)}", highlight=False)
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------- match


def _all_shots(result: FpShotResult) -> list[Any]:
    return [shot for spec in MODALITIES for shot in result.matches_of(spec.name)]


def _clip(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _result_tables(result: FpShotResult, unit: str) -> list[Table]:
    tables: list[Table] = []
    for spec in MODALITIES:
        if getattr(result, spec.result_field) is None:
            continue  # the library does not hold this modality
        title = f"{spec.name.title()} ({spec.result_key})"
        if spec.shape == "text":
            table = Table(
                "PrimaryKey", "Similarity", f"Input ({unit})", "InputText", "DuplicationText", "Slice sim.", title=title
            )
            for shot in result.matches_of(spec.name):
                for n, t in enumerate(shot.slices):  # type: ignore[union-attr]
                    table.add_row(  # names and texts as Text: a "[red]" in them is not markup
                        Text(shot.primary_key if n == 0 else ""),
                        f"{shot.similarity:.3f}" if n == 0 else "",
                        f"{t.input_fragment.start:g} - {t.input_fragment.end:g}",  # type: ignore[union-attr]
                        Text(_clip(t.input_text)),  # type: ignore[union-attr]
                        Text(_clip(t.duplication_text)),  # type: ignore[union-attr]
                        f"{t.similarity:.3f}",
                    )
        else:
            table = Table("PrimaryKey", "Similarity", "Input (s)", "Duplication (s)", "Slice sim.", title=title)
            for shot in result.matches_of(spec.name):
                for n, s in enumerate(shot.slices):
                    table.add_row(
                        Text(shot.primary_key if n == 0 else ""),
                        f"{shot.similarity:.3f}" if n == 0 else "",
                        f"{s.input.start:g} - {s.input.end:g}",  # type: ignore[union-attr]
                        f"{s.duplication.start:g} - {s.duplication.end:g}",  # type: ignore[union-attr]
                        f"{s.similarity:.3f}",
                    )
        tables.append(table)
    return tables


@app.command("match")
def match(
    ctx: typer.Context,
    fp_db_id: Annotated[str, typer.Argument(metavar="ID", help="The library to search.")],
    file: Annotated[Path, typer.Argument(metavar="FILE", dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the FpShotResult exactly as MPS sends it.")] = False,
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0, help="Report only items at least this similar.")
    ] = 0.0,
    text_type: TextTypeOption = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Search a library for what FILE copies (an MPS `nosave` job) and print the FpShotResult.

    Exit status: 0 when something matched, 1 when nothing did, 2 on an error (as grep)."""
    try:
        config = FpShotConfig(primary_key=file.name, save_type="nosave", fp_db_id=fp_db_id, text_type=text_type)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--text-type") from exc  # click's usage error: status 2
    with open_store(ctx, data_dir_, error_status=EXIT_ERROR) as store, _progress() as progress:
        progress.add_task(Text(f"Fingerprinting {file.name}"), total=None)
        outcome = Matcher(store).run_job(file, config, min_similarity=threshold)
    found = bool(_all_shots(outcome.result))
    if as_json:
        _echo_json(outcome.result.to_wire())
        raise typer.Exit(EXIT_MATCH if found else EXIT_NO_MATCH)
    # Text slices are in seconds when the text carries timings (ASR), in characters for plain text.
    timed_text = (text_type or text_type_for(file.name)) == "ASR"
    timed = kind_of(outcome.library.model_id) != "text" or timed_text
    console = Console()
    console.print(
        Text.assemble(
            f"{file.name} against ",
            (outcome.library.name, "bold"),
            f" ({outcome.library.fp_db_id}): {len(_all_shots(outcome.result))} matching item(s)",
        ),
        highlight=False,
    )
    for table in _result_tables(outcome.result, "s" if timed else "chars"):
        console.print(table)
    raise typer.Exit(EXIT_MATCH if found else EXIT_NO_MATCH)


@app.command("verify")
def verify(
    ctx: typer.Context,
    repair: Annotated[
        bool, typer.Option("--repair", help="Fingerprint damaged items again from their source; rebuild databases.")
    ] = False,
    oss_root: Annotated[
        Path | None, typer.Option("--oss-root", help="The local bucket root (default: <data-dir>/oss).")
    ] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Verify a data directory: SQLite integrity of every database and every library's fingerprint blobs."""
    from engine.verify import verify_data_dir

    directory = data_dir(ctx, data_dir_)
    if not directory.is_dir():
        raise typer.BadParameter(f"no data directory at {directory}", param_hint="--data-dir")
    report = verify_data_dir(directory, oss_root, repair=repair)
    console = Console()
    for checked in report.checked:
        console.print(f"checked {checked}", highlight=False)
    if not report.findings:
        console.print("[green]no damage found[/]")
        return
    table = Table("where", "problem", "repair", title="Damage")
    for finding in report.findings:
        table.add_row(finding.what, finding.problem, finding.repaired or ("[red]not repaired[/]"))
    console.print(table)
    if report.unrepaired:
        hint = "" if repair else " (run `fpscreen verify --repair`)"
        _stderr().print(f"[bold red]{len(report.unrepaired)} problem(s) remain[/]{hint}", highlight=False)
        raise typer.Exit(1)


def _register_areas() -> None:
    """Other areas' commands: the local stack (up, upload, results, demo) and the engine service."""
    register_localstack(app)
    if engine_app is not None:
        app.add_typer(engine_app, name="engine")


_register_areas()
