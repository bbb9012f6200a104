"""Index maintenance (add, remove, replace, bulk load, block merges) and fast-vs-oracle agreement at some scale."""

from __future__ import annotations

import numpy as np
import pytest
from video_support import LIBRARY_SEEDS, Library, MakeQuery

from engine.synth.video import Crop, HFlip, Reencode
from engine.video import VideoFingerprint, VideoIndex, VideoModality
from engine.video import index as video_index
from engine.video.index import BUCKET_FRAMES, CHUNK_BITS, MAX_KEY_BITS, _keys, key_bits_for


def random_fingerprint(rng: np.random.Generator, seconds: float) -> VideoFingerprint:
    n = int(seconds * 2)
    codes = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    return VideoFingerprint(np.arange(n, dtype=np.float32) / 2, codes[:, None], seconds)


@pytest.fixture(scope="module")
def clip_query(make_query: MakeQuery) -> tuple[int, VideoFingerprint]:
    item = LIBRARY_SEEDS[3]
    return item, make_query("index_probe", item, 9.4, 10.0, [Crop(0.1, 0.1), HFlip(), Reencode(80_000)])


def ids(index: VideoIndex, query: VideoFingerprint) -> list[int]:
    return [m.item_id for m in index.search(query)]


def test_empty_index_and_empty_query(modality: VideoModality, library: Library) -> None:
    index = modality.new_index()
    assert len(index) == 0 and index.search(library.fingerprints[LIBRARY_SEEDS[0]]) == []
    empty = VideoFingerprint(np.zeros(0, np.float32), np.zeros((0, 1), np.uint64), 3.0)
    assert library.fast.search(empty) == [] and library.reference.search(empty) == []


def test_add_remove_and_replace(modality: VideoModality, library: Library, clip_query: tuple[int, VideoFingerprint]
                                ) -> None:  # fmt: skip
    item, query = clip_query
    index = modality.new_index()
    for seed, fp in library.fingerprints.items():
        index.add(seed, fp)
    assert len(index) == len(LIBRARY_SEEDS)
    assert ids(index, query) == [item]
    index.remove(item)
    assert len(index) == len(LIBRARY_SEEDS) - 1
    assert ids(index, query) == []
    index.remove(item)  # removing twice is harmless
    index.add(item, library.fingerprints[item])
    assert ids(index, query) == [item]
    # Re-adding an id replaces its content: the old content is no longer found under it.
    index.add(item, library.fingerprints[LIBRARY_SEEDS[0]])
    assert len(index) == len(LIBRARY_SEEDS)
    assert ids(index, query) == []
    assert ids(index, library.fingerprints[LIBRARY_SEEDS[0]])[:2] == sorted([item, LIBRARY_SEEDS[0]])


Probe = tuple[int, VideoFingerprint]


def test_many_small_additions_merge_blocks_and_stay_correct(modality: VideoModality, library: Library,
                                                            clip_query: Probe) -> None:  # fmt: skip
    item, query = clip_query
    rng = np.random.default_rng(11)
    index = modality.new_index()
    for i in range(20):  # a search after every addition: each addition becomes its own block, then merges
        index.add(1000 + i, random_fingerprint(rng, 60))
        if i == 10:
            index.add(item, library.fingerprints[item])
        assert ids(index, query) == ([item] if i >= 10 else [])
    assert len(index._blocks) <= 7  # bounded: small blocks are merged
    for i in range(0, 20, 2):
        index.remove(1000 + i)
    index.remove(item)
    assert ids(index, query) == []
    index.add(item, library.fingerprints[item])
    assert ids(index, query) == [item]
    assert len(index) == 11


