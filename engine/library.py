"""Fingerprint libraries on disk: what MPS keeps behind `CreateFpShotDB`, `ListFpShotFiles` and the delete jobs.

One SQLite database in WAL mode (`<data_dir>/fpscreen.db`) holds library metadata, items and each item's
fingerprint blobs, one per modality. Searchable indexes live in memory, kept current by this process's own
writes. Every library has a `generation` bumped on each change, so another process writing the same database (the
CLI beside a running server) is noticed and the in-memory index catches up by item id, without a rebuild.

An index that can persist itself (`PersistentIndex`: video, audio) is also kept on disk under
`<data_dir>/indexes/<FpDBId>/<modality>/` and memory-mapped from there at the first search after a start, so a
large library answers at once instead of being rebuilt from its blobs. The blobs stay the truth: the loaded index
reports which item ids it holds, and the same catch-up by item id adds what it lacks (items stored since its last
save, which happens after every search that changed it) and drops what was deleted. Indexes without persistence
are built from the blobs on first use, as before.

Thread safety: every thread gets its own SQLite connection; writes are `BEGIN IMMEDIATE` transactions; each
library has a re-entrant lock that guards its indexes and lets a job make "search, then store" atomic.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from engine.core import Fingerprint, ItemMatch, ModalityIndex
from engine.errors import EngineError, LibraryError
from engine.modalities import get_modality, kind_of, modality_names
from shared.contracts.mps import FpShotDB
from shared.sqlite import SqliteDatabase

log = logging.getLogger(__name__)

DB_FILE = "fpscreen.db"
INDEX_DIR = "indexes"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS libraries (
    fp_db_id    TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    model_id    INTEGER NOT NULL,
    description TEXT,
    config      TEXT,
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  TEXT NOT NULL,
    is_default  INTEGER NOT NULL DEFAULT 0,
    generation  INTEGER NOT NULL DEFAULT 0
);
-- AUTOINCREMENT: item ids are index ids and must never be reused, even across processes.
CREATE TABLE IF NOT EXISTS items (
    item_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    fp_db_id    TEXT NOT NULL REFERENCES libraries (fp_db_id) ON DELETE CASCADE,
    primary_key TEXT NOT NULL,
    file_id     TEXT NOT NULL,
    store_time  TEXT NOT NULL,
    input_file  TEXT,
    duration    REAL NOT NULL DEFAULT 0,
    UNIQUE (fp_db_id, primary_key)
);
CREATE INDEX IF NOT EXISTS items_by_file_id ON items (fp_db_id, file_id);
CREATE TABLE IF NOT EXISTS fingerprints (
    item_id  INTEGER NOT NULL REFERENCES items (item_id) ON DELETE CASCADE,
    modality TEXT NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (item_id, modality)
);
-- Fingerprints found unreadable or missing: kept out of matching (and named) until repaired or deleted.
CREATE TABLE IF NOT EXISTS damaged (
    item_id     INTEGER NOT NULL REFERENCES items (item_id) ON DELETE CASCADE,
    modality    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    PRIMARY KEY (item_id, modality)
);
"""
# Added after the first release: which modalities an item was stored with, so a deleted blob is noticed.
_ITEM_MODALITIES_COLUMN = "ALTER TABLE items ADD COLUMN modalities TEXT"


@dataclass(frozen=True, slots=True)
class DamagedItem:
    """A stored fingerprint that cannot be used: its item is left out of matching for that modality."""

    fp_db_id: str
    item_id: int
    primary_key: str
    input_file: str | None
    modality: str
    reason: str
    detected_at: str


