"""A directory-backed OSS bucket: `<oss-root>/<bucket>/<key>`, which emits FC OSS trigger events.

Objects arrive two ways: `put_file` (what `fpscreen upload` does) and files dropped straight into the
directory (found by `scan`). The stack state (`engine.localstack.state`) remembers every object version
already announced, so a restart neither loses an upload that never got its event nor announces one twice.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

_TMP_PREFIX = ".fpscreen-upload-"


class BucketError(ValueError):
    pass


def validate_key(key: str) -> str:
    """OSS keys are relative, never climb out of the bucket, and are at most 1023 bytes."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise BucketError(f"invalid object key {key!r}")
    if len(key.encode("utf-8")) > 1023:
        raise BucketError("object key longer than 1023 bytes")
    if any(part in ("..", ".") for part in key.split("/")):
        raise BucketError(f"object key {key!r} must not contain '.' or '..' segments")
    return key


def file_etag(path: Path) -> str:
    """OSS's ETag of a simple upload: the uppercase hex MD5 of the content."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest().upper()


@dataclass(frozen=True, slots=True)
class StoredObject:
    bucket: str
    key: str
    etag: str
    size: int


def oss_event(
    obj: StoredObject, *, region: str, account_id: str, event_name: str = "ObjectCreated:PutObject"
) -> dict[str, Any]:
    """One FC OSS trigger event (reference §3), for one object."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    request_id = hashlib.sha1(f"{obj.bucket}/{obj.key}/{obj.etag}".encode(), usedforsecurity=False).hexdigest()
    return {
        "events": [
            {
                "eventName": event_name,
                "eventSource": "acs:oss",
                "eventTime": stamp,
                "eventVersion": "1.0",
                "oss": {
                    "bucket": {
                        "arn": f"acs:oss:{region}:{account_id}:{obj.bucket}",
                        "name": obj.bucket,
                        "ownerIdentity": account_id,
                    },
                    "object": {
                        "deltaSize": obj.size,
                        "eTag": obj.etag,
                        # URL-encoded: consumers decode it (whether FC encodes is undocumented).
                        "key": quote(obj.key, safe="/"),
                        "size": obj.size,
                    },
                    "ossSchemaVersion": "1.0",
                    "ruleId": "fpscreen-local",
                },
                "region": region,
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"requestId": request_id[:24].upper()},
                "userIdentity": {"principalId": account_id},
            }
        ]
    }


class LocalBucket:
    """File operations only; what has been announced is the stack state's business (`engine.localstack.state`)."""

    def __init__(self, oss_root: Path, name: str) -> None:
        if not name or "/" in name or name in (".", ".."):
            raise BucketError(f"invalid bucket name {name!r}")
        self.name = name
        self.root = Path(oss_root).resolve() / name
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if self.root not in path.parents:
            raise BucketError(f"object key {key!r} escapes the bucket")
        return path

    def put_file(self, source: Path, key: str) -> tuple[StoredObject, int]:
        """Copy `source` in atomically (temp file + rename), as an OSS PutObject would appear.

        Returns the object and its mtime (ns), which the stack state keeps to skip re-hashing it on scans."""
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp_name)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        stat = target.stat()
        return StoredObject(self.name, key, file_etag(target), stat.st_size), stat.st_mtime_ns

    def scan(self, known: dict[str, tuple[int, int]], *, settle_seconds: float = 0.5) -> list[tuple[StoredObject, int]]:
        """Objects whose (size, mtime) differ from `known` (key → what was announced).

        A file modified less than `settle_seconds` ago may still be being copied in: it waits for the next scan.
        """
        horizon_ns = time.time_ns() - int(settle_seconds * 1e9)
        fresh: list[tuple[StoredObject, int]] = []
        for path in sorted(self.root.rglob("*")):
            if not path.is_file() or path.name.startswith(_TMP_PREFIX):
                continue
            key = path.relative_to(self.root).as_posix()
            stat = path.stat()
            if known.get(key) == (stat.st_size, stat.st_mtime_ns) or stat.st_mtime_ns > horizon_ns:
                continue  # unchanged since announced (no re-hash), or still settling
            fresh.append((StoredObject(self.name, key, file_etag(path), stat.st_size), stat.st_mtime_ns))
        return fresh
