"""Extraction: containers and codecs, images, audio-only files, bad input, serialisation, features."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from video_support import LIBRARY_SEEDS, Library, MakeQuery

from engine.errors import EmptyMedia, MediaError, MediaNotFound, UnsupportedMedia
from engine.synth.video import (
    ChangeFps,
    Clip,
    HFlip,
    Letterbox,
    PictureInPicture,
    Pillarbox,
    Scale,
    read_clip,
    render_clip,
    write_clip,
    write_frames,
    write_image,
)
from engine.video import VideoFingerprint, VideoModality
from engine.video.decode import FULL_DECODE_SECONDS, VideoDecoder
from engine.video.frame_features import CANONICAL, FLIP_MASK, WINDOWS, content_boxes, hash_frames, inset_boxes

FORMATS = [
    ("mp4", "libx264"),
    ("mkv", "libx265"),
    ("mov", "libx264"),
    ("avi", "mpeg4"),
    ("ts", "libx264"),
    ("flv", "flv"),
    ("mpg", "mpeg2video"),
    ("webm", "libvpx-vp9"),
]


@pytest.mark.parametrize(("ext", "codec"), FORMATS, ids=[f"{e}-{c}" for e, c in FORMATS])
def test_containers_and_codecs_decode_and_match(ext: str, codec: str, library: Library, make_query: MakeQuery
                                                ) -> None:  # fmt: skip
    item, start = LIBRARY_SEEDS[FORMATS.index((ext, codec)) % len(LIBRARY_SEEDS)], 6.2
    # 25 fps: MPEG-2 only takes standard rates.
    query = make_query(f"format_{ext}_{codec}", item, start, 4.0, [ChangeFps(25)], ext=ext, codec=codec)
    assert query.duration == pytest.approx(4.0, abs=0.2)
    assert 6 <= len(query) <= 9  # 2 samples a second
    result = library.fast.search(query)
    assert [m.item_id for m in result] == [item]
    seg = result[0].segments[0]
    assert seg.ref_start == pytest.approx(start, abs=1.0) and seg.ref_end == pytest.approx(start + 4, abs=1.0)


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp"])
def test_an_image_is_a_one_frame_video_and_finds_its_frame(ext: str, library: Library, media_dir: Path,
                                                           modality: VideoModality) -> None:  # fmt: skip
    item, t = LIBRARY_SEEDS[2], 17.3
    frame = read_clip(library.paths[item], t, 0.1).frames[0]
    fp = modality.extract(write_image(frame, media_dir / f"still.{ext}"))
    assert fp is not None
    assert len(fp) == 1 and fp.duration == 0.0 and fp.step == 0.0
    result = library.fast.search(fp)
    assert result and result[0].item_id == item
    seg = result[0].segments[0]
    assert (seg.input_start, seg.input_end) == (0.0, 0.0)
    assert seg.ref_start == pytest.approx(t, abs=1.0)
    assert [m.item_id for m in library.reference.search(fp)] == [m.item_id for m in result]


def test_audio_only_file_has_no_video_fingerprint(media_dir: Path, modality: VideoModality) -> None:
    path = media_dir / "tone.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)[None]
        for i in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, i : i + 1024]), format="fltp",
                                               layout="mono")  # fmt: skip
            frame.sample_rate, frame.pts = 16000, i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert modality.extract(path) is None


def test_bad_inputs_raise_the_right_media_error(media_dir: Path, library: Library, modality: VideoModality) -> None:
    with pytest.raises(MediaNotFound, match="no such file"):
        modality.extract(media_dir / "missing.mp4")
    with pytest.raises(MediaNotFound):
        modality.extract(media_dir)
    empty = media_dir / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyMedia, match="empty"):
        modality.extract(empty)
    text = media_dir / "notes.mp4"
    text.write_text("These are meeting notes, not a video.\n" * 30, encoding="utf-8")
    with pytest.raises(UnsupportedMedia, match="text file"):
        modality.extract(text)
    good = library.paths[LIBRARY_SEEDS[0]].read_bytes()
    noise = np.random.default_rng(3).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    for name, data in [("random.mp4", noise), ("truncated.mp4", good[: len(good) // 3]),
                       ("scrambled.mp4", good[:32] + noise)]:  # fmt: skip
        bad = media_dir / name
        bad.write_bytes(data)
        with pytest.raises(MediaError) as info:
            modality.extract(bad)
        assert type(info.value) is MediaError, name  # corrupt, not "missing", "empty" or "not media"
        assert info.value.code == "InvalidInput.MediaUndecodable"
        assert name in info.value.message


def test_black_video_has_no_usable_frames_and_matches_nothing(media_dir: Path, library: Library,
                                                              modality: VideoModality) -> None:  # fmt: skip
    path = write_clip(Clip(np.zeros((45, 120, 160, 3), np.uint8), 15.0), media_dir / "black.mp4")
    fp = modality.extract(path)
    assert fp is not None and len(fp) == 0 and fp.duration == pytest.approx(3.0, abs=0.1)
    assert library.fast.search(fp) == [] and library.reference.search(fp) == []


def test_serialisation_round_trip(library: Library, modality: VideoModality) -> None:
    fp = library.fingerprints[LIBRARY_SEEDS[0]]
    data = fp.to_bytes()
    back = modality.load_fingerprint(data)
    assert isinstance(back, VideoFingerprint)
    assert np.array_equal(back.hashes, fp.hashes)
    assert np.allclose(back.times, fp.times, atol=1e-3)
    assert (back.duration, back.step, len(back)) == (fp.duration, fp.step, len(fp))
    assert len(data) < len(fp) * len(WINDOWS) * 8 + 100  # no bigger than the raw hashes
    ref_only = fp.reference_only()
    assert ref_only.hashes.shape == (len(fp), 1)
    assert np.array_equal(VideoFingerprint.from_bytes(ref_only.to_bytes()).canonical, fp.canonical)
    for bad in (b"", b"XXXX" + data[4:], data[:-5]):
        with pytest.raises(ValueError):
            VideoFingerprint.from_bytes(bad)


def test_flip_is_a_bit_mask_on_the_hash() -> None:
    frames = render_clip(7, 2.0, (320, 240), 4.0).frames
    gray = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    small = gray.reshape(len(gray), 120, 2, 160, 2).mean(axis=(2, 4))[:, :, 16:144]  # a 128-wide square crop
    thumbs = np.stack([np.pad(f, ((4, 4), (0, 0)), mode="edge") for f in small])
    plain, _ = hash_frames(thumbs, content_boxes(thumbs))
    mirrored, _ = hash_frames(thumbs[:, :, ::-1].copy(), content_boxes(thumbs))
    centred = [i for i, ((ax, bx), _) in enumerate(WINDOWS) if np.isclose(ax + bx, 1.0)]  # mirror-symmetric
    differing = np.bitwise_count(plain[:, centred] ^ FLIP_MASK ^ mirrored[:, centred])
    assert differing.max() <= 2  # only coefficients within rounding of zero may disagree
    assert np.bitwise_count(plain[:, CANONICAL] ^ mirrored[:, CANONICAL]).min() >= 10  # yet flipping changes it


@pytest.mark.parametrize("bars", [Letterbox(0.3), Pillarbox(0.3)], ids=["letterbox", "pillarbox"])
def test_bars_are_detected_and_removed(bars: Letterbox | Pillarbox) -> None:
    clip = render_clip(8, 3.0, (160, 120), 2.0)
    boxed = bars(clip)
    thumbs = np.stack([_thumb(f) for f in boxed.frames])
    boxes = content_boxes(thumbs)
    x0, y0, x1, y1 = boxes[-1]
    if isinstance(bars, Letterbox):
        assert (x0, x1) == (0, 128) and 16 <= y0 <= 22 and 106 <= y1 <= 112  # 15% of 128 each side
    else:
        assert (y0, y1) == (0, 128) and 16 <= x0 <= 22 and 106 <= x1 <= 112
    plain = np.stack([_thumb(f) for f in clip.frames])
    h_boxed, _ = hash_frames(thumbs, boxes)
    h_plain, _ = hash_frames(plain, content_boxes(plain))
    assert np.bitwise_count(h_boxed[:, CANONICAL] ^ h_plain[:, CANONICAL]).max() <= 8


def test_bars_need_to_be_symmetric_and_lasting() -> None:
    """A dark band on one side only (a night sky), or dark for a moment, is content, not a letterbox."""
    clip = render_clip(9, 3.0, (160, 120), 2.0)
    frames = clip.frames.copy()
    frames[:, :30] = 0  # top quarter black, bottom untouched
    thumbs = np.stack([_thumb(f) for f in frames])
    assert (content_boxes(thumbs) == [0, 0, 128, 128]).all()
    boxed = Letterbox(0.3)(clip).frames
    flash = Scale(160, boxed.shape[1])(clip).frames.copy()
    flash[-1] = boxed[-1]  # bars for one sample only
    thumbs = np.stack([_thumb(f) for f in flash])
    assert (content_boxes(thumbs)[-1] == [0, 0, 128, 128]).all()
    thumbs = np.stack([_thumb(f) for f in boxed])
    assert content_boxes(thumbs)[-1][1] > 0  # the control: lasting bars are removed


def test_flipped_video_has_mirrored_hashes(library: Library, make_query: MakeQuery) -> None:
    item = LIBRARY_SEEDS[1]
    plain = make_query("plain_for_flip", item, 8.0, 4.0)
    flipped = make_query("flipped", item, 8.0, 4.0, [HFlip()])
    assert np.median(np.bitwise_count(plain.canonical ^ FLIP_MASK ^ flipped.canonical)) <= 3


def _thumb(rgb: np.ndarray) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), "rgb24")
    return frame.reformat(width=128, height=128, format="gray", interpolation="AREA").to_ndarray().astype(np.float32)


def test_fingerprints_of_the_older_format_are_refused_clearly(library: Library) -> None:
    """FPV1 hashed another region of the frame: its hashes cannot be compared, so it must not load silently."""
    data = library.fingerprints[LIBRARY_SEEDS[0]].reference_only().to_bytes()
    with pytest.raises(ValueError, match="older format"):
        VideoFingerprint.from_bytes(b"FPV1" + data[4:])


def test_reference_form_is_a_few_bytes_a_frame(library: Library) -> None:
    fp = library.fingerprints[LIBRARY_SEEDS[0]]
    assert len(fp.reference_only().to_bytes()) <= 10 * len(fp) + 64  # 8-byte hash + a compressed time step


def test_sparse_reference_frames_fall_back_to_every_frame(library: Library, media_dir: Path) -> None:
    """An encoding whose reference frames are seconds apart (x264 with 16 non-reference B-frames in a row; Theora
    under some decoders keeps only keyframes) is decoded in full: the sampling grid gets a frame every step and
    the copy is found, where the usual H.264 encoding keeps its fast path (reference frames only)."""
    item, start = LIBRARY_SEEDS[1], 4.0
    clip = read_clip(library.paths[item], start, 12.0)  # longer than FULL_DECODE_SECONDS: not decoded in full anyway
    sparse = write_frames(clip.frames, media_dir / "sparse_refs.mp4", clip.fps, clip.size,
                          options={"preset": "veryfast", "crf": "20", "bf": "16",
                                   "x264-params": "b-pyramid=none:b-adapt=0:scenecut=0"})  # fmt: skip
    usual = write_clip(clip, media_dir / "usual_refs.mp4")
    with VideoDecoder(usual) as dec:
        usual_grid = [t for t, _ in dec.thumbnails()]
        assert not dec.all_frames
    with VideoDecoder(sparse) as dec:
        sparse_grid = [t for t, _ in dec.thumbnails()]
        assert dec.all_frames
    assert sparse_grid == usual_grid  # every grid point has frames, as with reference frames of the usual one
    with av.open(str(sparse)) as container:  # the premise: reference frames alone are sparser than the grid
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        assert sum(1 for _ in container.decode(stream)) < 2.0 * 12.0 / 2
    fp = VideoModality().extract(sparse)
    assert fp is not None and len(fp) >= 18
    result = library.fast.search(fp)
    assert [m.item_id for m in result] == [item]
    assert result[0].segments[0].ref_start == pytest.approx(start, abs=1.0)


def test_a_short_file_is_decoded_in_full_and_its_thumbnails_then_do_not_depend_on_the_encoders_frame_types(
    library: Library, media_dir: Path
) -> None:
    """Under FULL_DECODE_SECONDS every frame is decoded: two encodes of one short clip with different reference
    frame patterns (B-frames or none) give the same grid and nearly the same thumbnails, which reference frames
    alone do not guarantee."""
    clip = read_clip(library.paths[LIBRARY_SEEDS[2]], 3.0, FULL_DECODE_SECONDS - 4.0)
    plain = write_clip(clip, media_dir / "short_plain.mp4")
    with_b = write_frames(clip.frames, media_dir / "short_bframes.mp4", clip.fps, clip.size,
                          options={"preset": "veryfast", "crf": "18", "bf": "3"})  # fmt: skip
    thumbs = []
    for path in (plain, with_b):
        with VideoDecoder(path) as dec:
            thumbs.append(dict(dec.thumbnails()))
            assert dec.all_frames
    assert thumbs[0].keys() == thumbs[1].keys() and len(thumbs[0]) >= 2 * (FULL_DECODE_SECONDS - 4.0) - 1
    for t, a in thumbs[0].items():
        assert float(np.abs(a - thumbs[1][t]).mean()) < 3.0, t  # gray levels: re-encoding noise, no other frames


@pytest.mark.parametrize(("scale", "x", "y"), [(1 / 3, 0.9, 0.15), (0.5, 0.1, 0.8), (0.4, 0.5, 0.5)])
def test_picture_in_picture_insets_are_located(scale: float, x: float, y: float) -> None:
    """The inset's box is found within a pixel or two of the thumbnail (128 px a side), whatever its place."""
    size = (256, 192)
    clip = PictureInPicture(seed=9201, scale=scale, x=x, y=y)(render_clip(9202, 8.0, size, 12.0))
    w, h = size
    iw, ih = round(w * scale / 2) * 2, round(h * scale / 2) * 2
    x0, y0 = round((w - iw) * x), round((h - ih) * y)
    truth = np.array([x0 / w, y0 / h, (x0 + iw) / w, (y0 + ih) / h]) * 128
    boxes = inset_boxes(_thumbnails(clip))
    assert boxes, "no inset found"
    assert np.abs(np.array(boxes[0]) - truth).max() <= 2.0, (boxes, truth)


