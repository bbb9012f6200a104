"""Engine errors carry an MPS-style `code` so a failed job reports `Code`/`Message` the way MPS does."""

from __future__ import annotations


class EngineError(Exception):
    code = "InternalError"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class MediaError(EngineError):
    """The input cannot be fingerprinted: missing, empty, corrupt or of an unsupported kind."""

    code = "InvalidInput.MediaUndecodable"


class MediaNotFound(MediaError):
    code = "InvalidInput.NotFound"


class EmptyMedia(MediaError):
    code = "InvalidInput.EmptyMedia"


class UnsupportedMedia(MediaError):
    code = "InvalidInput.UnsupportedFormat"


class LibraryError(EngineError):
    code = "InvalidParameter.DBNotExist"
