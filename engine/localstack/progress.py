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
    _done: dict[str, str] = field(default_factory=dict)  # key -> the job id (or etag, if skipped) already reported
    _flying: dict[str, str] = field(default_factory=dict)  # key -> etag still in flight
    _started: bool = False

    def _announced(self) -> dict[str, str]:
        path = Path(self.paths.state)  # type: ignore[attr-defined]
        if not path.exists():
            return {}
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute("SELECT key, etag FROM announced WHERE bucket = ?", (self.bucket,)).fetchall()
        except sqlite3.OperationalError:  # the stack has not created its tables yet
            return {}
        finally:
            db.close()
        return dict(rows)

    def _results(self) -> dict[str, ScreeningResult]:
        path = Path(self.paths.results)  # type: ignore[attr-defined]
        if not path.exists():
            return {}
        latest: dict[str, ScreeningResult] = {}
        for result in screening_results(SqliteStore(path), limit=500):
            latest.setdefault(result.upload, result)  # newest first
        return latest

    def poll(self) -> tuple[list[str], list[str]]:
        announced = self._announced()
        results = self._results()
        skipped = {s.key: s for s in skipped_uploads(self.paths.state) if s.bucket == self.bucket}  # type: ignore[attr-defined]
        if not self._started:
            # Already finished before we started watching: remember, do not report. The rest is in flight.
            self._started = True
            for key, etag in announced.items():
                result = results.get(key)
                if key in skipped and skipped[key].etag == etag:
                    self._done[key] = etag
                elif result is not None and result.verdict in FINAL:
                    self._done[key] = result.job_id
                else:
                    self._flying[key] = etag
            self._seen = dict(announced)
        for key, etag in announced.items():
            if self._seen.get(key) != etag:  # a new object, or a new version of one: its job is a new one
                self._flying[key] = etag
                previous = results.get(key)
                self._done[key] = previous.job_id if previous is not None else ""
        self._seen = dict(announced)

        done: list[str] = []
        live: list[str] = []
        for key, etag in sorted(self._flying.items()):
            result = results.get(key)
            mine = result is not None and result.job_id != self._done.get(key)
            if key in skipped and skipped[key].etag == etag:
                done.append(f"{key}: received → [yellow]skipped[/]: {skipped[key].reason}")
                self._done[key] = etag
            elif mine and result is not None and result.verdict in FINAL:
                done.append(f"{key}: received → submitted ({result.job_id}) → {_describe(result)}")
                self._done[key] = result.job_id
            elif mine and result is not None:
                live.append(f"{key}: received → submitted ({result.job_id}) → [dim]analysing…[/]")
                continue
            else:
                live.append(f"{key}: received → [dim]submitting…[/]")
                continue
            del self._flying[key]
        return done, live
