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


class InputTooLarge(MediaError):
    """The input file is over the configured size limit (`engine.limits`)."""

    code = "InvalidInput.TooLarge"


class InputTooLong(MediaError):
    """The media is over the configured duration limit, or the text over the character limit."""

    code = "InvalidInput.TooLong"


class JobTimeout(EngineError):
    """Fingerprinting did not finish within the per-job time limit."""

    code = "Timeout"


class JobOutOfMemory(EngineError):
    """Fingerprinting went over the per-job memory limit; the job fails, the service carries on."""

    code = "InvalidInput.TooLarge"


class DamagedData(EngineError):
    """Stored data (a fingerprint blob, a database) is missing or corrupt."""

    code = "InternalError.DamagedData"
