"""The video index on disk: saved blocks memory-mapped back answer exactly as the live index and the oracle, dead
items and replacements survive, a damaged directory is ignored (rebuilt from the blobs), and a library store
restarted on a persisted index loads it instead of rebuilding it."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_video_index import random_fingerprint
from video_support import LIBRARY_SEEDS, Library, MakeQuery

from engine.library import LibraryStore, PersistentIndex
from engine.synth.video import Crop, HFlip, Reencode
from engine.video import VideoFingerprint, VideoIndex, VideoModality
from engine.video.index import MANIFEST
from shared.contracts.modalities import MODEL_BY_KIND

VIDEO_MODEL = MODEL_BY_KIND["video"]


def answers(index: VideoIndex, queries: list[VideoFingerprint]) -> list[list[tuple]]:
    return [[(m.item_id, m.segments) for m in index.search(q)] for q in queries]


@pytest.fixture(scope="module")
def queries(make_query: MakeQuery) -> list[VideoFingerprint]:
    ops = [[], [HFlip()], [Crop(0.15, 0.15)], [Reencode()]]
    pairs = enumerate(zip(LIBRARY_SEEDS, ops, strict=True))
    return [make_query(f"persist_{i}", item, 2.5 + 4 * i, 8.0, op) for i, (item, op) in pairs]


def test_saved_index_loads_mapped_and_answers_like_the_live_one(
    tmp_path: Path, modality: VideoModality, library: Library, queries: list[VideoFingerprint]
) -> None:
    rng = np.random.default_rng(7)
    noise = [(5000 + i, random_fingerprint(rng, 300)) for i in range(20)]
    live = modality.new_index()
    assert isinstance(live, PersistentIndex)
    assert live.attach(tmp_path) == set()
    live.add_many(noise)
    first, second, *rest = LIBRARY_SEEDS
    for seed in rest:
        live.add(seed, library.fingerprints[seed])
    live.save()  # a second block
    live.remove(5003)
    live.add(first, library.fingerprints[first])
    live.add(second, library.fingerprints[first])  # replaced below: dead in one block, alive in a later one
    live.save()
    live.add(second, library.fingerprints[second])
    live.save()
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert len(manifest["blocks"]) >= 2 and any(5003 in b["dead"] for b in manifest["blocks"])

    loaded = modality.new_index()
    held = loaded.attach(tmp_path)
    assert held == {i for i, _ in noise} - {5003} | set(LIBRARY_SEEDS)
    assert len(loaded) == len(live)
    block = loaded._blocks[0]
    assert isinstance(block.codes, np.memmap) and isinstance(block.order_lo, np.memmap)  # mapped, not read in
    oracle = modality.reference_index()
    for item_id, fp in [*noise, *library.fingerprints.items()]:
        if item_id != 5003:
            oracle.add(item_id, fp)
    got = answers(loaded, queries)
    assert got == answers(live, queries)
    assert [[m[0] for m in row][:1] for row in got] == [[seed] for seed in LIBRARY_SEEDS]
    assert [[m[0] for m in row] for row in got] == [[m.item_id for m in oracle.search(q)] for q in queries]
    assert loaded.search(noise[3][1]) == [] and loaded.search(noise[4][1])[0].item_id == noise[4][0]


def test_long_keys_persist(tmp_path: Path, library: Library, queries: list[VideoFingerprint]) -> None:
    """A block with longer keys (a large library's) is saved with its wider bucket offsets and mapped back."""
    live = VideoIndex(key_bits=18)
    live.attach(tmp_path)
    live.add_many(library.fingerprints.items())
    live.save()
    loaded = VideoIndex()  # the key length is the block's own, whatever the loading index would choose
    assert loaded.attach(tmp_path) == set(LIBRARY_SEEDS)
    block = loaded._blocks[0]
    assert block.key_bits == 18 and block.starts.shape == (4, 2**18 + 1) and isinstance(block.starts, np.memmap)
    assert answers(loaded, queries) == answers(live, queries)
    assert [[m[0] for m in row][:1] for row in answers(loaded, queries)] == [[seed] for seed in LIBRARY_SEEDS]


def test_compaction_rewrites_blocks_and_deletes_the_old_ones(tmp_path: Path, modality: VideoModality) -> None:
    rng = np.random.default_rng(8)
    index = modality.new_index()
    index.attach(tmp_path)
    items = [(7000 + i, random_fingerprint(rng, 60)) for i in range(12)]
    for item_id, fp in items:
        index.add(item_id, fp)
        index.save()  # one block a save, merged when there are too many
    on_disk = {p.name for p in tmp_path.iterdir() if p.is_dir()}
    assert on_disk == {e["name"] for e in json.loads((tmp_path / MANIFEST).read_text())["blocks"]}
    assert len(on_disk) <= 7
    for item_id, _ in items[:8]:
        index.remove(item_id)  # most of a block dead: it is rewritten without them
    index.save()
    loaded = modality.new_index()
    assert loaded.attach(tmp_path) == {i for i, _ in items[8:]}
    assert all(b.dead_frames <= b.frames // 3 for b in loaded._blocks)
    assert loaded.search(items[9][1])[0].item_id == items[9][0]
    assert loaded.search(items[2][1]) == []


def test_a_block_deleted_by_another_saver_is_written_again(tmp_path: Path, modality: VideoModality) -> None:
    rng = np.random.default_rng(9)
    index = modality.new_index()
    index.attach(tmp_path)
    fp = random_fingerprint(rng, 60)
    index.add(1, fp)
    index.save()
    name = index._blocks[0].name
    assert name is not None
    shutil.rmtree(tmp_path / name)  # what another process's save does to a block its manifest does not name
    index.add(2, random_fingerprint(rng, 60))
    index.save()
    loaded = modality.new_index()
    assert loaded.attach(tmp_path) == {1, 2} and loaded.search(fp)[0].item_id == 1


@pytest.mark.parametrize("damage", ["manifest", "format", "block", "truncated", "offsets"])
def test_a_damaged_directory_is_ignored(
    tmp_path: Path, modality: VideoModality, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    index = modality.new_index()
    index.attach(tmp_path)
    index.add(1, random_fingerprint(np.random.default_rng(1), 60))
    index.save()
    block = tmp_path / str(index._blocks[0].name)
    if damage == "manifest":
        (tmp_path / MANIFEST).write_text("{not json")
    elif damage == "format":
        (tmp_path / MANIFEST).write_text(json.dumps({"format": 99, "blocks": []}))
    elif damage == "block":
        shutil.rmtree(block)
    elif damage == "offsets":  # bucket offsets of no key length
        np.save(block / "starts.npy", np.zeros((4, 1000), dtype=np.int32))
    else:
        data = (block / "order_lo.npy").read_bytes()
        (block / "order_lo.npy").write_bytes(data[: len(data) // 2])
    loaded = modality.new_index()
    with caplog.at_level(logging.WARNING):
        assert loaded.attach(tmp_path) == set()
    assert len(loaded) == 0 and "not loaded" in caplog.text


def test_a_restarted_store_maps_the_saved_index_instead_of_rebuilding(
    tmp_path: Path, library: Library, queries: list[VideoFingerprint], monkeypatch: pytest.MonkeyPatch
) -> None:
    with LibraryStore(tmp_path) as store:
        lib = store.create_library("films", VIDEO_MODEL)
        for seed in LIBRARY_SEEDS:
            store.add_item(lib.fp_db_id, f"film-{seed}", {"video": library.fingerprints[seed]})
        live = [[(i.primary_key, m.segments) for i, m in store.search(lib.fp_db_id, "video", q)] for q in queries]
        store.delete_items(lib.fp_db_id, primary_keys=[f"film-{LIBRARY_SEEDS[1]}"])
        store.search(lib.fp_db_id, "video", queries[0])  # saves the deletion
        # Stored after the last save: the restarted store finds it missing from the index and adds it.
        store.add_item(lib.fp_db_id, f"film-{LIBRARY_SEEDS[1]}", {"video": library.fingerprints[LIBRARY_SEEDS[1]]})
        assert (store.index_dir(lib.fp_db_id, "video") / MANIFEST).exists()

    loads: list[int] = []
    real_load = VideoModality.load_fingerprint

    def counting_load(self: VideoModality, data: bytes) -> VideoFingerprint:
        loads.append(1)
        return real_load(self, data)

    monkeypatch.setattr(VideoModality, "load_fingerprint", counting_load)
    with LibraryStore(tmp_path) as store:
        again = [[(i.primary_key, m.segments) for i, m in store.search(lib.fp_db_id, "video", q)] for q in queries]
        assert len(loads) == 1  # only the item stored after the last save was read from its blob
        assert again == live
        store.purge_library(lib.fp_db_id)
        assert not store.index_dir(lib.fp_db_id, "video").exists()
        assert store.search(lib.fp_db_id, "video", queries[0]) == []