def new_id() -> str:
    """32 lowercase hex characters, the shape of MPS `FpDBId` and `FileId`."""
    return uuid.uuid4().hex


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class LibraryInfo:
    fp_db_id: str
    name: str
    model_id: int
    description: str | None
    config: str | None
    status: str
    created_at: str
    is_default: bool
    item_count: int

    @property
    def kind(self) -> str:
        return kind_of(self.model_id)

    def to_fp_shot_db(self) -> FpShotDB:
        """The MPS wire model (ListFpShotDB reports `Status`; CreateFpShotDB's `State` is the same value)."""
        return FpShotDB(
            fp_db_id=self.fp_db_id,
            name=self.name,
            model_id=self.model_id,
            status=self.status,
            description=self.description,
            config=self.config,
        )


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """A stored file (MPS `FpShotFile`): `input_file` is whatever describes its source (a path, InputFile JSON)."""

    item_id: int
    fp_db_id: str
    primary_key: str
    file_id: str
    store_time: str
    input_file: str | None
    duration: float


@runtime_checkable
class PersistentIndex(Protocol):
    """An index that keeps itself in a directory (see the module docstring)."""

    def attach(self, directory: Path) -> set[int]:
        """Load what `directory` holds (an empty index), persist there from now on; the item ids loaded."""
        ...

    def save(self) -> None:
        """Write the changes since the last save (a no-op when nothing changed)."""
        ...


@dataclass(slots=True)
class _LiveIndex:
    index: ModalityIndex
    item_ids: set[int] = field(default_factory=set)
    damaged: set[int] = field(default_factory=set)  # quarantined: known, but not in `index`
    generation: int = -1


_ITEM_COLUMNS = "item_id, fp_db_id, primary_key, file_id, store_time, input_file, duration"
_LIBRARY_COLUMNS = (
    "l.fp_db_id, l.name, l.model_id, l.description, l.config, l.status, l.created_at, l.is_default, "
    "(SELECT COUNT(*) FROM items i WHERE i.fp_db_id = l.fp_db_id)"
)


def _item(row: tuple) -> ItemInfo:
    return ItemInfo(int(row[0]), row[1], row[2], row[3], row[4], row[5], float(row[6]))


def _library(row: tuple) -> LibraryInfo:
    return LibraryInfo(row[0], row[1], int(row[2]), row[3], row[4], row[5], row[6], bool(row[7]), int(row[8]))


