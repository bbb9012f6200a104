"""The synthetic video generator and its transforms (tiny clips: these pin behaviour, not quality)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.synth.video import (
    Brightness,
    ChangeFps,
    Clip,
    Contrast,
    Crop,
    Embed,
    Gamma,
    Grayscale,
    HFlip,
    Letterbox,
    LogoOverlay,
    Pillarbox,
    Reencode,
    Saturation,
    Scale,
    Speed,
    TextOverlay,
    Trim,
    make_image,
    make_video,
    read_clip,
    render_clip,
    scene_cuts,
    transform_video,
)

SIZE = (96, 72)


@pytest.fixture(scope="module")
def clip() -> Clip:
    return render_clip(3, 2.0, SIZE, 10.0)


def test_generator_is_deterministic_and_seed_dependent() -> None:
    a, b = render_clip(5, 1.0, SIZE, 6.0), render_clip(5, 1.0, SIZE, 6.0)
    assert np.array_equal(a.frames, b.frames)
    other = render_clip(6, 1.0, SIZE, 6.0)
    assert np.abs(a.frames.astype(int) - other.frames).mean() > 20
    # Content is a function of time: the same instant at another frame rate or start is the same picture.
    assert np.array_equal(render_clip(5, 1.0, SIZE, 12.0).frames[2], a.frames[1])
    assert np.array_equal(render_clip(5, 0.5, SIZE, 6.0, start=0.5).frames[0], a.frames[3])


def test_frames_move_and_scenes_cut() -> None:
    cuts = scene_cuts(7, 30.0)
    assert 5 <= len(cuts) <= 12 and all(2.4 <= b - a <= 5.1 for a, b in zip([0.0, *cuts], cuts, strict=False))
    frames = render_clip(7, 1.0, SIZE, 4.0).frames.astype(int)
    assert np.abs(np.diff(frames, axis=0)).mean() > 1.0  # motion
    assert frames.std() > 20  # not flat


@pytest.mark.parametrize(("ext", "encoder", "decoded_as"), [
    ("mp4", None, "h264"), ("mkv", "libx265", "hevc"), ("mov", "mpeg4", "mpeg4"), ("avi", None, "mpeg4"),
    ("webm", None, "vp9"), ("flv", None, "flv"), ("ts", None, "h264"),
])  # fmt: skip
def test_make_video_writes_the_container_and_codec(tmp_path: Path, ext: str, encoder: str | None, decoded_as: str
                                                   ) -> None:  # fmt: skip
    path = make_video(tmp_path / f"v.{ext}", 1, 1.0, SIZE, 10.0, codec=encoder)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == decoded_as
        assert (stream.width, stream.height) == SIZE
        assert sum(1 for _ in container.decode(stream)) == 10


def test_mpeg2_and_image_writers(tmp_path: Path) -> None:
    assert read_clip(make_video(tmp_path / "v.mpg", 1, 1.0, SIZE, 25.0)).frames.shape == (25, 72, 96, 3)
    for ext in ("png", "jpg", "bmp"):
        with av.open(str(make_image(tmp_path / f"still.{ext}", 2, 1.5, SIZE))) as container:
            frames = list(container.decode(video=0))
        assert len(frames) == 1 and (frames[0].width, frames[0].height) == SIZE


def test_geometry_ops(clip: Clip) -> None:
    assert Scale(48, 36)(clip).size == (48, 36)
    cropped = Crop(0.2, 0.1)(clip)
    assert cropped.size == (76, 64)
    assert np.array_equal(cropped.frames, clip.frames[:, 4:68, 10:86])
    left = Crop(0.25, 0.0, anchor_x=0.0)(clip)
    assert np.array_equal(left.frames, clip.frames[:, :, :72])
    boxed = Letterbox(0.25)(clip)
    assert boxed.size == (96, 96) and boxed.frames[:, :12].max() == 0 and boxed.frames[:, -12:].max() == 0
    assert np.array_equal(boxed.frames[:, 12:84], clip.frames)
    pillar = Pillarbox(0.25)(clip)
    assert pillar.size == (128, 72) and pillar.frames[:, :, :16].max() == 0
    assert np.array_equal(HFlip()(clip).frames[:, :, ::-1], clip.frames)


def test_colour_ops(clip: Clip) -> None:
    f = clip.frames.astype(float)
    assert Brightness(30)(clip).frames.astype(float).mean() == pytest.approx(np.clip(f + 30, 0, 255).mean(), abs=1)
    assert Contrast(1.5)(clip).frames.std() > clip.frames.std() * 1.2
    assert Gamma(0.5)(clip).frames.mean() > clip.frames.mean() + 10
    gray = Grayscale()(clip).frames
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    chroma = lambda c: np.abs(c.frames.astype(float) - c.frames.mean(axis=-1, keepdims=True)).mean()  # noqa: E731
    assert chroma(Saturation(0.3)(clip)) < 0.5 * chroma(clip) < 0.5 * chroma(Saturation(1.8)(clip))


def test_overlays_touch_only_their_area(clip: Clip) -> None:
    logo = LogoOverlay(size=0.2, corner="top-right")(clip)
    changed = np.any(logo.frames != clip.frames, axis=(0, 3))
    ys, xs = np.nonzero(changed)
    assert ys.max() < 72 // 2 and xs.min() > 96 // 2
    text = TextOverlay("HELLO", y=0.8)(clip)
    ys, _ = np.nonzero(np.any(text.frames != clip.frames, axis=(0, 3)))
    assert ys.min() >= int(0.8 * 72)


def test_time_ops(clip: Clip) -> None:
    assert len(Trim(0.5, 1.0)(clip).frames) == 10
    assert np.array_equal(Trim(0.5, 1.0)(clip).frames[0], clip.frames[5])
    faster = ChangeFps(25)(clip)
    assert faster.fps == 25 and len(faster.frames) == 50 and faster.duration == pytest.approx(clip.duration)
    assert len(ChangeFps(5)(clip).frames) == 10
    sped = Speed(1.25)(clip)
    assert len(sped.frames) == 16 and np.array_equal(sped.frames[4], clip.frames[5])
    embedded = Embed(seed=99, before=1.0, after=0.5)(clip)
    assert len(embedded.frames) == 10 + 20 + 5
    assert np.array_equal(embedded.frames[10:30], clip.frames)


def test_reencode_degrades_but_keeps_the_picture(clip: Clip) -> None:
    out = Reencode(bitrate=20_000)(clip)
    assert out.frames.shape == clip.frames.shape
    error = np.abs(out.frames.astype(int) - clip.frames).mean()
    assert 1.0 < error < 40.0


def test_transform_video_reads_a_range(tmp_path: Path) -> None:
    src = make_video(tmp_path / "src.mp4", 4, 3.0, SIZE, 10.0)
    dst = transform_video(src, tmp_path / "dst.mkv", [HFlip()], start=1.0, seconds=1.5)
    out = read_clip(dst)
    assert len(out.frames) == 15 and out.fps == 10
    original = read_clip(src, 1.0, 1.5)
    assert np.abs(out.frames[:, :, ::-1].astype(int) - original.frames).mean() < 6
