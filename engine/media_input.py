"""Open one local media file for decoding so that FFmpeg can read that file and nothing else.

A container format may name other inputs: an HLS or DASH playlist its segments, an ffconcat list or IMF package
its parts, an SDP file a network stream, and a file name may itself be a protocol (`concat:`, `subfile:`,
`http:`). Given a path, FFmpeg follows all of them, so a playlist dropped into the bucket could read any file on
the machine. Here FFmpeg gets an already-open file object (no protocol is parsed from the name) and an empty
protocol whitelist, so every nested open fails; playlists are recognised first to say why.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import av.container

from engine.errors import UnsupportedMedia

# No protocol at all may be used by a demuxer for the inputs it names ("" means "no restriction" to FFmpeg).
_NO_PROTOCOLS = {"protocol_whitelist": "none"}
# First bytes of the formats that exist to point at other files.
_PLAYLIST_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"#EXTM3U", "an HLS playlist (.m3u8)"),
    (b"ffconcat version", "an ffconcat list"),
    (b"<?xml", "an XML manifest (DASH, IMF or similar)"),
    (b"<MPD", "a DASH manifest"),
    (b"v=0", "an SDP session description"),
)


class _ConfinedFile(io.FileIO):
    """The input as FFmpeg sees it; closed when the container lets go of it (PyAV never closes a file it was given)."""

    def __del__(self) -> None:
        self.close()


def refuse_playlists(path: Path) -> None:
    """Raise `UnsupportedMedia` if `path` is a playlist or manifest rather than media."""
    with path.open("rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    for signature, what in _PLAYLIST_SIGNATURES:
        if head.startswith(signature):
            raise UnsupportedMedia(f"{path.name}: {what} names other files; upload the media file itself")


def open_confined(path: Path, **kwargs: Any) -> av.container.InputContainer:
    """`av.open` for one local file, with no way for the demuxer to open anything else."""
    refuse_playlists(path)
    handle = _ConfinedFile(path, "rb")
    try:
        return av.open(handle, mode="r", options=dict(_NO_PROTOCOLS), **kwargs)
    except BaseException:
        handle.close()
        raise
