"""Issue 10 item 12: a damaged or missing fingerprint blob is named and quarantined; the library keeps working."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from engine.library import DB_FILE, LibraryStore
from engine.synth import text as synth
from engine.text import TextFingerprint
from shared.contracts.mps import MODEL_TEXT

DOCS = [synth.document(seed, 3000, "en") for seed in range(40, 44)]


def _hits(store: LibraryStore, fp_db_id: str, query: str) -> list[str]:
    return [item.primary_key for item, _ in store.search(fp_db_id, "text", TextFingerprint.from_text(query))]


def _library(data_dir: Path) -> tuple[str, list[int]]:
    with LibraryStore(data_dir) as store:
        lib = store.create_library("books", MODEL_TEXT).fp_db_id
        ids = [
            store.add_item(lib, f"doc{i}", {"text": TextFingerprint.from_text(d)}).item_id for i, d in enumerate(DOCS)
        ]
    return lib, ids


def _sql(data_dir: Path, statement: str, *args: object) -> None:
    with sqlite3.connect(data_dir / DB_FILE) as db:
        db.execute(statement, args)


def test_a_corrupt_blob_is_quarantined_and_named_and_the_rest_still_match(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lib, ids = _library(tmp_path)
    _sql(tmp_path, "UPDATE fingerprints SET data = ? WHERE item_id = ?", b"garbage, not a fingerprint", ids[1])
    _sql(tmp_path, "DELETE FROM fingerprints WHERE item_id = ?", ids[2])
    with LibraryStore(tmp_path) as store, caplog.at_level(logging.ERROR, logger="engine.library"):
        assert _hits(store, lib, DOCS[0][200:1100]) == ["doc0"]  # no "bad magic" for the whole library
        assert _hits(store, lib, DOCS[3][200:1100]) == ["doc3"]
        assert _hits(store, lib, DOCS[1][200:1100]) == []  # quarantined, not matched
        damaged = {(d.primary_key, d.modality): d.reason for d in store.damaged_items(lib)}
        assert set(damaged) == {("doc1", "text"), ("doc2", "text")}
        assert "unreadable" in damaged["doc1", "text"] and "missing" in damaged["doc2", "text"]
        assert "'doc1'" in caplog.text and "'doc2'" in caplog.text
        # Storing the item again (a repair) puts it back into matching and clears the record.
        store.add_item(lib, "doc1", {"text": TextFingerprint.from_text(DOCS[1])})
        assert _hits(store, lib, DOCS[1][200:1100]) == ["doc1"]
        assert [d.primary_key for d in store.damaged_items(lib)] == ["doc2"]
        store.delete_items(lib, primary_keys=["doc2"])
        assert store.damaged_items(lib) == []
        assert store.check_library(lib) == []


def test_check_library_finds_damage_without_a_search(tmp_path: Path) -> None:
    lib, ids = _library(tmp_path)
    _sql(tmp_path, "UPDATE fingerprints SET data = substr(data, 1, 10) WHERE item_id = ?", ids[3])
    with LibraryStore(tmp_path) as store:
        assert [(d.primary_key, d.item_id) for d in store.check_library(lib)] == [("doc3", ids[3])]
        assert _hits(store, lib, DOCS[0][200:1100]) == ["doc0"]


def test_items_stored_before_modalities_were_recorded_are_not_flagged(tmp_path: Path) -> None:
    lib, _ = _library(tmp_path)
    _sql(tmp_path, "UPDATE items SET modalities = NULL")
    with LibraryStore(tmp_path) as store:
        assert store.check_library(lib) == []
