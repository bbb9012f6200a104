"""A directory-backed OSS bucket: `<oss-root>/<bucket>/<key>`, which emits FC OSS trigger events.

Objects arrive two ways: `put_file` (what `fpscreen upload` does) and files dropped straight into the
directory (found by `scan`). A SQLite journal remembers every object version already announced, so a restart
neither loses an upload that never got its event nor announces one twice.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
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
    if any(part in ("..", ".") for part in PurePosixPath(key).parts):
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
    def __init__(self, oss_root: Path, name: str, *, journal_path: Path) -> None:
        if not name or "/" in name or name in (".", ".."):
            raise BucketError(f"invalid bucket name {name!r}")
        self.name = name
        self.root = Path(oss_root).resolve() / name
        self.root.mkdir(parents=True, exist_ok=True)
        self._journal_path = journal_path
        self._lock = threading.Lock()
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS announced (bucket TEXT, key TEXT, etag TEXT, size INTEGER,"
                " mtime_ns INTEGER, PRIMARY KEY (bucket, key))"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self._journal_path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()

    def path_of(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if self.root not in path.parents:
            raise BucketError(f"object key {key!r} escapes the bucket")
        return path

    def put_file(self, source: Path, key: str) -> StoredObject:
        """Copy `source` in atomically (temp file + rename), as an OSS PutObject would appear."""
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
        return StoredObject(self.name, key, file_etag(target), stat.st_size)

    def claim_announcement(self, obj: StoredObject, mtime_ns: int) -> bool:
        """Record that `obj` (this version) has had its event; False if it already had."""
        with self._lock, self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT etag FROM announced WHERE bucket = ? AND key = ?", (obj.bucket, obj.key)
            ).fetchone()
            if row is not None and row[0] == obj.etag:
                db.execute(
                    "UPDATE announced SET mtime_ns = ? WHERE bucket = ? AND key = ?", (mtime_ns, obj.bucket, obj.key)
                )
                db.execute("COMMIT")
                return False
            db.execute(
                "INSERT OR REPLACE INTO announced (bucket, key, etag, size, mtime_ns) VALUES (?, ?, ?, ?, ?)",
                (obj.bucket, obj.key, obj.etag, obj.size, mtime_ns),
            )
            db.execute("COMMIT")
            return True

    def scan(self, *, settle_seconds: float = 0.5) -> list[tuple[StoredObject, int]]:
        """Objects in the directory whose current version has not been announced yet.

        A file modified less than `settle_seconds` ago may still be being copied in: it waits for the next scan.
        """
        horizon_ns = time.time_ns() - int(settle_seconds * 1e9)
        with self._db() as db:
            known = {
                key: (size, mtime_ns)
                for key, size, mtime_ns in db.execute(
                    "SELECT key, size, mtime_ns FROM announced WHERE bucket = ?", (self.name,)
                )
            }
        fresh: list[tuple[StoredObject, int]] = []
        for path in sorted(self.root.rglob("*")):
            if not path.is_file() or path.name.startswith(_TMP_PREFIX):
                continue
            key = path.relative_to(self.root).as_posix()
            stat = path.stat()
            if known.get(key) == (stat.st_size, stat.st_mtime_ns):
                continue  # unchanged since announced: skip hashing
            if stat.st_mtime_ns > horizon_ns:
                continue
            fresh.append((StoredObject(self.name, key, file_etag(path), stat.st_size), stat.st_mtime_ns))
        return fresh
