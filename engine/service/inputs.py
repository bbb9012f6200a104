"""Resolving an MPS `Input` (`{"Bucket","Location","Object"}`) to a file under the local OSS root.

`Object` is URL-encoded UTF-8 on the wire (MPS InputFile), so it is percent-decoded once (`+` stays `+`: keys
sent raw, as OSS events deliver them after decoding, keep working unless they contain `%XX`). The object lives at
`<oss_root>/<Bucket>/<Object>`; `Location` names a region and is ignored. Anything that would leave the root —
`..` segments (also when percent-encoded), absolute keys, a bucket that is not a bucket name, symlinks pointing
outside — is refused with `InvalidParameter`, both at submission and again when the job runs (a symlink may have
changed in between).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from engine.errors import EmptyMedia, EngineError, MediaNotFound
from shared.contracts.mps import InputFile

# OSS bucket naming rule: 3–63 characters, lowercase letters, digits and hyphens, no hyphen at either end.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class InputRefused(EngineError):
    """The Input points outside the OSS root or is not a valid bucket/object name."""

    code = "InvalidParameter"


def object_key(raw: str) -> str:
    """The decoded object key, refused if it is empty, absolute or walks up with `..`."""
    key = unquote(raw)
    if not key or "\x00" in key:
        raise InputRefused('The specified parameter "Input.Object" is not valid: empty or contains NUL.')
    if key.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", key):
        raise InputRefused(f'The specified parameter "Input.Object" is not valid: {key!r} is an absolute path.')
    if any(part == ".." for part in re.split(r"[/\\]", key)):
        raise InputRefused(f'The specified parameter "Input.Object" is not valid: {key!r} leaves the bucket.')
    return key


def bucket_name(raw: str) -> str:
    if not _BUCKET.match(raw):
        raise InputRefused(
            f'The specified parameter "Input.Bucket" is not valid: {raw!r} is not an OSS bucket name '
            "(3-63 lowercase letters, digits or hyphens)."
        )
    return raw


def resolve_input(oss_root: Path | str, input_file: InputFile) -> Path:
    """The local path of `input_file`, which may not exist (yet). Raises `InputRefused`."""
    root = Path(os.path.realpath(oss_root))
    candidate = root / bucket_name(input_file.bucket) / object_key(input_file.object)
    real = Path(os.path.realpath(candidate))  # follows every symlink on the way, existing or not
    if real != root and root not in real.parents:
        raise InputRefused(
            f'The specified parameter "Input.Object" is not valid: {input_file.object!r} resolves outside the OSS root.'
        )
    return real


def input_file_url(input_file: InputFile) -> str:
    return f"oss://{input_file.bucket}/{unquote(input_file.object)}"


def open_input(oss_root: Path | str, input_file: InputFile) -> Path:
    """`resolve_input`, then check the object is there and not empty (what a job needs before decoding)."""
    path = resolve_input(oss_root, input_file)
    where = input_file_url(input_file)
    if not path.exists():
        raise MediaNotFound(f"The object {where} does not exist.")
    if not path.is_file():
        raise MediaNotFound(f"The object {where} is not a file.")
    if path.stat().st_size == 0:
        raise EmptyMedia(f"The object {where} is empty (0 bytes).")
    return path
