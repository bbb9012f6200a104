"""Quality bars: a 10 s clip of a library video, under each transform infringers use, is found with the right
item and segment bounds within +-1 s on both axes; unrelated videos match nothing; both indexes agree."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from video_support import LIBRARY_SEEDS, Library, MakeQuery

from engine.core import ItemMatch
from engine.synth.video import (
    Brightness,
    ChangeFps,
    Contrast,
    Crop,
    Embed,
    Gamma,
    Grayscale,
    HFlip,
    Letterbox,
    LogoOverlay,
    Op,
    PictureInPicture,
    Pillarbox,
    Reencode,
    Saturation,
    Scale,
    Speed,
    TextOverlay,
)
from engine.video import VideoFingerprint
from engine.video.align import AlignParams

CLIP = 10.0
TOLERANCE = 1.0


@dataclass(frozen=True)
class Case:
    name: str
    ops: list[Op] = field(default_factory=list)
    input_offset: float = 0.0  # where the copied content starts in the query
    speed: float = 1.0


CASES = [
    Case("identity"),
    Case("reencode_low_bitrate", [Reencode(40_000)]),
    Case("scale_down", [Scale(128, 96)]),
    Case("scale_up_other_aspect", [Scale(400, 224)]),
    Case("crop_20", [Crop(0.2, 0.2)]),
    Case("crop_to_4_3", [Crop(0.25, 0.0)]),
    Case("crop_right_side", [Crop(0.1, 0.0, anchor_x=0.0)]),
    Case("crop_bottom", [Crop(0.0, 0.1, anchor_y=0.0)]),
    Case("letterbox", [Letterbox(0.25)]),
    Case("pillarbox", [Pillarbox(0.25)]),
    Case("brighter", [Brightness(45)]),
    Case("darker", [Brightness(-45)]),
    Case("contrast_up", [Contrast(1.5)]),
    Case("contrast_down", [Contrast(0.5)]),
    Case("gamma_low", [Gamma(0.6)]),
    Case("gamma_high", [Gamma(1.7)]),
    Case("desaturated", [Saturation(0.3)]),
    Case("oversaturated", [Saturation(1.8)]),
    Case("grayscale", [Grayscale()]),
    Case("text_overlay", [TextOverlay()]),
    Case("logo_overlay", [LogoOverlay()]),
    Case("fps_25", [ChangeFps(25)]),
    Case("fps_10", [ChangeFps(10)]),
    Case("hflip", [HFlip()]),
    Case("embedded", [Embed(before=5.0, after=6.0)], input_offset=5.0),
    Case("speed_up", [Speed(1.1)], speed=1.1),
    Case("slow_down", [Speed(0.9)], speed=0.9),
    Case("crop_flip_reencode", [Crop(0.1, 0.1), HFlip(), Reencode(80_000)]),
    Case("letterbox_gray_logo", [Letterbox(0.2), Grayscale(), LogoOverlay(corner="bottom-left")]),
    # One-sided crops: 20% off one edge, 15% off two adjacent edges (anchor 1.0 keeps the right/bottom part).
    Case("crop_left_20", [Crop(0.2, 0.0, anchor_x=1.0)]),
    Case("crop_top_20", [Crop(0.0, 0.2, anchor_y=1.0)]),
    Case("crop_top_right_15", [Crop(0.15, 0.15, anchor_x=0.0, anchor_y=1.0)]),
    Case("crop_bottom_left_15_flip", [Crop(0.15, 0.15, anchor_x=1.0, anchor_y=0.0), HFlip()]),
    # Picture-in-picture: the copy at a third and at half of the width, over unrelated video.
    Case("pip_third_top_right", [PictureInPicture(seed=9101, scale=1 / 3)]),
    Case("pip_half_bottom_left", [PictureInPicture(seed=9102, scale=0.5, x=0.1, y=0.8)]),
]


def placement(i: int) -> tuple[int, float]:
    """Spread the cases over items and start times (not on the 0.5 s sampling grid)."""
    return LIBRARY_SEEDS[i % len(LIBRARY_SEEDS)], round(1.3 + (i * 3.7) % 19.0, 2)


def query_for(make_query: MakeQuery, i: int) -> tuple[Case, int, float, VideoFingerprint]:
    case = CASES[i]
    item, start = placement(i)
    return case, item, start, make_query(case.name, item, start, CLIP, case.ops)


def span(match: ItemMatch) -> tuple[float, float, float, float]:
    segs = match.segments
    return (min(s.input_start for s in segs), max(s.input_end for s in segs),
            min(s.ref_start for s in segs), max(s.ref_end for s in segs))  # fmt: skip


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c.name for c in CASES])
def test_transformed_clip_is_found_with_its_bounds(i: int, library: Library, make_query: MakeQuery) -> None:
    case, item, start, query = query_for(make_query, i)
    result = library.fast.search(query)
    assert [m.item_id for m in result] == [item], f"{case.name}: expected only item {item}, got {result}"
    in0, in1, ref0, ref1 = span(result[0])
    expected = (case.input_offset, case.input_offset + CLIP / case.speed, start, start + CLIP)
    got = (in0, in1, ref0, ref1)
    assert np.allclose(got, expected, atol=TOLERANCE), f"{case.name}: bounds {got}, expected {expected}"
    assert 0.5 <= result[0].similarity <= 1.0
    assert all(0.0 <= s.similarity <= 1.0 for s in result[0].segments)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c.name for c in CASES])
def test_fast_index_agrees_with_reference(i: int, library: Library, make_query: MakeQuery) -> None:
    _, _, _, query = query_for(make_query, i)
    fast, reference = library.fast.search(query), library.reference.search(query)
    assert [m.item_id for m in fast] == [m.item_id for m in reference]
    for a, b in zip(fast, reference, strict=True):
        assert len(a.segments) == len(b.segments)
        for sa, sb in zip(a.segments, b.segments, strict=True):
            assert np.allclose(
                [sa.input_start, sa.input_end, sa.ref_start, sa.ref_end, sa.similarity],
                [sb.input_start, sb.input_end, sb.ref_start, sb.ref_end, sb.similarity],
                atol=1e-6,
            )


@pytest.mark.parametrize("i", range(len(CASES)), ids=[c.name for c in CASES])
def test_segment_bounds_keep_the_rate_tolerance(i: int, library: Library, make_query: MakeQuery) -> None:
    """Reference seconds per input second stay within the aligner's rate bounds, give or take its jitter once."""
    _, _, _, query = query_for(make_query, i)
    p = AlignParams()
    for match in library.fast.search(query):
        for s in match.segments:
            assert p.min_rate * s.input_duration - p.jitter <= s.ref_duration, s
            assert s.ref_duration <= p.max_rate * s.input_duration + p.jitter, s


