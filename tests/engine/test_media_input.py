"""Inputs are confined to the one file submitted: playlists, manifests and protocol names cannot reach others."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import av
import av.error
import numpy as np
import pytest

from engine import media_input
from engine.audio.decode import decode_mono
from engine.errors import UnsupportedMedia
from engine.video.decode import VideoDecoder


def _segment(path: Path, frames: int = 25) -> Path:
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg2video", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 8 * i, np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """Media that lies outside the bucket root: nothing submitted may read it."""
    (tmp_path / "outside").mkdir()
    return _segment(tmp_path / "outside" / "secret.ts")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


PLAYLISTS = {
    "evil.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\n../outside/secret.ts\n#EXT-X-ENDLIST\n",
    "disguised.mp4": "\ufeff#EXTM3U\n#EXTINF:1.0,\n../outside/secret.ts\n#EXT-X-ENDLIST\n",
    "list.ffconcat": "ffconcat version 1.0\nfile ../outside/secret.ts\n",
}


@pytest.mark.parametrize("name", sorted(PLAYLISTS))
def test_playlists_are_refused_by_both_decoders(root: Path, outside: Path, name: str) -> None:
    playlist = root / name
    playlist.write_text(PLAYLISTS[name], encoding="utf-8")
    with pytest.raises(UnsupportedMedia, match="names other files"), VideoDecoder(playlist) as decoder:
        list(decoder.thumbnails())
    with pytest.raises(UnsupportedMedia, match="names other files"):
        decode_mono(playlist)


def test_a_demuxer_cannot_open_another_file_even_unrecognised(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second wall: with the signature check switched off, the HLS demuxer still cannot open its segment."""
    playlist = root / "evil.m3u8"
    playlist.write_text(PLAYLISTS["evil.m3u8"], encoding="utf-8")
    assert sum(1 for _ in av.open(str(playlist)).decode(video=0)) == 25  # FFmpeg on its own follows it
    monkeypatch.setattr(media_input, "refuse_playlists", lambda path: None)
    with pytest.raises(av.error.FFmpegError):
        container = media_input.open_confined(playlist)
        sum(1 for _ in container.decode(video=0))


def test_a_protocol_in_the_file_name_is_just_a_name(root: Path, outside: Path) -> None:
    named = _segment(root / "subfile:,start,0,end,10,:secret.ts")
    with media_input.open_confined(named) as container:
        assert sum(1 for _ in container.decode(video=0)) == 25


def test_the_file_is_released_with_its_container(root: Path) -> None:
    """PyAV never closes a file object it was given: the confined file must close itself, or each job leaks a fd."""
    clip = _segment(root / "clip.ts")

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    for _ in range(20):
        container = media_input.open_confined(clip)
        sum(1 for _ in container.decode(video=0))
        container.close()
        del container
    gc.collect()
    assert open_fds() <= before
