"""Verdict actions: what a verdict does to the uploaded object and who hears about it.

- tag the OSS object `fpscreen-verdict=<verdict>` (other tags are kept);
- copy it under a quarantine prefix (and delete that copy when a later verdict no longer quarantines);
- make it private (object ACL `private`), or give it back the bucket's ACL (`default`);
- publish a verdict message to an MNS topic for downstream systems.

Idempotent: `VerdictRecord.actions` records what was applied for which final verdict, so a repeated run (an FC
retry, a re-evaluation that changes nothing) does nothing, and a changed verdict redoes exactly the steps that
differ. Each step is retried under the pipeline's one backoff (`shared.retry`); a step that still fails is
recorded in `actions["errors"]` and raised, so the invocation fails and is retried like any other.
The adapters use the official SDKs, `oss2` and `aliyun-mns-sdk`, imported when an adapter is built.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.credentials import Credentials
from shared.log import get_logger
from shared.ports import VerdictRecord
from shared.retry import Retrier, RetryPolicy
from shared.verdicts.policy import PolicyActions

log = get_logger("fpscreen.actions")

VERDICT_TAG = "fpscreen-verdict"
ACL_PRIVATE = "private"
ACL_DEFAULT = "default"  # OSS: inherit the bucket's ACL


class ObjectActions(Protocol):
    def tag(self, bucket: str, key: str, name: str, value: str) -> None:
        """Set one object tag, keeping the object's other tags."""
        ...

    def copy(self, bucket: str, key: str, target_key: str) -> None: ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete an object; deleting a missing one is not an error."""
        ...

    def set_acl(self, bucket: str, key: str, acl: str) -> None: ...


class VerdictPublisher(Protocol):
    def publish(self, body: str, tag: str) -> str:
        """Publish one message; returns its message id."""
        ...


class ActionError(RuntimeError):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def verdict_message(record: VerdictRecord) -> dict[str, Any]:
    """The message downstream systems receive (JSON): which object, which verdict, why, and who decided."""
    best = (record.evidence.get("items") or [{}])[0]
    return {
        "JobId": record.job_id,
        "Bucket": record.bucket,
        "Object": record.object_key,
        "Verdict": record.final_verdict,
        "PolicyVerdict": record.verdict,
        "Rule": record.rule,
        "Policy": record.policy_name,
        "PolicyVersion": record.policy_version,
        "ReviewDecision": record.review_decision,
        "Reviewer": record.reviewer,
        "MatchedItem": best.get("primary_key", ""),
        "MatchedLength": best.get("matched", 0.0),
        "UploadShare": best.get("upload_share"),
    }


@dataclass
class ActionRunner:
    objects: ObjectActions | None
    publisher: VerdictPublisher | None
    retrier: Retrier

    @classmethod
    def with_policy(
        cls,
        objects: ObjectActions | None,
        publisher: VerdictPublisher | None,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> ActionRunner:
        retry = policy or RetryPolicy(max_attempts=4, base_delay=0.2, max_delay=2.0, deadline=20.0)
        return cls(objects, publisher, Retrier(retry) if sleep is None else Retrier(retry, sleep=sleep))

    def _run(self, label: str, step: Callable[[], object]) -> None:
        self.retrier.call(step, label=label)

    def apply(self, record: VerdictRecord, actions: PolicyActions) -> VerdictRecord:
        """Bring the object and the topic in line with `record.final_verdict`; returns the record with its
        `actions` updated (the caller stores it). Steps already done for this verdict are skipped."""
        verdict = record.final_verdict
        done: dict[str, Any] = dict(record.actions)
        done.pop("errors", None)
        bucket, key = record.bucket, record.object_key
        try:
            if self.objects is not None and bucket and key:
                objects = self.objects
                if actions.tag and done.get("tag") != verdict:
                    self._run("tag", lambda: objects.tag(bucket, key, VERDICT_TAG, verdict))
                    done["tag"] = verdict
                want_copy = actions.quarantine_prefix and verdict in actions.quarantine_on
                copied = str(done.get("quarantine") or "")
                if want_copy and not copied:
                    target = f"{actions.quarantine_prefix}{key}"
                    self._run("quarantine", lambda: objects.copy(bucket, key, target))
                    done["quarantine"] = target
                elif not want_copy and copied:
                    self._run("unquarantine", lambda: objects.delete(bucket, copied))
                    done["quarantine"] = ""
                acl = ACL_PRIVATE if verdict in actions.private_on else ACL_DEFAULT
                if done.get("acl", ACL_DEFAULT) != acl:
                    self._run("acl", lambda: objects.set_acl(bucket, key, acl))
                    done["acl"] = acl
            if self.publisher is not None and verdict in actions.publish_on and done.get("published") != verdict:
                publisher = self.publisher
                body = json.dumps(verdict_message(record), ensure_ascii=False, sort_keys=True)
                message_id: list[str] = []
                self._run("publish", lambda: message_id.append(publisher.publish(body, verdict)))
                done["published"] = verdict
                done["message_id"] = message_id[-1]
        except Exception as exc:
            done["errors"] = f"{type(exc).__name__}: {exc}"
            record.actions = done
            log.error("verdict action failed", extra={"job_id": record.job_id, "error": done["errors"]})
            raise
        record.actions = done
        log.info("verdict actions applied", extra={"job_id": record.job_id, "verdict": verdict, "actions": done})
        return record


# ------------------------------------------------------------------------------------------ adapters


def _oss_retryable(exc: BaseException) -> bool:
    import oss2

    if isinstance(exc, oss2.exceptions.RequestError):  # transport: connection reset, timeout
        return True
    status = getattr(exc, "status", 0)
    return isinstance(exc, oss2.exceptions.OssError) and (status >= 500 or status == 429)


class OssObjectActions:
    """`ObjectActions` through `oss2`, one `oss2.Bucket` per bucket name. Credentials may rotate (STS): the
    source is read for every bucket handle."""

    def __init__(self, endpoint: str, credentials: Callable[[], Credentials]) -> None:
        self._endpoint = endpoint
        self._credentials = credentials

    def _bucket(self, name: str) -> Any:
        import oss2

        creds = self._credentials()
        if creds.security_token:
            auth: Any = oss2.StsAuth(creds.access_key_id, creds.access_key_secret, creds.security_token)
        else:
            auth = oss2.Auth(creds.access_key_id, creds.access_key_secret)
        return oss2.Bucket(auth, self._endpoint, name)

    def _call(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception as exc:
            raise ActionError(f"{type(exc).__name__}: {exc}", retryable=_oss_retryable(exc)) from exc

    def tag(self, bucket: str, key: str, name: str, value: str) -> None:
        import oss2

        handle = self._bucket(bucket)

        def put() -> None:
            rule = oss2.models.TaggingRule()
            for tag_key, tag_value in handle.get_object_tagging(key).tag_set.tagging_rule.items():
                rule.add(tag_key, tag_value)
            rule.add(name, value)
            handle.put_object_tagging(key, oss2.models.Tagging(rule))

        self._call(put)

    def copy(self, bucket: str, key: str, target_key: str) -> None:
        handle = self._bucket(bucket)
        self._call(lambda: handle.copy_object(bucket, key, target_key))

    def delete(self, bucket: str, key: str) -> None:
        handle = self._bucket(bucket)
        self._call(lambda: handle.delete_object(key))

    def set_acl(self, bucket: str, key: str, acl: str) -> None:
        handle = self._bucket(bucket)
        self._call(lambda: handle.put_object_acl(key, acl))

    # Read and write whole objects (submit_on_upload converts subtitles to ASR JSON next to the upload).
    def read(self, bucket: str, key: str) -> bytes:
        handle = self._bucket(bucket)
        try:
            return bytes(handle.get_object(key).read())
        except Exception as exc:
            raise ActionError(f"{type(exc).__name__}: {exc}", retryable=_oss_retryable(exc)) from exc

    def write(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        handle = self._bucket(bucket)
        self._call(lambda: handle.put_object(key, data, headers={"Content-Type": content_type}))


# MNS error codes that say "try again" (the SDK's server exception carries the code, not the HTTP status).
_MNS_RETRYABLE = frozenset({"InternalError", "ServiceUnavailable", "ServerBusy", "Throttling", "TimeExpired"})


class MnsVerdictPublisher:
    """`VerdictPublisher` on an MNS topic through `aliyun-mns-sdk`."""

    def __init__(self, endpoint: str, topic: str, credentials: Callable[[], Credentials]) -> None:
        self._endpoint = endpoint
        self._topic = topic
        self._credentials = credentials

    def publish(self, body: str, tag: str) -> str:
        from mns.account import Account
        from mns.mns_exception import MNSClientNetworkException, MNSServerException
        from mns.topic import TopicMessage

        creds = self._credentials()
        account = Account(self._endpoint, creds.access_key_id, creds.access_key_secret, creds.security_token or "")
        try:
            return str(account.get_topic(self._topic).publish_message(TopicMessage(body, tag)).message_id)
        except MNSClientNetworkException as exc:
            raise ActionError(f"MNS: {exc}", retryable=True) from exc
        except MNSServerException as exc:
            retryable = exc.type in _MNS_RETRYABLE
            raise ActionError(f"MNS {exc.type}: {exc.message}", retryable=retryable) from exc
