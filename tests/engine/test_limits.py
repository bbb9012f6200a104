"""Issue 10 item 7: decoding keeps only 8 kHz samples (and gives the same samples as before), inputs over the
size, duration and character limits fail with MPS-style codes, and fingerprinting in the service's child process
fails one job (memory, time) without taking the caller down."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.audio import decode
from engine.audio.params import SAMPLE_RATE
from engine.errors import EngineError, InputTooLarge, InputTooLong, JobTimeout
from engine.limits import Limits
from engine.service.sandbox import extract_isolated
from engine.synth import audio as synth
from engine.text.parse import read_text_input

MODEL_AUDIO, MODEL_TEXT = 13, 11


def _whole_file_reference(path: Path) -> np.ndarray:
    """The previous decoder: every source-rate sample of the file kept, then resampled in 10 s blocks."""
    mono: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        src = stream.codec_context.sample_rate
        for frame in container.decode(stream):
            mono.append(decode._frame_mono(frame))
    x = np.concatenate(mono)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    out: list[np.ndarray] = []
    for i in range(0, x.size, src * 10):
        frame = av.AudioFrame.from_ndarray(x[None, i : i + src * 10], format="flt", layout="mono")
        frame.sample_rate = src
        out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(out)


@pytest.fixture(scope="module")
def music_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("limits")
    x = synth.music(31, 25.0, 44100)
    stereo = np.stack([x, 0.6 * np.roll(x, 300)])
    return {
        "mp3": synth.write_audio(folder / "song.mp3", stereo, 44100, bitrate=96000),
        "opus": synth.write_audio(folder / "song.opus", x, 44100, bitrate=32000),
        "wav8k": synth.write_audio(folder / "song.wav", synth.music(32, 12.0, 8000), 8000),
    }


@pytest.mark.parametrize("name", ["mp3", "opus", "wav8k"])
def test_streaming_decode_gives_the_samples_of_the_whole_file_decode(music_files: dict[str, Path], name: str) -> None:
    got = decode.decode_mono(music_files[name])
    assert got is not None
    np.testing.assert_array_equal(got, _whole_file_reference(music_files[name]))


def test_streaming_decode_keeps_only_output_rate_samples(music_files: dict[str, Path]) -> None:
    stretch = decode._Resampled(44100, SAMPLE_RATE)
    block = np.zeros(1152, np.float32)
    for _ in range(1000):  # 26 s of 44.1 kHz input
        stretch.add(block)
        assert stretch._pending_size < 10 * 44100 + block.size  # at most ~10 s of source samples waits
    assert sum(b.size for b in stretch.close()) == pytest.approx(1000 * 1152 * SAMPLE_RATE / 44100, abs=2)


def _limits(**kwargs: float | None) -> Limits:
    base: dict[str, float | None] = dict(
        max_input_bytes=None, max_media_seconds=None, max_text_chars=None, job_timeout_seconds=None, job_memory_mb=None
    )
    base.update(kwargs)
    return Limits(**base)  # type: ignore[arg-type]


def test_audio_over_the_duration_or_size_limit_fails_with_codes(music_files: dict[str, Path]) -> None:
    with pytest.raises(InputTooLong) as long_:
        decode.decode_mono(music_files["opus"], limits=_limits(max_media_seconds=5.0))
    assert long_.value.code == "InvalidInput.TooLong" and "5 s" in long_.value.message
    with pytest.raises(InputTooLarge) as large:
        decode.decode_mono(music_files["mp3"], limits=_limits(max_input_bytes=1000))
    assert large.value.code == "InvalidInput.TooLarge"
    assert decode.decode_mono(music_files["opus"], limits=_limits(max_media_seconds=60.0)) is not None


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Limits.from_env({"FPSCREEN_MAX_MEDIA_SECONDS": "0"}).max_media_seconds is None
    assert Limits.from_env({}).max_text_chars == 5_000_000
    with pytest.raises(ValueError, match="FPSCREEN_JOB_MEMORY_MB"):
        Limits.from_env({"FPSCREEN_JOB_MEMORY_MB": "lots"})
    text = tmp_path / "long.txt"
    text.write_text("word " * 1000, encoding="utf-8")
    monkeypatch.setenv("FPSCREEN_MAX_TEXT_CHARS", "4999")
    with pytest.raises(InputTooLong, match="5000 characters"):
        read_text_input(text)
    monkeypatch.setenv("FPSCREEN_MAX_TEXT_CHARS", "100")  # 5000 bytes > 4 x 100: refused unread
    with pytest.raises(InputTooLong, match="FPSCREEN_MAX_TEXT_CHARS"):
        read_text_input(text)
    monkeypatch.setenv("FPSCREEN_MAX_TEXT_CHARS", "5000")
    assert len(read_text_input(text).text) == 5000


def test_isolated_extraction_equals_in_process_extraction(music_files: dict[str, Path]) -> None:
    from engine.audio import AudioModality

    got = extract_isolated(music_files["opus"], MODEL_AUDIO, limits=_limits(job_timeout_seconds=120))
    fingerprint = got["audio"]
    assert fingerprint is not None
    assert fingerprint.to_bytes() == AudioModality().extract(music_files["opus"]).to_bytes()  # type: ignore[union-attr]


def test_isolated_extraction_over_memory_or_time_fails_that_job_only(music_files: dict[str, Path]) -> None:
    with pytest.raises(EngineError) as memory:
        extract_isolated(music_files["opus"], MODEL_AUDIO, limits=_limits(job_memory_mb=64, job_timeout_seconds=120))
    assert memory.value.code == "InvalidInput.TooLarge"
    with pytest.raises(JobTimeout) as slow:
        extract_isolated(music_files["opus"], MODEL_AUDIO, limits=_limits(job_timeout_seconds=0.001))
    assert slow.value.code == "Timeout" and "FPSCREEN_JOB_TIMEOUT_SECONDS" in slow.value.message
    # This process is unharmed and the next extraction works.
    assert extract_isolated(music_files["wav8k"], MODEL_AUDIO, limits=_limits(job_timeout_seconds=120))["audio"]


def test_fingerprints_from_the_stream_equal_those_of_the_whole_decode(music_files: dict[str, Path]) -> None:
    from engine.audio import AudioModality
    from engine.audio.chunked import stream_peaks
    from engine.audio.landmarks import find_peaks

    for path in music_files.values():
        samples = decode.decode_mono(path)
        assert samples is not None
        want_t, want_f = find_peaks(samples)
        # The two-pass path (the file decoded twice, a few blocks of frames held), forced on a short file.
        got_t, got_f, count = stream_peaks(lambda p=path: decode.mono_blocks(p), block=300, whole_file_frames=0)
        assert count == samples.size
        np.testing.assert_array_equal(got_t, want_t)
        np.testing.assert_array_equal(got_f, want_f)
        fingerprint = AudioModality().extract(path)
        assert fingerprint is not None and fingerprint.duration == samples.size / SAMPLE_RATE
        np.testing.assert_array_equal(fingerprint.peak_t, want_t)
