"""Library persistence: SQLite metadata + fingerprint blobs, in-memory indexes rebuilt and kept in sync."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest

from engine.errors import EngineError, LibraryError
from engine.library import LibraryStore
from engine.synth import text as synth
from engine.text import TextFingerprint
from shared.contracts.mps import MODEL_AUDIO, MODEL_TEXT, MODEL_VIDEO

DOCS = [synth.document(seed, 3000, "en") for seed in range(4)]


def _fp(i: int) -> TextFingerprint:
    return TextFingerprint.from_text(DOCS[i])


def _hits(store: LibraryStore, fp_db_id: str, query: str) -> list[str]:
    return [item.primary_key for item, _ in store.search(fp_db_id, "text", TextFingerprint.from_text(query))]


def test_libraries_and_items_survive_a_reopen(tmp_path: Path) -> None:
    with LibraryStore(tmp_path) as store:
        lib = store.create_library("books", MODEL_TEXT, description="d", config='{"a":1}')
        assert re.fullmatch(r"[0-9a-f]{32}", lib.fp_db_id)
        added = [store.add_item(lib.fp_db_id, f"doc{i}", {"text": _fp(i)}, input_file=f"/in/{i}.txt") for i in range(3)]
        assert _hits(store, lib.fp_db_id, DOCS[1][100:900]) == ["doc1"]

    with LibraryStore(tmp_path) as store:  # a new process: the index is rebuilt from the blobs
        [again] = store.list_libraries()
        expected = ("books", MODEL_TEXT, "d", '{"a":1}', 3)
        assert (again.name, again.model_id, again.description, again.config, again.item_count) == expected
        assert again.to_fp_shot_db().to_wire()["FpDBId"] == lib.fp_db_id
        items = store.list_items(lib.fp_db_id)
        assert items == added
        assert [i.primary_key for i in items] == ["doc0", "doc1", "doc2"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", items[0].store_time)
        assert items[0].input_file == "/in/0.txt"
        assert items[0].duration == len(DOCS[0])
        assert _hits(store, lib.fp_db_id, DOCS[2][1000:1800]) == ["doc2"]
        assert store.index_memory_bytes() > 0
        assert store.load_fingerprint(items[0].item_id, "text").text == DOCS[0]  # type: ignore[union-attr]


def test_delete_items_by_key_and_file_id(tmp_path: Path) -> None:
    with LibraryStore(tmp_path) as store:
        lib = store.create_library("t", MODEL_TEXT).fp_db_id
        items = [store.add_item(lib, f"k{i}", {"text": _fp(i)}) for i in range(3)]
        assert _hits(store, lib, DOCS[0][:800]) == ["k0"]
        removed = store.delete_items(lib, primary_keys=["k0", "nope"], file_ids=[items[2].file_id])
        assert sorted(i.primary_key for i in removed) == ["k0", "k2"]
        assert [i.primary_key for i in store.list_items(lib)] == ["k1"]
        assert _hits(store, lib, DOCS[0][:800]) == []
        assert _hits(store, lib, DOCS[2][:800]) == []
        assert store.delete_items(lib, primary_keys=["k0"]) == []


def test_re_adding_a_primary_key_replaces_it_and_keeps_the_file_id(tmp_path: Path) -> None:
    with LibraryStore(tmp_path) as store:
        lib = store.create_library("t", MODEL_TEXT).fp_db_id
        first = store.add_item(lib, "same", {"text": _fp(0)})
        assert _hits(store, lib, DOCS[0][:800]) == ["same"]
        second = store.add_item(lib, "same", {"text": _fp(1)})
        assert second.file_id == first.file_id
        assert second.item_id != first.item_id
        assert [i.primary_key for i in store.list_items(lib)] == ["same"]
        assert _hits(store, lib, DOCS[0][:800]) == []
        assert _hits(store, lib, DOCS[1][:800]) == ["same"]


def test_purge_delete_and_missing_libraries(tmp_path: Path) -> None:
    with LibraryStore(tmp_path) as store:
        lib = store.create_library("t", MODEL_TEXT).fp_db_id
        store.add_item(lib, "a", {"text": _fp(0)})
        assert _hits(store, lib, DOCS[0][:800]) == ["a"]
        assert store.purge_library(lib) == 1
        assert store.get_library(lib).item_count == 0
        assert _hits(store, lib, DOCS[0][:800]) == []
        store.delete_library(lib)
        assert store.list_libraries() == []
        for call in (
            lambda: store.get_library(lib),
            lambda: store.list_items(lib),
            lambda: store.add_item(lib, "a", {"text": _fp(0)}),
            lambda: store.delete_library(lib),
            lambda: store.search(lib, "text", _fp(0)),
        ):
            with pytest.raises(LibraryError) as caught:
                call()
            assert caught.value.code == "InvalidParameter.DBNotExist"


def test_default_library_per_kind_is_created_once(tmp_path: Path) -> None:
    with LibraryStore(tmp_path) as store:
        text = store.default_library(MODEL_TEXT)
        assert store.default_library(MODEL_TEXT) == text
        assert text.is_default and text.name == "default-text"
        video = store.default_library(MODEL_VIDEO)
        assert video.fp_db_id != text.fp_db_id
        assert {lib.model_id for lib in store.list_libraries()} == {MODEL_TEXT, MODEL_VIDEO}


def test_validation(tmp_path: Path) -> None:
    with LibraryStore(tmp_path) as store:
        with pytest.raises(EngineError, match="ModelId"):
            store.create_library("x", 14)
        with pytest.raises(EngineError, match="name"):
            store.create_library("  ", MODEL_TEXT)
        audio = store.create_library("sound", MODEL_AUDIO).fp_db_id
        with pytest.raises(EngineError, match="holds audio, not text"):
            store.add_item(audio, "a", {"text": _fp(0)})
        with pytest.raises(EngineError, match="no text fingerprints"):
            store.search(audio, "text", _fp(0))
        assert store.list_items(audio) == []


def test_a_second_process_writing_the_same_database_is_noticed(tmp_path: Path) -> None:
    with LibraryStore(tmp_path) as server, LibraryStore(tmp_path) as cli:
        lib = server.create_library("shared", MODEL_TEXT).fp_db_id
        server.add_item(lib, "a", {"text": _fp(0)})
        assert _hits(server, lib, DOCS[1][:800]) == []  # the server's index is now loaded
        cli.add_item(lib, "b", {"text": _fp(1)})
        assert _hits(server, lib, DOCS[1][:800]) == ["b"]
        cli.delete_items(lib, primary_keys=["a"])
        assert _hits(server, lib, DOCS[0][:800]) == []
        server.add_item(lib, "c", {"text": _fp(2)})  # the server's own write after the foreign ones
        assert _hits(cli, lib, DOCS[2][:800]) == ["c"]
        assert [i.primary_key for i in server.list_items(lib)] == ["b", "c"]


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    with LibraryStore(tmp_path) as store:
        lib = store.create_library("busy", MODEL_TEXT).fp_db_id
        store.add_item(lib, "seed", {"text": _fp(3)})
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                for n in range(4):
                    store.add_item(lib, f"w{worker}-{n}", {"text": _fp(worker)})
                    assert "seed" in _hits(store, lib, DOCS[3][:600])
            except BaseException as exc:  # surfaced below: a thread's failure must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert store.get_library(lib).item_count == 13
        assert sorted(_hits(store, lib, DOCS[1][:800])) == ["w1-0", "w1-1", "w1-2", "w1-3"]


def test_video_items_are_stored_in_their_reference_form(tmp_path: Path) -> None:
    """A stored video keeps one hash a frame (not every query crop window) and is still found, before and after
    the index is rebuilt from the blobs."""
    video_synth = pytest.importorskip("engine.synth.video")
    from engine.video import VideoModality

    modality = VideoModality()
    source = video_synth.make_video(tmp_path / "film.mp4", seed=5, seconds=12.0, size=(160, 120))
    clip = video_synth.transform_video(source, tmp_path / "clip.mp4", [video_synth.Crop(0.1, 0.1)], start=3.0,
                                       seconds=6.0)  # fmt: skip
    fp, query = modality.extract(source), modality.extract(clip)
    assert fp is not None and query is not None and fp.hashes.shape[1] > 1  # extracted: every crop window
    with LibraryStore(tmp_path / "data") as store:
        lib = store.create_library("films", MODEL_VIDEO).fp_db_id
        item = store.add_item(lib, "film", {"video": fp})
        [(found, live_match)] = store.search(lib, "video", query)
        assert found.primary_key == "film"
        with sqlite3.connect(store.path) as db:
            [(size,)] = db.execute("SELECT length(data) FROM fingerprints WHERE item_id = ?", (item.item_id,))
        assert size <= 10 * len(fp) + 64 < len(fp.to_bytes()) // 10
        kept = store.load_fingerprint(item.item_id, "video")
        assert kept is not None and kept.hashes.shape == (len(fp), 1)  # type: ignore[attr-defined]
    with LibraryStore(tmp_path / "data") as store:  # a new process: the index is rebuilt from the small blob
        [(found, rebuilt_match)] = store.search(lib, "video", query)
        assert found.primary_key == "film" and rebuilt_match.segments == live_match.segments
        seg = rebuilt_match.segments[0]
        assert seg.ref_start == pytest.approx(3.0, abs=1.0) and seg.ref_end == pytest.approx(9.0, abs=1.0)
