"""Uploads the pipeline will not screen, and why: recorded when they arrive so `upload` and `results` can say so.

In the cloud such an object simply never reaches MPS (no OSS trigger fires for it, or `submit_on_upload` finds no
route and logs one INFO line). Locally the reason is worked out from the same template: its OSS triggers (prefix,
suffix filters) and the routes (`FPSCREEN_ROUTES`) of the functions they invoke.

Interface for the results view: `skipped_uploads(path_of_stack_db) -> list[SkippedUpload]`, newest first; the
table `skipped_uploads` lives in `<data-dir>/stack.db` beside the local FC's state.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from engine.localstack.bucket import StoredObject
from engine.template import Template
from shared.config import ENV_ROUTES, Route
from shared.contracts.modalities import suffix_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS skipped_uploads (
    bucket TEXT NOT NULL, key TEXT NOT NULL, etag TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (bucket, key)
)
"""


@dataclass(frozen=True, slots=True)
class SkippedUpload:
    bucket: str
    key: str
    etag: str
    reason: str  # one line for people, e.g. "no route for .gif files under uploads/ (routed: .mp4 .mov …)"
    at: float  # unix time it arrived


def _routes(template: Template, function: str) -> list[Route] | None:
    """The function's routes, or None when it has none configured (it then routes nothing we can judge)."""
    raw = template.function(function).environment.get(ENV_ROUTES, "").strip()
    if not raw:
        return None
    try:
        return [Route.model_validate(item) for item in json.loads(raw)]
    except (ValueError, ValidationError):
        return None  # the function itself will report a broken configuration


def _suffix_list(suffixes: list[str], limit: int = 40) -> str:
    shown = " ".join(suffixes[:limit])
    return shown + (" …" if len(suffixes) > limit else "")


def skip_reason(template: Template, key: str, bucket: str) -> str | None:
    """Why this key will not be screened, or None when some route takes it."""
    fired = template.oss_triggers_for("ObjectCreated:PutObject", key, bucket=bucket)
    if not fired:
        where = sorted({t.prefix or "(any key)" for t in template.oss_triggers() if t.bucket == bucket})
        return f"no OSS trigger fires for this key: upload under {', '.join(where) or 'nothing (no trigger)'}"
    routes: list[Route] = []
    for trigger in fired:
        configured = _routes(template, trigger.function)
        if configured is None or any(route.matches(key) for route in configured):
            return None
        routes.extend(configured)
    here = [route for route in routes if key.startswith(route.prefix)]
    if here:
        accepted = sorted({suffix for route in here for suffix in route.suffixes})
        return f"no route for {suffix_of(key) or 'suffix-less'} files here (routed: {_suffix_list(accepted)})"
    prefixes = sorted({route.prefix or "(any key)" for route in routes})
    return f"no route for this key: routed prefixes are {', '.join(prefixes)}"


class SkippedLog:
    """The `skipped_uploads` table; each (bucket, key) keeps its latest version's reason."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute(_SCHEMA)

    def record(self, bucket: str, key: str, etag: str, reason: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO skipped_uploads (bucket, key, etag, reason, at) VALUES (?, ?, ?, ?, ?)",
            (bucket, key, etag, reason, time.time()),
        )

    def forget(self, bucket: str, key: str) -> None:
        """A later version of the key that is routed (only possible after a template change) is no longer skipped."""
        self._db.execute("DELETE FROM skipped_uploads WHERE bucket = ? AND key = ?", (bucket, key))

    def list(self, limit: int = 1000) -> list[SkippedUpload]:
        rows = self._db.execute(
            "SELECT bucket, key, etag, reason, at FROM skipped_uploads ORDER BY at DESC LIMIT ?", (limit,)
        )
        return [SkippedUpload(*row) for row in rows]

    def close(self) -> None:
        self._db.close()


def skipped_uploads(stack_db: Path, limit: int = 1000) -> list[SkippedUpload]:
    """What the results view lists as skipped (empty when no stack has run here)."""
    if not Path(stack_db).exists():
        return []
    log = SkippedLog(stack_db)
    try:
        return log.list(limit)
    finally:
        log.close()


def record_skip(stack_db: Path, template: Template, obj: StoredObject) -> str | None:
    """Record (or clear) a freshly announced object's skip reason; returns the reason."""
    reason = skip_reason(template, obj.key, obj.bucket)
    log = SkippedLog(stack_db)
    try:
        if reason is None:
            log.forget(obj.bucket, obj.key)
        else:
            log.record(obj.bucket, obj.key, obj.etag, reason)
    finally:
        log.close()
    return reason
