"""Verdict actions through the official SDKs (oss2, aliyun-mns-sdk) against the local stack's OSS-compatible
server and local MNS: object tag, quarantine copy, object ACL and the verdict message, and their reversal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest

from shared.ports import VerdictRecord
from shared.services.actions import ActionError, OssObjectActions
from shared.verdicts.policy import PolicyActions

from .servers import ActionServers, action_servers

KEY = "uploads/[draft] clip [red]x.mp4"


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ActionServers]:
    with action_servers(tmp_path) as wired:
        yield wired


def _record(bucket: str, verdict: str) -> VerdictRecord:
    return VerdictRecord(
        job_id="job-1",
        object_key=KEY,
        bucket=bucket,
        verdict="block",
        rule="full-copy",
        final_verdict=verdict,
        evidence={"items": [{"primary_key": "lib-a", "matched": 45.0, "upload_share": 0.75}]},
    )


def test_block_then_dismiss_through_oss2_and_mns(servers: ActionServers) -> None:
    bucket = servers.bucket()
    bucket.put_object(KEY, b"video bytes")
    keep = oss2.models.TaggingRule()
    keep.add("uploader", "ana")
    bucket.put_object_tagging(KEY, oss2.models.Tagging(keep))
    runner = servers.runner()

    record = runner.apply(_record(servers.bucket_name, "block"), PolicyActions())
    assert bucket.get_object_tagging(KEY).tag_set.tagging_rule == {"uploader": "ana", "fpscreen-verdict": "block"}
    assert bucket.get_object(f"quarantine/{KEY}").read() == b"video bytes"
    assert bucket.get_object_acl(KEY).acl == "private"
    (message,) = servers.verdict_messages(1)
    assert (message["Verdict"], message["Object"], message["MatchedItem"]) == ("block", KEY, "lib-a")
    assert record.actions == {
        "tag": "block",
        "quarantine": f"quarantine/{KEY}",
        "acl": "private",
        "published": "block",
        "message_id": record.actions["message_id"],
    }

    record.final_verdict = "allow"
    record = runner.apply(record, PolicyActions())
    assert bucket.get_object_tagging(KEY).tag_set.tagging_rule["fpscreen-verdict"] == "allow"
    assert not bucket.object_exists(f"quarantine/{KEY}")
    assert bucket.get_object_acl(KEY).acl == "default"
    (message,) = servers.verdict_messages(1)
    assert message["Verdict"] == "allow" and record.actions["quarantine"] == ""


def test_a_missing_object_is_a_lasting_error_and_a_dead_endpoint_a_transient_one(servers: ActionServers) -> None:
    creds = servers.credentials
    objects = OssObjectActions(servers.oss.endpoint, lambda: creds)
    with pytest.raises(ActionError) as missing:
        objects.tag(servers.bucket_name, "uploads/none.mp4", "fpscreen-verdict", "block")
    assert not missing.value.retryable
    dead = OssObjectActions("http://127.0.0.1:9", lambda: creds)  # the discard port: nothing listens
    with pytest.raises(ActionError) as unreachable:
        dead.set_acl(servers.bucket_name, KEY, "private")
    assert unreachable.value.retryable
