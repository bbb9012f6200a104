"""`fpscreen verify [--repair]`: check a data directory and repair what can be repaired.

Checked: every SQLite database (`PRAGMA integrity_check`: library, service, results, stack and MNS databases),
and every fingerprint blob of every library (each is loaded as a search would; unreadable and missing blobs are
quarantined, see `engine.library`). Repaired with `--repair`:
- a damaged fingerprint is made again from its source object when that still exists (the local bucket, or the
  local file the CLI stored it from) and stored under the same PrimaryKey (it keeps its FileId);
- a database file SQLite cannot read at all is moved aside (`<name>.damaged-<UTC time>`), so the stack starts
  with an empty one instead of failing every request (the results database: every upload would dead-letter).
  A library database is never moved aside: its items are the library; it is reported for a restore instead.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from engine.core import ExtractOptions
from engine.errors import EngineError
from engine.library import DB_FILE, DamagedItem, LibraryStore
from engine.matcher import Matcher
from engine.service.inputs import resolve_input
from shared.contracts.mps import InputFile

_LIBRARY_DIRS = (".", "engine")  # `fpscreen library …` uses the data dir itself; `fpscreen up` its engine/


@dataclass
class Finding:
    what: str  # a database file, or "library <id> item <PrimaryKey>"
    problem: str
    repaired: str | None = None  # what --repair did, or None


@dataclass
class VerifyReport:
    checked: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def unrepaired(self) -> list[Finding]:
        return [f for f in self.findings if f.repaired is None]


def integrity_problem(path: Path) -> str | None:
    """None when SQLite finds `path` sound, else what it says."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = [str(row[0]) for row in db.execute("PRAGMA integrity_check(20)")]
    except sqlite3.DatabaseError as exc:
        return f"not readable by SQLite: {exc}"
    return None if rows == ["ok"] else "; ".join(rows)


def _databases(data_dir: Path) -> list[Path]:
    found: list[Path] = []
    for folder in (data_dir, data_dir / "engine"):
        if folder.is_dir():
            found.extend(sorted(p for p in folder.glob("*.db") if p.is_file()))
    return found


def _move_aside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


def _copy_readable(source: Path, target: Path) -> int:
    """Rebuild `source` into `target`: same schema, every row SQLite can still read (tables are scanned without
    their indexes, which are built anew). Returns the number of tables that lost rows."""
    lossy = 0
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        schema = src.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        tables = [(name, sql) for kind, name, sql in schema if kind == "table"]
        for _, sql in tables:
            dst.execute(sql)
        for name, _ in tables:
            rows = src.execute(f'SELECT * FROM "{name}"')
            try:
                while batch := rows.fetchmany(500):
                    marks = ",".join("?" * len(batch[0]))
                    dst.executemany(f'INSERT OR IGNORE INTO "{name}" VALUES ({marks})', batch)
            except sqlite3.DatabaseError:
                lossy += 1  # the rows after the damaged page are lost; the rest is kept
        with suppress(sqlite3.DatabaseError):  # AUTOINCREMENT counters, so ids are never reused
            for name, seq in src.execute("SELECT name, seq FROM sqlite_sequence").fetchall():
                dst.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (seq, name))
        for kind, _, sql in schema:
            if kind != "table":
                dst.execute(sql)
    return lossy


def _salvage(path: Path) -> str:
    """Copy what SQLite can still read into a fresh file; if even that fails, start empty."""
    copy = path.with_name(path.name + ".salvage")
    copy.unlink(missing_ok=True)
    try:
        lossy = _copy_readable(path, copy)
        salvaged = integrity_problem(copy) is None
    except sqlite3.DatabaseError:
        salvaged, lossy = False, 0
    aside = _move_aside(path)
    if salvaged:
        copy.rename(path)
        lost = f"; {lossy} table(s) lost the rows on damaged pages" if lossy else ""
        return f"rebuilt from its readable rows (the damaged file kept as {aside.name}){lost}"
    copy.unlink(missing_ok=True)
    return f"moved aside to {aside.name}; a new empty one is made at next start"


def source_of(item: DamagedItem, oss_root: Path) -> Path | None:
    """The file an item was fingerprinted from, if it still exists: its OSS object, or the local path."""
    raw = item.input_file or ""
    try:
        described = json.loads(raw) if raw.startswith("{") else None
    except ValueError:
        described = None
    if isinstance(described, dict):
        try:
            path = resolve_input(oss_root, InputFile.model_validate(described))
        except (ValidationError, EngineError):
            return None
    elif raw:
        path = Path(raw)
    else:
        return None
    return path if path.is_file() else None


def _repair_item(store: LibraryStore, item: DamagedItem, oss_root: Path) -> str | None:
    source = source_of(item, oss_root)
    if source is None:
        return None
    library = store.get_library(item.fp_db_id)
    fingerprints = Matcher(store).extract(source, library.model_id, ExtractOptions())
    store.add_item(item.fp_db_id, item.primary_key, fingerprints, input_file=item.input_file)
    return f"fingerprinted again from {source}"


def _check_libraries(folder: Path, oss_root: Path, repair: bool, report: VerifyReport) -> None:
    with LibraryStore(folder) as store:
        for library in store.list_libraries():
            report.checked.append(f"library {library.fp_db_id} ({library.item_count} items)")
            damaged = store.check_library(library.fp_db_id)
            repaired_keys: set[str] = set()
            for item in damaged:
                finding = Finding(
                    f"library {library.fp_db_id} item {item.primary_key!r} (#{item.item_id})", item.reason
                )
                report.findings.append(finding)
                if not repair:
                    continue
                if item.primary_key in repaired_keys:
                    finding.repaired = "fingerprinted again (with its other modality)"
                    continue
                try:
                    finding.repaired = _repair_item(store, item, oss_root)
                except EngineError as exc:
                    finding.problem += f"; repair failed: [{exc.code}] {exc.message}"
                if finding.repaired is not None:
                    repaired_keys.add(item.primary_key)
                else:
                    finding.problem += "; its source is gone: quarantined (remove it, or store it again)"


def verify_data_dir(data_dir: Path, oss_root: Path | None = None, *, repair: bool = False) -> VerifyReport:
    data_dir = Path(data_dir).expanduser()
    oss_root = Path(oss_root).expanduser() if oss_root else data_dir / "oss"
    report = VerifyReport()
    readable_libraries: list[Path] = []
    for path in _databases(data_dir):
        report.checked.append(str(path))
        problem = integrity_problem(path)
        if problem is None:
            if path.name == DB_FILE:
                readable_libraries.append(path.parent)
            continue
        finding = Finding(str(path), problem)
        report.findings.append(finding)
        if repair and path.name != DB_FILE:
            finding.repaired = _salvage(path)
    for folder in readable_libraries:
        _check_libraries(folder, oss_root, repair, report)
    return report
