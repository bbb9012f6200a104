"""The verdict tests run on both store backends (the store suite's fixtures) with recording action doubles."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.store.conftest import fake_ots, sqlite_path, store

__all__ = ["RecordingObjects", "RecordingPublisher", "fake_ots", "sqlite_path", "store"]


@dataclass
class RecordingObjects:
    """`ObjectActions` in memory: tags, copies and ACLs per (bucket, key); `fail` makes the next calls fail."""

    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    objects: set[tuple[str, str]] = field(default_factory=set)
    acls: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail: list[Exception] = field(default_factory=list)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail:
            raise self.fail.pop(0)

    def tag(self, bucket: str, key: str, name: str, value: str) -> None:
        self._call("tag")
        self.tags.setdefault((bucket, key), {})[name] = value

    def copy(self, bucket: str, key: str, target_key: str) -> None:
        self._call("copy")
        self.objects.add((bucket, target_key))

    def delete(self, bucket: str, key: str) -> None:
        self._call("delete")
        self.objects.discard((bucket, key))

    def set_acl(self, bucket: str, key: str, acl: str) -> None:
        self._call("acl")
        self.acls[(bucket, key)] = acl


@dataclass
class RecordingPublisher:
    messages: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, body: str, tag: str) -> str:
        self.messages.append((body, tag))
        return f"msg-{len(self.messages)}"
