"""engine.synth.av: videos with a soundtrack, and soundtrack excerpts/transforms that sit where they say."""

from __future__ import annotations

from pathlib import Path

import av as pyav
import numpy as np
import pytest

from engine.modalities import get_modality
from engine.synth import audio as synth_audio
from engine.synth import av
from engine.synth import video as synth_video

SMALL = {"size": (160, 120), "fps": 10.0}
SR = 16000
RATE = SR  # music(seed, sr) depends on sr: compare soundtracks with the music at the rate it was made


def _streams(path: Path) -> dict[str, tuple[str, float]]:
    with pyav.open(str(path)) as container:
        out = {}
        for s in container.streams:
            seconds = float(s.duration * s.time_base) if s.duration else float(container.duration or 0) / 1e6
            out[s.type] = (s.codec_context.name, seconds)
        return out


def _locate(part: np.ndarray, whole: np.ndarray) -> tuple[float, float]:
    """(seconds into `whole` where `part` fits best, normalised correlation there)."""
    n = whole.size + part.size
    corr = np.fft.irfft(np.fft.rfft(whole, n) * np.conj(np.fft.rfft(part, n)), n)[: whole.size - part.size + 1]
    lag = int(np.argmax(corr))
    window = whole[lag : lag + part.size]
    score = float(np.dot(window, part) / (np.linalg.norm(window) * np.linalg.norm(part) + 1e-12))
    return lag / RATE, score


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return av.make_av(tmp_path_factory.mktemp("av") / "film.mp4", seed=5, seconds=6.0, sr=SR, **SMALL)  # type: ignore[arg-type]


def test_make_av_muxes_pictures_and_music(film: Path) -> None:
    streams = _streams(film)
    assert streams["video"][0] == "h264" and abs(streams["video"][1] - 6.0) < 0.2
    assert streams["audio"][0] == "aac" and abs(streams["audio"][1] - 6.0) < 0.2
    # the soundtrack is the seed's music (through AAC), from the start
    sound = av.read_soundtrack(film, sr=RATE)
    music = synth_audio.music(5, 6.0, RATE)
    at, score = _locate(music[RATE : 4 * RATE], sound)
    assert abs(at - 1.0) < 0.05 and score > 0.8
    # and the pictures are the seed's frames
    first = synth_video.read_clip(film, 2.0, 0.1).frames[0].astype(np.int16)
    expected = synth_video.render_clip(5, 0.1, (160, 120), 10.0, start=2.0).frames[0].astype(np.int16)
    assert np.abs(first - expected).mean() < 8


def test_the_audio_modality_fingerprints_a_videos_soundtrack(film: Path, tmp_path: Path) -> None:
    fingerprint = get_modality("audio").extract(film)
    assert fingerprint is not None and abs(fingerprint.duration - 6.0) < 0.2
    silent = av.write_av(
        tmp_path / "silent.mp4", synth_video.iter_frames(5, 1.0, (160, 120), 10.0), 10.0, (160, 120), None
    )
    assert "audio" not in _streams(silent)
    assert get_modality("audio").extract(silent) is None
    with pytest.raises(ValueError, match="no audio stream"):
        av.read_soundtrack(silent)


def test_soundtrack_excerpt_is_that_range_of_the_soundtrack(film: Path, tmp_path: Path) -> None:
    mp3 = av.soundtrack_excerpt(
        film, tmp_path / "rip.mp3", 2.0, 5.0, [av.Noise(20.0, seed=1), av.Gain(-3.0)], sr=SR, bitrate=64_000
    )
    assert _streams(mp3)["audio"][0].startswith("mp3")  # FFmpeg's decoder: mp3float
    rip = av.read_soundtrack(mp3, sr=RATE)
    assert abs(rip.size / RATE - 3.0) < 0.1
    at, score = _locate(rip[int(0.2 * RATE) : int(2.8 * RATE)], av.read_soundtrack(film, sr=RATE))
    assert abs(at - 2.2) < 0.06 and score > 0.5  # MP3 may pad a frame at the start: within a few ms
    with pytest.raises(ValueError, match="empty range"):
        av.soundtrack_excerpt(film, tmp_path / "none.mp3", 3.0, 3.0)


def test_transform_av_keeps_the_soundtrack_aligned_with_the_pictures(film: Path, tmp_path: Path) -> None:
    out = av.transform_av(
        film,
        tmp_path / "vlog.mkv",
        [synth_video.HFlip(), synth_video.Embed(seed=9, before=2.0, after=1.0)],
        [av.EmbedAudio(seed=9, before=2.0, after=1.0)],
        start=1.0,
        seconds=3.0,
        sr=SR,
    )
    streams = _streams(out)
    assert abs(streams["video"][1] - 6.0) < 0.2 and abs(streams["audio"][1] - 6.0) < 0.2
    # seconds 1–4 of the film's sound now sit at 2–5 s, where the copied pictures are
    at, score = _locate(av.read_soundtrack(film, 1.5, 2.0, sr=RATE), av.read_soundtrack(out, sr=RATE))
    assert abs(at - 2.5) < 0.06 and score > 0.8
    frame = synth_video.read_clip(out, 3.0, 0.1).frames[0].astype(np.int16)
    source = synth_video.read_clip(film, 2.0, 0.1).frames[0][:, ::-1].astype(np.int16)
    assert np.abs(frame - source).mean() < 10


@pytest.mark.parametrize(("ext", "codecs"), [("mov", ("h264", "aac")), ("webm", ("vp9", "opus"))])
def test_other_containers(tmp_path: Path, ext: str, codecs: tuple[str, str]) -> None:
    path = av.make_av(tmp_path / f"clip.{ext}", seed=3, seconds=1.0, sr=SR, **SMALL)  # type: ignore[arg-type]
    streams = _streams(path)
    assert (streams["video"][0], streams["audio"][0]) == codecs
    assert abs(av.read_soundtrack(path, sr=RATE).size / RATE - 1.0) < 0.1
    with pytest.raises(ValueError, match="no audio\\+video writer"):
        av.make_av(tmp_path / "clip.gif", seed=3, seconds=1.0)