def test_unrelated_videos_match_nothing(library: Library, unrelated: list[VideoFingerprint]) -> None:
    for query in unrelated:
        assert library.fast.search(query) == []
        assert library.reference.search(query) == []


def test_exact_copy_is_near_perfect(library: Library) -> None:
    item = LIBRARY_SEEDS[0]
    fp = library.fingerprints[item]
    result = library.fast.search(fp)
    assert result[0].item_id == item
    assert result[0].similarity > 0.95
    in0, in1, ref0, ref1 = span(result[0])
    assert np.allclose((in0, in1, ref0, ref1), (0, fp.duration, 0, fp.duration), atol=TOLERANCE)


def test_clips_of_two_items_in_one_query(library: Library, make_query: MakeQuery) -> None:
    """A compilation: 8 s of one item then 8 s of another gives both items, each with its own segment."""
    a, b = LIBRARY_SEEDS[1], LIBRARY_SEEDS[2]
    first = make_query("compilation_a", a, 3.0, 8.0)
    second = make_query("compilation_b", b, 15.0, 8.0)
    query = VideoFingerprint(
        np.r_[first.times, second.times + 8.0], np.r_[first.hashes, second.hashes], 16.0, first.step
    )
    result = {m.item_id: m for m in library.fast.search(query)}
    assert set(result) == {a, b}
    assert np.allclose(span(result[a]), (0, 8, 3, 11), atol=TOLERANCE)
    assert np.allclose(span(result[b]), (8, 16, 15, 23), atol=TOLERANCE)


def test_max_items_limits_the_answer(library: Library) -> None:
    fp = library.fingerprints[LIBRARY_SEEDS[0]]
    assert len(library.fast.search(fp, max_items=1)) == 1
    assert library.fast.search(fp, max_items=0) == []
