"""What `fpscreen up` shows while it runs: each upload's way through the pipeline, received → submitted → result.

Read from the stack's own records, so uploads from any process (`fpscreen upload`, files dropped into the bucket
directory, SDK code) show up: `announced` in stack.db (received), the job rows in results.db (submitted, then the
verdict) and the skipped log (never submitted, with the reason).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from engine.localstack.results import ScreeningResult, screening_results
from engine.localstack.skipped import skipped_uploads
from shared.store.sqlite import SqliteStore

FINAL = {"copy": "bold red", "clean": "green", "failed": "yellow", "stored": "cyan"}


def _describe(result: ScreeningResult) -> str:
    style = FINAL[result.verdict]
    text = f"[{style}]{result.verdict}[/]"
    if result.verdict == "copy" and result.matches:
        best = result.matches[0]
        text += f" of {best.library_object or best.primary_key} ({best.similarity:.2f})"
    elif result.verdict == "failed":
        text += f" {result.code}"
    return text


@dataclass
class UploadProgress:
    """Polled by `fpscreen up`: `poll()` gives the lines for uploads that just finished, and one live line for
    each upload still in flight. What was already finished when the stack started is not repeated."""

    paths: object  # StackPaths (kept loose: this module must not import the stack)
    bucket: str
    _seen: dict[str, str] = field(default_factory=dict)  # key -> etag announced when we last looked
    _flying: dict[str, tuple[str, float]] = field(default_factory=dict)  # key -> (etag, time it was written)
    _started: bool = False

    def _announced(self) -> dict[str, tuple[str, float]]:
        path = Path(self.paths.state)  # type: ignore[attr-defined]
        if not path.exists():
            return {}
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute("SELECT key, etag, mtime_ns FROM announced WHERE bucket = ?", (self.bucket,)).fetchall()
        except sqlite3.OperationalError:  # the stack has not created its tables yet
            return {}
        finally:
            db.close()
        return {key: (etag, mtime_ns / 1e9) for key, etag, mtime_ns in rows}

    def _results(self) -> dict[str, tuple[ScreeningResult, float]]:
        """Each key's newest job, with when it was submitted."""
        path = Path(self.paths.results)  # type: ignore[attr-defined]
        if not path.exists():
            return {}
        store = SqliteStore(path)
        try:
            submitted = {job.job_id: job.submitted_at for job in store.recent_jobs(500)}
            latest: dict[str, tuple[ScreeningResult, float]] = {}
            for result in screening_results(store, limit=500):  # newest first
                latest.setdefault(result.upload, (result, submitted.get(result.job_id, 0.0)))
            return latest
        finally:
            store.close()

    def poll(self) -> tuple[list[str], list[str]]:
        announced = self._announced()
        results = self._results()
        skipped = {s.key: s for s in skipped_uploads(self.paths.state) if s.bucket == self.bucket}  # type: ignore[attr-defined]
        for key, (etag, written) in announced.items():
            if self._seen.get(key) != etag:  # new to us: a new object, a new version, or everything at the start
                self._flying[key] = (etag, written)
        self._seen = {key: etag for key, (etag, _) in announced.items()}

        done: list[str] = []
        live: list[str] = []
        for key, (etag, written) in sorted(self._flying.items()):
            found = results.get(key)
            # A job belongs to this version if submitted after the object was written (1 s for clock steps).
            result = found[0] if found is not None and found[1] >= written - 1.0 else None
            if key in skipped and skipped[key].etag == etag:
                line = f"{key}: received → [yellow]skipped[/]: {skipped[key].reason}"
            elif result is not None and result.verdict in FINAL:
                line = f"{key}: received → submitted ({result.job_id}) → {_describe(result)}"
            else:
                if result is not None:
                    live.append(f"{key}: received → submitted ({result.job_id}) → [dim]analysing…[/]")
                else:
                    live.append(f"{key}: received → [dim]submitting…[/]")
                continue
            del self._flying[key]
            if self._started:  # finished before we started watching: not news
                done.append(line)
        self._started = True
        return done, live