def test_plain_video_has_no_inset() -> None:
    assert inset_boxes(_thumbnails(render_clip(9203, 8.0, (256, 192), 12.0))) == []


def test_edges_running_across_the_picture_outline_no_inset() -> None:
    """Persistent edges that cross the whole picture (walls, a kerb, a roofline of a still scene) outline a square
    where they cross, as an inset's border would; but they run on past its corners, and a border stops there."""
    yy, xx = np.mgrid[0:128, 0:128]
    walls = 70.0 * ((xx >= 40).astype(float) - (xx >= 85) + (yy >= 40) - (yy >= 85))
    moving = [25.0 * np.sin((xx + 3 * t) / 7.0) * np.cos((yy - 2 * t) / 11.0) for t in range(12)]
    assert inset_boxes(np.stack([60.0 + walls + m for m in moving]).astype(np.float32)) == []


def _thumbnails(clip: Clip) -> np.ndarray:
    """Gray 128 x 128 thumbnails at 2 a second, as the decoder makes them (without its averaging)."""
    picks = np.arange(0, len(clip.frames), int(clip.fps // 2))
    gray = clip.frames[picks].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.stack([
        av.VideoFrame.from_ndarray(np.ascontiguousarray(g.clip(0, 255).astype(np.uint8)), "gray")
        .reformat(width=128, height=128, interpolation="AREA").to_ndarray().astype(np.float32)
        for g in gray
    ])  # fmt: skip