class LibraryStore:
    """All libraries under one data directory."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DB_FILE
        # WAL + synchronous=NORMAL: durable across crashes of this process; foreign keys for the cascades.
        self._database = SqliteDatabase(
            self.path, foreign_keys=True, closed_error=lambda: EngineError("the library store is closed")
        )
        self._guard = threading.Lock()  # protects the dicts below, never held during real work
        self._library_locks: dict[str, threading.RLock] = {}
        self._indexes: dict[tuple[str, str], _LiveIndex] = {}
        db = self._database.connection()
        db.executescript(_SCHEMA)  # idempotent; executescript manages its own transaction
        if "modalities" not in {row[1] for row in db.execute("PRAGMA table_info(items)")}:
            with suppress(sqlite3.OperationalError):  # another process added it first
                db.execute(_ITEM_MODALITIES_COLUMN)
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))

    # ------------------------------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._database.close()
        with self._guard:
            self._indexes.clear()

    def __enter__(self) -> LibraryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def library_lock(self, fp_db_id: str) -> Iterator[None]:
        """Hold while searching and then storing, so two `save` jobs of one file cannot both store it."""
        with self._guard:
            lock = self._library_locks.setdefault(fp_db_id, threading.RLock())
        with lock:
            yield

    # ------------------------------------------------------------------------------------------ libraries

    def create_library(
        self,
        name: str,
        model_id: int,
        *,
        description: str | None = None,
        config: str | None = None,
        is_default: bool = False,
    ) -> LibraryInfo:
        if not name or not name.strip():
            raise EngineError("a library needs a name", code="InvalidParameter.EmptyValue")
        modality_names(model_id)  # validates the ModelId
        fp_db_id = new_id()
        with self._database.write() as db:
            db.execute(
                "INSERT INTO libraries (fp_db_id, name, model_id, description, config, created_at, is_default)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (fp_db_id, name.strip(), int(model_id), description, config, utc_now(), int(is_default)),
            )
        return self.get_library(fp_db_id)

    def get_library(self, fp_db_id: str) -> LibraryInfo:
        row = (
            self._database.connection()
            .execute(f"SELECT {_LIBRARY_COLUMNS} FROM libraries l WHERE l.fp_db_id = ?", (fp_db_id,))
            .fetchone()
        )
        if row is None:
            raise LibraryError(f"The DNA database does not exist: {fp_db_id}")
        return _library(row)

    def list_libraries(self, fp_db_ids: Iterable[str] | None = None) -> list[LibraryInfo]:
        rows = self._database.connection().execute(
            f"SELECT {_LIBRARY_COLUMNS} FROM libraries l ORDER BY l.created_at, l.rowid"
        )
        libraries = [_library(row) for row in rows]
        if fp_db_ids is not None:
            wanted = set(fp_db_ids)
            libraries = [lib for lib in libraries if lib.fp_db_id in wanted]
        return libraries

    def default_library(self, model_id: int) -> LibraryInfo:
        """The library a job without `FpDBId` uses ("omitted ⇒ default library"), created on first use."""
        modality_names(model_id)
        with self._database.write() as db:
            row = db.execute(
                "SELECT fp_db_id FROM libraries WHERE is_default = 1 AND model_id = ? ORDER BY rowid LIMIT 1",
                (int(model_id),),
            ).fetchone()
            if row is None:
                fp_db_id = new_id()
                db.execute(
                    "INSERT INTO libraries (fp_db_id, name, model_id, description, created_at, is_default)"
                    " VALUES (?, ?, ?, ?, ?, 1)",
                    (
                        fp_db_id,
                        f"default-{kind_of(model_id)}",
                        int(model_id),
                        "used by jobs that name no FpDBId",
                        utc_now(),
                    ),
                )
            else:
                fp_db_id = row[0]
        return self.get_library(fp_db_id)

    def delete_library(self, fp_db_id: str) -> None:
        """MPS `SubmitFpDBDeleteJob` with `DelType=Delete`: the library and everything in it."""
        with self.library_lock(fp_db_id), self._database.write() as db:
            if db.execute("DELETE FROM libraries WHERE fp_db_id = ?", (fp_db_id,)).rowcount == 0:
                raise LibraryError(f"The DNA database does not exist: {fp_db_id}")
            self._drop_indexes(fp_db_id)

    def purge_library(self, fp_db_id: str) -> int:
        """MPS `DelType=Purge`: empty the library, keep it. Returns how many items went."""
        with self.library_lock(fp_db_id), self._database.write() as db:
            self._require(db, fp_db_id)
            removed = db.execute("DELETE FROM items WHERE fp_db_id = ?", (fp_db_id,)).rowcount
            db.execute("UPDATE libraries SET generation = generation + 1 WHERE fp_db_id = ?", (fp_db_id,))
            self._drop_indexes(fp_db_id)
        return removed

    def _require(self, db: sqlite3.Connection, fp_db_id: str) -> tuple[int, int]:
        row = db.execute("SELECT model_id, generation FROM libraries WHERE fp_db_id = ?", (fp_db_id,)).fetchone()
        if row is None:
            raise LibraryError(f"The DNA database does not exist: {fp_db_id}")
        return int(row[0]), int(row[1])

    def _drop_indexes(self, fp_db_id: str) -> None:
        """Forget the library's indexes, in memory and on disk (the next search rebuilds them from the blobs)."""
        with self._guard:
            for key in [key for key in self._indexes if key[0] == fp_db_id]:
                del self._indexes[key]
        shutil.rmtree(self.data_dir / INDEX_DIR / fp_db_id, ignore_errors=True)

    def index_dir(self, fp_db_id: str, modality: str) -> Path:
        """Where a persistent index of the library's `modality` lives."""
        return self.data_dir / INDEX_DIR / fp_db_id / modality

    # ------------------------------------------------------------------------------------------ items

    def add_item(
        self,
        fp_db_id: str,
        primary_key: str,
        fingerprints: Mapping[str, Fingerprint | None],
        *,
        input_file: str | None = None,
        duration: float | None = None,
    ) -> ItemInfo:
        """Store a file's fingerprints under `primary_key`; an existing key is replaced and keeps its FileId.

        Each fingerprint is kept in its modality's stored form (`Modality.stored_form`): a video keeps one hash a
        frame, not its query crop windows.

        `duration` defaults to that of the library's primary modality (seconds; plain text: characters).
        """
        if not primary_key:
            raise EngineError("PrimaryKey must not be empty", code="InvalidParameter.EmptyValue")
        # The blob and the live index get the same reduced form, so a rebuilt index equals the live one.
        fingerprints = {
            name: None if fp is None else get_modality(name).stored_form(fp) for name, fp in fingerprints.items()
        }
        with self.library_lock(fp_db_id):
            with self._database.write() as db:
                model_id, generation = self._require(db, fp_db_id)
                allowed = modality_names(model_id)
                stray = sorted(set(fingerprints) - set(allowed))
                if stray:
                    raise EngineError(
                        f"library {fp_db_id} ({kind_of(model_id)}) holds {', '.join(allowed)}, not {', '.join(stray)}",
                        code="InvalidParameter",
                    )
                if duration is None:
                    present = [fingerprints[n] for n in allowed if fingerprints.get(n) is not None]
                    duration = float(present[0].duration) if present else 0.0  # type: ignore[union-attr]
                old = db.execute(
                    "SELECT item_id, file_id FROM items WHERE fp_db_id = ? AND primary_key = ?",
                    (fp_db_id, primary_key),
                ).fetchone()
                file_id = old[1] if old else new_id()
                if old:
                    db.execute("DELETE FROM items WHERE item_id = ?", (old[0],))
                stored_names = ",".join(name for name, fp in fingerprints.items() if fp is not None)
                cursor = db.execute(
                    "INSERT INTO items (fp_db_id, primary_key, file_id, store_time, input_file, duration, modalities)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (fp_db_id, primary_key, file_id, utc_now(), input_file, float(duration), stored_names),
                )
                item_id = int(cursor.lastrowid or 0)
                db.executemany(
                    "INSERT INTO fingerprints (item_id, modality, data) VALUES (?, ?, ?)",
                    [(item_id, name, fp.to_bytes()) for name, fp in fingerprints.items() if fp is not None],
                )
                db.execute("UPDATE libraries SET generation = ? WHERE fp_db_id = ?", (generation + 1, fp_db_id))
                row = db.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE item_id = ?", (item_id,)).fetchone()
            # Keep the live indexes current, unless someone else wrote since they were synced (then they resync).
            for name in allowed:
                live = self._live_if_loaded(fp_db_id, name)
                if live is None or live.generation != generation:
                    continue
                if old and int(old[0]) in live.item_ids:  # a quarantined item was never in the index
                    live.index.remove(int(old[0]))
                    live.item_ids.discard(int(old[0]))
                if old:
                    live.damaged.discard(int(old[0]))
                fingerprint = fingerprints.get(name)
                if fingerprint is not None:
                    live.index.add(item_id, fingerprint)
                    live.item_ids.add(item_id)
                live.generation = generation + 1
        return _item(row)

    def get_item(self, fp_db_id: str, primary_key: str) -> ItemInfo | None:
        row = (
            self._database.connection()
            .execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE fp_db_id = ? AND primary_key = ?", (fp_db_id, primary_key)
            )
            .fetchone()
        )
        return _item(row) if row else None

    def list_items(self, fp_db_id: str, *, limit: int | None = None, after_item_id: int = 0) -> list[ItemInfo]:
        """Items in store order; page with `limit` and the last `item_id` seen (MPS `NextPageToken`)."""
        with self._database.read() as db:
            self._require(db, fp_db_id)
            rows = db.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE fp_db_id = ? AND item_id > ? ORDER BY item_id LIMIT ?",
                (fp_db_id, after_item_id, -1 if limit is None else int(limit)),
            ).fetchall()
        return [_item(row) for row in rows]

    def delete_items(
        self, fp_db_id: str, *, primary_keys: Iterable[str] = (), file_ids: Iterable[str] = ()
    ) -> list[ItemInfo]:
        """MPS `SubmitFpFileDeleteJob`: remove items by PrimaryKey and/or FileId. Returns what was removed."""
        keys, files = list(primary_keys), list(file_ids)
        with self.library_lock(fp_db_id):
            with self._database.write() as db:
                model_id, generation = self._require(db, fp_db_id)
                rows = db.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM items WHERE fp_db_id = ? AND"
                    f" (primary_key IN ({','.join('?' * len(keys))}) OR file_id IN ({','.join('?' * len(files))}))",
                    (fp_db_id, *keys, *files),
                ).fetchall()
                removed = [_item(row) for row in rows]
                db.executemany("DELETE FROM items WHERE item_id = ?", [(item.item_id,) for item in removed])
                if removed:
                    db.execute("UPDATE libraries SET generation = ? WHERE fp_db_id = ?", (generation + 1, fp_db_id))
            if removed:
                for name in modality_names(model_id):
                    live = self._live_if_loaded(fp_db_id, name)
                    if live is None or live.generation != generation:
                        continue
                    for item in removed:
                        if item.item_id in live.item_ids:
                            live.index.remove(item.item_id)
                        live.item_ids.discard(item.item_id)
                        live.damaged.discard(item.item_id)
                    live.generation = generation + 1
        return removed

    def load_fingerprint(self, item_id: int, modality: str) -> Fingerprint | None:
        row = (
            self._database.connection()
            .execute("SELECT data FROM fingerprints WHERE item_id = ? AND modality = ?", (item_id, modality))
            .fetchone()
        )
        return get_modality(modality).load_fingerprint(bytes(row[0])) if row else None

    # ------------------------------------------------------------------------------------------ search

    def _live_if_loaded(self, fp_db_id: str, modality: str) -> _LiveIndex | None:
        with self._guard:
            return self._indexes.get((fp_db_id, modality))

    def _synced_index(self, fp_db_id: str, modality: str) -> ModalityIndex:
        """The library's in-memory index for `modality`, built on first use, caught up if the DB moved on.

        Call with the library lock held.
        """
        with self._database.read() as db:
            model_id, generation = self._require(db, fp_db_id)
            if modality not in modality_names(model_id):
                raise EngineError(
                    f"library {fp_db_id} ({kind_of(model_id)}) has no {modality} fingerprints",
                    code="InvalidParameter",
                )
            live = self._live_if_loaded(fp_db_id, modality)
            if live is not None and live.generation == generation:
                return live.index
            if live is None:
                live = _LiveIndex(get_modality(modality).new_index())
                if isinstance(live.index, PersistentIndex):
                    # Loaded as it was last saved; the catch-up below adds and drops what changed since.
                    live.item_ids = live.index.attach(self.index_dir(fp_db_id, modality))
            ids = {
                int(row[0])
                for row in db.execute(
                    "SELECT f.item_id FROM fingerprints f JOIN items i ON i.item_id = f.item_id"
                    " WHERE i.fp_db_id = ? AND f.modality = ?",
                    (fp_db_id, modality),
                )
            }
            for gone in live.item_ids - ids:
                live.index.remove(gone)
            live.damaged &= ids
            missing = sorted(ids - live.item_ids - live.damaged)
            loader = get_modality(modality)
            found: list[tuple[int, str]] = []  # (item id, reason) of blobs that do not load
            for start in range(0, len(missing), 500):  # SQLite caps bound parameters; also bounds memory
                chunk = missing[start : start + 500]
                rows = db.execute(
                    f"SELECT item_id, data FROM fingerprints WHERE modality = ?"
                    f" AND item_id IN ({','.join('?' * len(chunk))})",
                    (modality, *chunk),
                )
                for item_id, data in rows:
                    try:
                        fingerprint = loader.load_fingerprint(bytes(data))
                    except Exception as exc:  # any decoding failure of stored bytes is damage, not a job error
                        found.append((int(item_id), f"unreadable {modality} fingerprint: {exc}"))
                        continue
                    live.index.add(int(item_id), fingerprint)
            lost = self._lost_blobs(db, fp_db_id, modality)
            found.extend((item_id, f"{modality} fingerprint blob is missing") for item_id in lost - live.damaged)
            live.damaged |= {item_id for item_id, _ in found}
            live.item_ids = ids - live.damaged
            live.generation = generation
        if found:
            self._quarantine(fp_db_id, modality, found)
        if isinstance(live.index, PersistentIndex):
            live.index.save()
        with self._guard:
            self._indexes[(fp_db_id, modality)] = live
        return live.index

    @staticmethod
    def _lost_blobs(db: sqlite3.Connection, fp_db_id: str, modality: str) -> set[int]:
        """Items stored with a `modality` fingerprint whose blob row is gone."""
        rows = db.execute(
            "SELECT i.item_id FROM items i WHERE i.fp_db_id = ? AND i.modalities IS NOT NULL"
            " AND (',' || i.modalities || ',') LIKE ('%,' || ? || ',%')"
            " AND NOT EXISTS (SELECT 1 FROM fingerprints f WHERE f.item_id = i.item_id AND f.modality = ?)",
            (fp_db_id, modality, modality),
        )
        return {int(row[0]) for row in rows}

    def _quarantine(self, fp_db_id: str, modality: str, found: list[tuple[int, str]]) -> None:
        """Record damaged fingerprints (the items stay listed, but out of matching) and name them in the log."""
        now = utc_now()
        with self._database.write() as db:
            for item_id, reason in found:
                row = db.execute("SELECT primary_key FROM items WHERE item_id = ?", (item_id,)).fetchone()
                if row is None:
                    continue
                log.error(
                    "library %s: item %s (PrimaryKey %r) quarantined from %s matching: %s",
                    fp_db_id,
                    item_id,
                    row[0],
                    modality,
                    reason,
                )
                db.execute(
                    "INSERT OR REPLACE INTO damaged (item_id, modality, reason, detected_at) VALUES (?, ?, ?, ?)",
                    (item_id, modality, reason, now),
                )

    def damaged_items(self, fp_db_id: str | None = None) -> list[DamagedItem]:
        """Fingerprints found damaged (while loading a library for search, or by `check_library`)."""
        rows = self._database.connection().execute(
            "SELECT i.fp_db_id, d.item_id, i.primary_key, i.input_file, d.modality, d.reason, d.detected_at"
            " FROM damaged d JOIN items i ON i.item_id = d.item_id"
            " WHERE (? IS NULL OR i.fp_db_id = ?) ORDER BY d.item_id, d.modality",
            (fp_db_id, fp_db_id),
        )
        return [DamagedItem(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def check_library(self, fp_db_id: str) -> list[DamagedItem]:
        """Load every fingerprint of the library (as a search would) and return what is damaged."""
        library = self.get_library(fp_db_id)
        with self.library_lock(fp_db_id):
            self._drop_indexes(fp_db_id)  # a fresh load checks every blob, not only the new ones
            for modality in modality_names(library.model_id):
                self._synced_index(fp_db_id, modality)
        return self.damaged_items(fp_db_id)

    def search(
        self, fp_db_id: str, modality: str, fingerprint: Fingerprint, *, max_items: int = 20
    ) -> list[tuple[ItemInfo, ItemMatch]]:
        """Items of the library that `fingerprint` copies, best first, with their aligned segments."""
        with self.library_lock(fp_db_id):
            index = self._synced_index(fp_db_id, modality)
            matches = index.search(fingerprint, max_items=max_items)
            if isinstance(index, PersistentIndex):
                index.save()  # what this process stored since the last search (the search made it a block)
        if not matches:
            return []
        ids = [m.item_id for m in matches]
        rows = (
            self._database.connection()
            .execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE item_id IN ({','.join('?' * len(ids))})", ids)
            .fetchall()
        )
        items = {int(row[0]): _item(row) for row in rows}
        # An item deleted by another process after the sync has no row any more: drop its match.
        return [(items[m.item_id], m) for m in matches if m.item_id in items]

    def index_memory_bytes(self) -> int:
        with self._guard:
            return sum(live.index.memory_bytes() for live in self._indexes.values())
