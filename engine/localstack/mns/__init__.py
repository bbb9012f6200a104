"""A local MNS endpoint the unmodified `aliyun-mns-sdk` talks to: REST + XML over loopback, `MNS` signatures checked.

    with MnsServer(tmp_path / "mns.db", credentials={"ak": "sk"}) as mns:
        account = mns.account()                      # == mns.account.Account(mns.endpoint, "ak", "sk")
        queue = account.get_queue("jobs")
        queue.create(QueueMeta())
        queue.send_message(Message("hello"))         # the SDK base64-encodes this body...
        queue.receive_message(wait_seconds=5)        # ...and base64-decodes it back (bytes)
        mns.add_local_subscriber("events", "store-results", handler, content_format="JSON")

Layout (one emulator split by concern, as LocalStack does): `protocol` (XML codec, errors, notification
bodies), `auth` (MNS signatures), `store` (models + SQLite, no wire format), `handlers` (the operations),
`push` (push workers, retry policy), `server` (waitress transport, lifecycle, `MnsSettings`).

State lives in SQLite (`store`), so messages, subscriptions and pending pushes survive a restart on the same
file. Covered: queues (create/attributes/delete/list, send + batch, receive + batch with long poll, peek,
delete + batch, change visibility), topics (create/attributes/delete/list, publish with MessageTag) and
subscriptions (subscribe/attributes/unsubscribe/list; queue endpoints `acs:mns:<region>:<account>:queues/<q>`
only; FilterTag, NotifyContentFormat XML|JSON|SIMPLIFIED and NotifyStrategy honoured).

Base64, the one trap (reference §6): `Queue` objects of the SDK base64-encode on send and base64-decode on
receive/peek by default. A topic pushes the published body into a queue *as is* (SIMPLIFIED) or wrapped in the
XML/JSON notification, never base64, exactly like real MNS (unless the publisher used `Base64TopicMessage`).
A consumer of a topic-fed queue must therefore call `queue.set_encoding(False)`; with the default it gets
`binascii.Error` or garbage. Its `message_body` is then `str`, while with encoding on it is `bytes`.

`add_local_subscriber` stands in for an FC "MNS topic" trigger: the subscription is stored like any other (its
pending pushes are rows in SQLite), a push thread calls `callback(event_bytes)` with the FC event (JSON: the
notification object, `Message` = raw body; STREAM: the body bytes), retries on exception per NotifyStrategy
(BACKOFF_RETRY: 3 retries 10-20 s apart, scaled down via `RetryPolicy`) and, once retries are exhausted, moves
the message to the dead letters (`dead_letters(topic)`). A message is deleted only after the callback returns,
so a restart mid-delivery re-delivers it: callbacks must be idempotent, as FC handlers are.
"""

from engine.localstack.mns.auth import authenticate, sign, string_to_sign
from engine.localstack.mns.push import RetryPolicy
from engine.localstack.mns.server import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    LOCAL_ACCESS_KEY_ID,
    LOCAL_ACCESS_KEY_SECRET,
    MnsServer,
    MnsSettings,
)
from engine.localstack.mns.store import DeadLetter, MnsError, MnsStore

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "LOCAL_ACCESS_KEY_ID",
    "LOCAL_ACCESS_KEY_SECRET",
    "DeadLetter",
    "MnsError",
    "MnsServer",
    "MnsSettings",
    "MnsStore",
    "RetryPolicy",
    "authenticate",
    "sign",
    "string_to_sign",
]
