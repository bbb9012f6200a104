"""The audio index on disk: saved runs memory-mapped back answer exactly as the live index and the oracle (rarity
counts included), removals and replacements survive, merges replace runs and delete the old files, a damaged
directory is ignored (rebuilt from the blobs), and a library store restarted on a persisted index loads it instead
of rebuilding it."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_testlib import SR, AudioLibrary
from test_audio_index import _answer, _query_from, _random_item, _RawQuery

from engine.audio import AudioFingerprint, AudioIndex, AudioModality, ReferenceAudioIndex
from engine.audio.index import MANIFEST
from engine.audio.params import LIBRARY_FANOUT
from engine.library import LibraryStore, PersistentIndex
from engine.synth import audio as synth
from shared.contracts.modalities import MODEL_BY_KIND

AUDIO_MODEL = MODEL_BY_KIND["audio"]
Item = tuple[np.ndarray, np.ndarray, float]


def _small(**kw: int) -> AudioIndex:
    # Tiny thresholds: several runs, merges, dense and sorted-hash runs on a small library.
    return AudioIndex(csr_min=kw.get("csr_min", 20_000), pending_max=3_000, merge_max=60_000)


def _on_disk(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.is_dir()}


def _named(directory: Path) -> set[str]:
    listing = json.loads((directory / MANIFEST).read_text())
    return {r["name"] for r in listing["runs"]} | {listing["slots"]}


def _queries(items: dict[int, Item], ids: list[int], rng: np.random.Generator) -> list[_RawQuery]:
    out = []
    for item_id in ids:
        h, t, _ = items[item_id]
        out.append(_RawQuery(*_query_from(h, t, 200, 600, keep=0.5, rng=rng), 400 * 0.016))
    return out


def test_saved_index_loads_mapped_and_answers_like_the_live_one_and_the_oracle(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    items = {2000 + 5 * k: _random_item(rng) for k in range(60)}
    live, oracle = _small(), ReferenceAudioIndex()
    assert isinstance(live, PersistentIndex)
    assert live.attach(tmp_path) == set()
    ids = list(items)
    for k, (item_id, item) in enumerate(items.items()):
        live.add_landmarks(item_id, *item)
        oracle.add_landmarks(item_id, *item)
        if k % 20 == 19:
            live.save()  # several saves: runs written, merged, replaced
    for victim in ids[3:6]:
        live.remove(victim)
        oracle.remove(victim)
    replacement = _random_item(rng)
    live.add_landmarks(ids[7], *replacement)  # dead in an old run, alive in a new one
    oracle.add_landmarks(ids[7], *replacement)
    items[ids[7]] = replacement
    live.save()
    assert _on_disk(tmp_path) == _named(tmp_path)  # merged-away runs and old slot tables are gone
    assert live.n_runs >= 2 and all(isinstance(r.postings, np.memmap) for r in live._runs)  # mapped back

    loaded = _small()
    assert loaded.attach(tmp_path) == set(items) - set(ids[3:6])
    assert len(loaded) == len(live) == len(oracle)
    assert all(isinstance(r.postings, np.memmap) for r in loaded._runs)
    probe = np.concatenate([h for h, _, _ in items.values()])
    assert np.array_equal(loaded._counts(probe), live._counts(probe))
    assert np.array_equal(loaded._counts(probe), oracle._counts(probe))
    queries = _queries(items, [ids[0], ids[4], ids[7], ids[30], ids[59]], rng)
    got = [_answer(loaded.search(q)) for q in queries]
    assert got == [_answer(live.search(q)) for q in queries]
    assert got == [_answer(oracle.search(q)) for q in queries]
    assert [[m[0] for m in row] for row in got] == [[ids[0]], [], [ids[7]], [ids[30]], [ids[59]]]

    # The loaded index goes on: removals and additions are saved again, and compaction drops the dead postings.
    loaded.remove(ids[0])
    extra = _random_item(rng)
    loaded.add_landmarks(9999, *extra)
    loaded.compact()
    loaded.save()
    again = _small()
    assert again.attach(tmp_path) == set(items) - set(ids[3:6]) - {ids[0]} | {9999}
    gone = {*ids[3:6], ids[0]}
    assert again.n_postings == sum(x[0].size for k, x in items.items() if k not in gone) + extra[0].size
    assert again.search(queries[0]) == []
    assert [m.item_id for m in again.search(_queries({9999: extra}, [9999], rng)[0])] == [9999]


def test_save_without_changes_writes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    index = _small()
    index.attach(tmp_path)
    index.save()
    assert not (tmp_path / MANIFEST).exists()  # nothing held, nothing changed
    index.add_landmarks(1, *_random_item(rng))
    index.save()
    before = (tmp_path / MANIFEST).stat().st_mtime_ns, _on_disk(tmp_path)
    index.search(_RawQuery(*_random_item(rng)[:2], 30.0))
    index.save()
    assert ((tmp_path / MANIFEST).stat().st_mtime_ns, _on_disk(tmp_path)) == before


def test_postings_beyond_uint32_are_saved_and_loaded(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    index = AudioIndex()
    index.attach(tmp_path)
    h, t, _ = _random_item(rng)
    far = t.astype(np.int64) + (1 << 32)  # an item so long that the timeline outgrows 32-bit postings
    index.add_landmarks(1, *_random_item(rng))
    index.add_landmarks(2, h, far, float(far.max() * 0.016 + 1))
    index.save()
    loaded = AudioIndex()
    assert loaded.attach(tmp_path) == {1, 2}
    assert all(r.postings.dtype == np.uint64 for r in loaded._runs)
    query = _RawQuery(*_query_from(h, far, (1 << 32) + 300, (1 << 32) + 800, 0.6, rng), 8.0)
    assert [m.item_id for m in loaded.search(query)] == [2]


def test_a_run_deleted_by_another_saver_is_written_again(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    index = _small()
    index.attach(tmp_path)
    first = _random_item(rng)
    index.add_landmarks(1, *first)
    index.save()
    name = index._runs[0].name
    assert name is not None
    shutil.rmtree(tmp_path / name)  # what another process's save does to a run its manifest does not name
    index.add_landmarks(2, *_random_item(rng))
    index.save()
    loaded = _small()
    assert loaded.attach(tmp_path) == {1, 2}
    query = _RawQuery(*_query_from(first[0], first[1], 100, 600, 0.6, rng), 8.0)
    assert [m.item_id for m in loaded.search(query)] == [1]


@pytest.mark.parametrize("damage", ["manifest", "format", "fanout", "run", "truncated", "slots", "offsets"])
def test_a_damaged_directory_is_ignored(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(4)
    index = _small(csr_min=100)  # a dense run: its offsets table is on disk too
    index.attach(tmp_path)
    index.add_landmarks(1, *_random_item(rng))
    index.save()
    listing = json.loads((tmp_path / MANIFEST).read_text())
    run = tmp_path / listing["runs"][0]["name"]
    if damage == "manifest":
        (tmp_path / MANIFEST).write_text("{not json")
    elif damage == "format":
        (tmp_path / MANIFEST).write_text(json.dumps({**listing, "audio_format": 99}))
    elif damage == "fanout":  # saved when the index held other landmarks than an add makes now
        (tmp_path / MANIFEST).write_text(json.dumps({**listing, "library_fanout": LIBRARY_FANOUT + 2}))
    elif damage == "run":
        shutil.rmtree(run)
    elif damage == "truncated":
        data = (run / "postings.npy").read_bytes()
        (run / "postings.npy").write_bytes(data[: len(data) // 2])
    elif damage == "slots":
        (tmp_path / listing["slots"] / "alive.npy").unlink()
    else:
        np.save(run / "offsets.npy", np.zeros(10, np.uint32))
    loaded = _small()
    with caplog.at_level(logging.WARNING):
        assert loaded.attach(tmp_path) == set()
    assert len(loaded) == 0 and loaded.n_postings == 0 and "not loaded" in caplog.text
    loaded.add_landmarks(7, *_random_item(rng))  # rebuilt over it, and saved in its place
    loaded.save()
    assert _small().attach(tmp_path) == {7}


def test_a_restarted_store_maps_the_saved_audio_index_instead_of_rebuilding(
    tmp_path: Path, audio_library: AudioLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    fps = audio_library.fingerprints
    ids = sorted(fps)
    queries = [
        audio_library.query(f"persist_{i}", synth.excerpt(audio_library.audio[i], SR, 4.0, 6.0)) for i in ids[:3]
    ]
    with LibraryStore(tmp_path) as store:
        lib = store.create_library("songs", AUDIO_MODEL)
        for i in ids:
            store.add_item(lib.fp_db_id, f"song-{i}", {"audio": fps[i]})
        live = [[(i.primary_key, m.segments) for i, m in store.search(lib.fp_db_id, "audio", q)] for q in queries]
        store.delete_items(lib.fp_db_id, primary_keys=[f"song-{ids[1]}"])
        store.search(lib.fp_db_id, "audio", queries[0])  # saves the deletion
        # Stored after the last save: the restarted store finds it missing from the index and adds it.
        store.add_item(lib.fp_db_id, f"song-{ids[1]}", {"audio": fps[ids[1]]})
        assert (store.index_dir(lib.fp_db_id, "audio") / MANIFEST).exists()

    loads: list[int] = []
    real_load = AudioModality.load_fingerprint

    def counting_load(self: AudioModality, data: bytes) -> AudioFingerprint:
        loads.append(1)
        return real_load(self, data)

    monkeypatch.setattr(AudioModality, "load_fingerprint", counting_load)
    with LibraryStore(tmp_path) as store:
        again = [[(i.primary_key, m.segments) for i, m in store.search(lib.fp_db_id, "audio", q)] for q in queries]
        assert len(loads) == 1  # only the item stored after the last save was read from its blob
        assert again == live
        assert [row[0][0] for row in again] == [f"song-{i}" for i in ids[:3]]
        store.purge_library(lib.fp_db_id)
        assert not store.index_dir(lib.fp_db_id, "audio").exists()
