"""The local stack's OSS-compatible server and local MNS, wired for verdict actions: a media bucket, the verdict
topic and a queue subscribed to it (what a downstream system would read)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mns.account import Account
from mns.queue import Queue, QueueMeta
from mns.subscription import SubscriptionMeta
from mns.topic import TopicMeta

from engine.localstack.mns import MnsServer, RetryPolicy
from engine.localstack.oss_compat import OssCompatServer
from shared.credentials import Credentials
from shared.retry import RetryPolicy as ActionRetry
from shared.services.actions import ActionRunner, MnsVerdictPublisher, OssObjectActions

AK, SK = "test-ak", "test-secret"
TOPIC = "fpscreen-verdicts"
FAST = RetryPolicy(backoff_delay=(0.05, 0.05), exponential_first=0.05, exponential_cap=0.2)


@dataclass
class ActionServers:
    oss: OssCompatServer
    mns: MnsServer
    bucket_name: str
    sink: Queue

    @property
    def credentials(self) -> Credentials:
        return Credentials(AK, SK)

    def bucket(self) -> Any:
        return self.oss.bucket(self.bucket_name, AK, SK)

    def runner(self) -> ActionRunner:
        creds = self.credentials
        return ActionRunner.with_policy(
            OssObjectActions(self.oss.endpoint, lambda: creds),
            MnsVerdictPublisher(self.mns.endpoint, TOPIC, lambda: creds),
            ActionRetry(max_attempts=3, base_delay=0.05, max_delay=0.1, deadline=10.0),
        )

    def verdict_messages(self, expected: int) -> list[dict[str, Any]]:
        """Wait (long poll, no sleeps) until `expected` verdict messages reached the subscribed queue."""
        bodies: list[dict[str, Any]] = []
        while len(bodies) < expected:
            for message in self.sink.batch_receive_message(16, wait_seconds=5):
                bodies.append(json.loads(message.message_body))
                self.sink.delete_message(message.receipt_handle)
        return bodies


@contextmanager
def action_servers(tmp_path: Path, extra_credentials: dict[str, str] | None = None) -> Iterator[ActionServers]:
    """`extra_credentials`: more AccessKeyId → secret pairs the local MNS accepts (the functions' own keys)."""
    keys = {AK: SK, **(extra_credentials or {})}
    with OssCompatServer() as oss, MnsServer(tmp_path / "mns.db", credentials=keys, retry_policy=FAST) as mns:
        name = f"media-{uuid.uuid4().hex[:8]}"  # moto's buckets are process-global
        oss.bucket(name, AK, SK).create_bucket()
        account = Account(mns.endpoint, AK, SK)
        account.get_topic(TOPIC).create(TopicMeta())
        sink = account.get_queue("verdict-sink")
        sink.create(QueueMeta())
        sink.set_encoding(False)  # topic pushes are not base64
        account.get_topic(TOPIC).get_subscription("sink").subscribe(
            SubscriptionMeta(mns.queue_endpoint("verdict-sink"), notify_content_format="SIMPLIFIED")
        )
        yield ActionServers(oss, mns, name, sink)
