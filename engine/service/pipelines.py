"""MPS pipelines ("queues"): a name, a state, a Speed and the `NotifyConfig` finished jobs are announced to."""

from __future__ import annotations

import json
import uuid

from engine.service.db import ServiceDb, utc_text
from engine.service.models import NotifyConfig, Pipeline

# MPS reports a per-pipeline quota; locally there is none to allocate, so a fixed figure keeps the shape.
DEFAULT_QUOTA_ALLOCATE = 10

_COLUMNS = "id, name, state, speed, speed_level, role, notify_config, created_at"


def _pipeline(row: tuple) -> Pipeline:
    notify = NotifyConfig.model_validate(json.loads(row[6])) if row[6] else NotifyConfig()
    return Pipeline(
        id=row[0],
        name=row[1],
        state=row[2],
        speed=row[3],
        speed_level=row[4],
        role=row[5],
        quota_allocate=DEFAULT_QUOTA_ALLOCATE,
        notify_config=notify,
        creation_time=row[7],
    )


def _notify_json(notify: NotifyConfig | None) -> str | None:
    if notify is None:
        return None
    wire = notify.to_wire()
    return json.dumps(wire, ensure_ascii=False) if wire else None


class PipelineStore:
    def __init__(self, db: ServiceDb) -> None:
        self._db = db

    def add(
        self,
        name: str,
        *,
        speed: str = "Standard",
        speed_level: int | None = None,
        role: str | None = None,
        notify_config: NotifyConfig | None = None,
    ) -> Pipeline:
        pipeline_id = uuid.uuid4().hex
        with self._db.write() as db:
            db.execute(
                f"INSERT INTO pipelines ({_COLUMNS}) VALUES (?, ?, 'Active', ?, ?, ?, ?, ?)",
                (pipeline_id, name, speed, speed_level, role, _notify_json(notify_config), utc_text()),
            )
        pipeline = self.get(pipeline_id)
        assert pipeline is not None
        return pipeline

    def update(
        self,
        pipeline_id: str,
        *,
        name: str,
        state: str,
        notify_config: NotifyConfig | None = None,
        role: str | None = None,
    ) -> Pipeline | None:
        """Rename, pause/resume, re-point notifications. `notify_config`/`role` None keep the current ones
        (an empty NotifyConfig `{}` clears it). None if the pipeline does not exist."""
        with self._db.write() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM pipelines WHERE id = ?", (pipeline_id,)).fetchone()
            if row is None:
                return None
            notify = row[6] if notify_config is None else _notify_json(notify_config)
            db.execute(
                "UPDATE pipelines SET name = ?, state = ?, notify_config = ?, role = ? WHERE id = ?",
                (name, state, notify, row[5] if role is None else role, pipeline_id),
            )
        return self.get(pipeline_id)

    def get(self, pipeline_id: str) -> Pipeline | None:
        row = self._db.connection().execute(f"SELECT {_COLUMNS} FROM pipelines WHERE id = ?", (pipeline_id,)).fetchone()
        return _pipeline(row) if row else None

    def get_many(self, pipeline_ids: list[str]) -> dict[str, Pipeline]:
        if not pipeline_ids:
            return {}
        marks = ",".join("?" * len(pipeline_ids))
        rows = self._db.connection().execute(f"SELECT {_COLUMNS} FROM pipelines WHERE id IN ({marks})", pipeline_ids)
        return {row[0]: _pipeline(row) for row in rows}

    def search(self, state: str | None, *, offset: int, limit: int) -> tuple[int, list[Pipeline]]:
        """(total matching, one page) in creation order; `state` None means all."""
        where, args = ("WHERE state = ?", [state]) if state else ("", [])
        with self._db.read() as db:
            total = int(db.execute(f"SELECT COUNT(*) FROM pipelines {where}", args).fetchone()[0])
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM pipelines {where} ORDER BY seq LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return total, [_pipeline(row) for row in rows]