@pytest.mark.parametrize("key_bits", [None, 20])  # None: 16-bit keys (a small block); 20: a 1,000 h block's
def test_bulk_load_agrees_with_the_oracle(modality: VideoModality, library: Library, make_query: MakeQuery,
                                          key_bits: int | None) -> None:  # fmt: skip
    rng = np.random.default_rng(5)
    noise = [(5000 + i, random_fingerprint(rng, 300)) for i in range(60)]  # 5 hours of random frames
    fast, reference = VideoIndex(key_bits=key_bits), modality.reference_index()
    fast.add_many([*noise, *library.fingerprints.items()])
    for item_id, fp in [*noise, *library.fingerprints.items()]:
        reference.add(item_id, fp)
    assert len(fast) == len(reference) == 64
    assert fast._blocks[0].key_bits == (key_bits or CHUNK_BITS)
    frames = sum(len(fp) for _, fp in [*noise, *library.fingerprints.items()])
    # A stored frame costs its hash (8 B), time (4 B) and 4 table entries of 3 B; a block has 4 bucket offset
    # arrays of 2^key_bits int32 more, and an item a few dozen bytes.
    offsets = 4 * 4 * 2 ** (key_bits or CHUNK_BITS)
    assert 24 * frames + offsets <= fast.memory_bytes() <= 24 * frames + offsets + 200 * len(fast)
    queries = [make_query(f"bulk_{i}", item, 2.5 + 5 * i, 8.0, ops)
               for i, (item, ops) in enumerate(zip(LIBRARY_SEEDS, [[], [HFlip()], [Crop(0.15, 0.15)], [Reencode()]],
                                                   strict=True))]  # fmt: skip
    for item, query in zip(LIBRARY_SEEDS, queries, strict=True):
        got, want = fast.search(query), reference.search(query)
        assert [m.item_id for m in got] == [m.item_id for m in want] == [item]
        assert got[0].segments == want[0].segments


def test_key_length_grows_with_the_block() -> None:
    hour = 3600 * 2  # frames an hour at 2 frames/s
    bits = {hours: key_bits_for(hours * hour) for hours in (0, 1, 10, 50, 100, 1000, 10_000, 100_000)}
    assert bits[0] == bits[1] == bits[10] == bits[50] == CHUNK_BITS  # small libraries: 16-bit chunks, as before
    assert bits[100] == 17 and bits[1000] == 20 and bits[10_000] == bits[100_000] == MAX_KEY_BITS
    for hours in (100, 300, 1000, 3000):  # between the bounds a bucket holds (BUCKET_FRAMES / 2, BUCKET_FRAMES]
        frames = hours * hour
        assert BUCKET_FRAMES / 2 < frames / 2 ** key_bits_for(frames) <= BUCKET_FRAMES
    with pytest.raises(ValueError):
        VideoIndex(key_bits=MAX_KEY_BITS + 1)


def test_keys_are_the_chunks_at_16_bits_and_overlap_the_next_chunk_beyond() -> None:
    codes = np.array([0x0123_4567_89AB_CDEF], dtype=np.uint64)
    assert [int(_keys(codes, c, 16)[0]) for c in range(4)] == [0xCDEF, 0x89AB, 0x4567, 0x0123]
    assert [int(_keys(codes, c, 20)[0]) for c in range(4)] == [0xBCDEF, 0x789AB, 0x34567, 0xF0123]


def test_large_blocks_keep_frame_numbers_in_four_bytes(monkeypatch: pytest.MonkeyPatch, library: Library,
                                                        clip_query: Probe) -> None:  # fmt: skip
    """Beyond SMALL_BLOCK_FRAMES frames a table entry's high part is 16 bits: the same answers."""
    item, query = clip_query
    small = VideoIndex()
    small.add_many(library.fingerprints.items())
    monkeypatch.setattr(video_index, "SMALL_BLOCK_FRAMES", 100)
    large = VideoIndex()
    large.add_many(library.fingerprints.items())
    assert small._blocks[0].order_hi.dtype == np.uint8 and large._blocks[0].order_hi.dtype == np.uint16
    assert [(m.item_id, m.segments) for m in large.search(query)] == [(m.item_id, m.segments)
                                                                       for m in small.search(query)]  # fmt: skip
    assert ids(large, query) == [item]


def test_bulk_load_replaces_existing_ids(modality: VideoModality, library: Library,
                                         clip_query: tuple[int, VideoFingerprint]) -> None:  # fmt: skip
    item, query = clip_query
    index = modality.new_index()
    index.add(item, library.fingerprints[item])
    index.add_many([(item, random_fingerprint(np.random.default_rng(1), 30))])
    assert len(index) == 1 and ids(index, query) == []
