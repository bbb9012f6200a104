"""`fpscreen up`: the whole product on one machine, wired exactly as `template.yml` wires it in the cloud.

    local MNS (topics, queues) ─┐
    engine service (MPS API) ───┼─ bootstrap: pipeline NotifyConfig → topic, the video and text libraries
    directory bucket + watcher ─┘
    OSS trigger  → submit_on_upload (async, durable, retried)
    MNS topic    → store_results    (pushed by the local MNS subscription, retried by it)
    Timer        → report_failed    (the template's cron expression)

The functions are the same code as in the cloud, talking to the local services through the official SDKs.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.localstack.bootstrap import (
    AUDIO_LIBRARY_SETTING,
    LIBRARY_SETTING,
    PIPELINE_SETTING,
    TEXT_LIBRARY_SETTING,
    ensure_audio_library,
    ensure_library,
    ensure_pipeline,
    ensure_text_library,
)
from engine.localstack.bucket import LocalBucket, StoredObject, oss_event
from engine.localstack.fc_context import FcCredentials
from engine.localstack.fc_runtime import LocalFc, RetrySchedule, async_invocation
from engine.localstack.skipped import record_skip
from engine.localstack.state import Enqueue, StackState
from engine.template import Template, load_template
from shared.credentials import Credentials
from shared.log import get_logger, log_to_file
from shared.store.sqlite import SqliteStore
from shared.vocabulary import DEFAULT_REGION

if TYPE_CHECKING:
    from engine.localstack.mns import MnsSettings
    from engine.service.app import EngineSettings

log = get_logger("fpscreen.local.stack")

# The template and the handlers it wires ship as package data (engine/bundled/ links to the checkout's copies),
# so an installed CLI finds them outside a checkout; resolved, in a checkout this is <repo>/template.yml.
DEFAULT_TEMPLATE = Path(str(importlib.resources.files("engine") / "bundled" / "template.yml")).resolve()
DEFAULT_BUCKET = "media"
ACCOUNT_ID = "1234567890123456"


@dataclass(frozen=True)
class StackPaths:
    data_dir: Path
    oss_root: Path

    @classmethod
    def under(cls, data_dir: Path, oss_root: Path | None = None) -> StackPaths:
        data_dir = Path(data_dir).expanduser().resolve()
        return cls(data_dir, Path(oss_root).expanduser().resolve() if oss_root else data_dir / "oss")

    @property
    def state(self) -> Path:
        return self.data_dir / "stack.db"

    @property
    def mns(self) -> Path:
        return self.data_dir / "mns.db"

    @property
    def engine(self) -> Path:
        return self.data_dir / "engine"

    @property
    def results(self) -> Path:
        return self.data_dir / "results.db"


def template_parameters(state: StackState, bucket: str, region: str) -> dict[str, str]:
    return {
        "ALIYUN::Region": region,
        "ALIYUN::AccountId": ACCOUNT_ID,
        "MediaBucketName": bucket,
        # Until the stack has bootstrapped, only the triggers are read, for which these do not matter.
        "MpsPipelineId": state.get_setting(PIPELINE_SETTING) or "not-bootstrapped",
        "LibraryFpDBId": state.get_setting(LIBRARY_SETTING) or "not-bootstrapped",
        "TextLibraryFpDBId": state.get_setting(TEXT_LIBRARY_SETTING) or "not-bootstrapped",
        "AudioLibraryFpDBId": state.get_setting(AUDIO_LIBRARY_SETTING) or "not-bootstrapped",
        # The review function is loaded but not served here (`fpscreen review` serves the page locally).
        "ReviewSecret": "local-stack-review-page-unused",
    }


def invocations_for(template: Template, obj: StoredObject, region: str, event_name: str) -> list[Enqueue]:
    """OSS's side of the trigger: every OSS trigger whose bucket, events and key filter match fires once."""
    payload = json.dumps(oss_event(obj, region=region, account_id=ACCOUNT_ID, event_name=event_name)).encode()
    return [
        async_invocation(template.function(trigger.function), payload)
        for trigger in template.oss_triggers_for(event_name, obj.key, bucket=obj.bucket)
    ]


def announce_upload(state: StackState, template: Template, obj: StoredObject, mtime_ns: int, region: str) -> bool:
    event_name = "ObjectCreated:PutObject"
    fresh = state.announce(obj, mtime_ns, invocations_for(template, obj, region, event_name))
    if fresh:  # what the pipeline will not screen is recorded with the reason, for `upload` and `results`
        record_skip(state.path, template, obj)
    return fresh


def upload_file(
    paths: StackPaths,
    source: Path,
    key: str,
    *,
    bucket: str = DEFAULT_BUCKET,
    region: str = DEFAULT_REGION,
    template_path: Path = DEFAULT_TEMPLATE,
) -> tuple[StoredObject, bool]:
    """`fpscreen upload`: put the object and queue its trigger invocations (durable even if the stack is down:
    a running or later `fpscreen up` picks them up)."""
    state = StackState(paths.state)
    try:
        template = load_template(template_path, template_parameters(state, bucket, region))
        obj, mtime_ns = LocalBucket(paths.oss_root, bucket).put_file(Path(source), key)
        return obj, announce_upload(state, template, obj, mtime_ns, region)
    finally:
        state.close()


@dataclass(frozen=True)
class StackSettings:
    """How `fpscreen up` (and tests, the demo, benchmarks) configure the local stack; the MNS and engine settings
    derive from it in `mns_settings` / `engine_settings`, the one place the stack's components are configured."""

    paths: StackPaths
    template_path: Path = DEFAULT_TEMPLATE
    bucket: str = DEFAULT_BUCKET
    region: str = DEFAULT_REGION
    host: str = "127.0.0.1"
    engine_workers: int = 2
    credentials: Credentials | None = None  # None: the engine's documented local key pair
    retry: RetrySchedule = field(default_factory=lambda: RetrySchedule(base=1.0, cap=30.0))
    mns_retry_scale: float = 1.0
    scan_interval: float = 0.5
    # Locally a dead stack takes every in-flight invocation with it, so a short lease loses nothing and lets a
    # restart re-drive interrupted uploads within seconds instead of the cloud's five minutes.
    claim_lease_seconds: float = 10.0
    log_file: bool = False  # JSON logs to <data-dir>/stack.log instead of stdout

    def access_key(self) -> Credentials:
        if self.credentials is not None:
            return self.credentials
        # Imported here: the engine service pulls in numpy and PyAV; `upload_file` needs none of it.
        from engine.service.app import LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET

        return Credentials(LOCAL_ACCESS_KEY_ID, LOCAL_ACCESS_KEY_SECRET)

    def mns_settings(self) -> MnsSettings:
        from engine.localstack.mns import MnsSettings, RetryPolicy

        key = self.access_key()
        return MnsSettings(
            self.paths.mns,
            host=self.host,
            port=0,
            credentials={key.access_key_id: key.access_key_secret},
            retry_policy=RetryPolicy().scaled(self.mns_retry_scale),
        )

    def engine_settings(self, mns_endpoint: str) -> EngineSettings:
        from engine.service.app import EngineSettings

        key = self.access_key()
        return EngineSettings(
            data_dir=self.paths.engine,
            oss_root=self.paths.oss_root,
            host=self.host,
            port=0,
            workers=self.engine_workers,
            credentials={key.access_key_id: key.access_key_secret},
            mns_endpoint=mns_endpoint,
        )


@dataclass
class LocalStack:
    settings: StackSettings

    state: StackState = field(init=False)
    template: Template = field(init=False)
    fc: LocalFc = field(init=False)
    mns: Any = field(init=False)
    engine: Any = field(init=False)
    bucket_dir: LocalBucket = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _watcher: threading.Thread | None = field(default=None, init=False)
    _progress: threading.Condition = field(default_factory=threading.Condition, init=False)
    _restore_logging: Callable[[], None] | None = field(default=None, init=False)

    @property
    def paths(self) -> StackPaths:
        return self.settings.paths

    @property
    def credentials(self) -> Credentials:
        return self.settings.access_key()

    @property
    def region(self) -> str:
        return self.settings.region

    @property
    def engine_workers(self) -> int:
        return self.settings.engine_workers

    def start(self) -> LocalStack:
        # Imported here: these pull in the engine (numpy, PyAV) and servers; `upload_file` needs none of it.
        from engine.localstack.mns import MnsServer
        from engine.service.app import EngineService

        self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.log_file:
            self._restore_logging = log_to_file(str(self.paths.data_dir / "stack.log"))
            # The SDKs log every retried error at ERROR; our JSON log already records what matters.
            logging.getLogger("aliyunsdkcore").setLevel(logging.CRITICAL)
        creds = self.credentials
        self.state = StackState(self.paths.state)
        self.bucket_dir = LocalBucket(self.paths.oss_root, self.settings.bucket)

        self.mns = MnsServer.from_settings(self.settings.mns_settings())
        self.mns.start()
        self.engine = EngineService(self.settings.engine_settings(self.mns.endpoint))
        self.engine.start()

        template = load_template(
            self.settings.template_path, template_parameters(self.state, self.settings.bucket, self.settings.region)
        )
        topics = {trigger.topic for trigger in template.mns_topic_triggers()}
        if len(topics) != 1:
            raise ValueError(f"template.yml must have exactly one MNSTopic trigger topic, found {sorted(topics)}")
        [topic] = topics
        self._ensure_topic(topic)
        ensure_pipeline(self.state, self.engine.endpoint, creds, self.settings.region, topic)
        ensure_library(self.state, self.engine.endpoint, creds, self.settings.region)
        ensure_text_library(self.state, self.engine.endpoint, creds, self.settings.region)
        ensure_audio_library(self.state, self.engine.endpoint, creds, self.settings.region)
        # Re-read with the bootstrapped ids filled in: env vars like FPSCREEN_ROUTES reference them.
        self.template = load_template(
            self.settings.template_path, template_parameters(self.state, self.settings.bucket, self.settings.region)
        )

        self.fc = LocalFc(
            self.template,
            self.state,
            FcCredentials(creds.access_key_id, creds.access_key_secret, creds.security_token or ""),
            retry=self.settings.retry,
            on_invocation=self._on_invocation,
        )
        self.fc.load(
            {
                "MPS_ENDPOINT": self.engine.url,
                "FPSCREEN_STORE_URL": f"sqlite:///{self.paths.results}",
                "FPSCREEN_CLAIM_LEASE_SECONDS": str(self.settings.claim_lease_seconds),
                # The directory bucket has no tags or ACLs: verdicts are stored, not acted on (no cloud calls).
                "FPSCREEN_OSS_ENDPOINT": "",
                "FPSCREEN_MNS_ENDPOINT": "",
            }
        )
        for trigger in self.template.mns_topic_triggers():
            self.mns.add_local_subscriber(
                trigger.topic,
                f"fc-{trigger.function}-{trigger.name}".replace("_", "-"),  # MNS names: letters, digits, -
                self._mns_push(trigger.function),
                content_format=trigger.notify_content_format,
                filter_tag=trigger.filter_tag,
                notify_strategy=trigger.notify_strategy,
            )
        self.fc.start()
        self._watcher = threading.Thread(target=self._watch, name="bucket-watcher", daemon=True)
        self._watcher.start()
        log.info(
            "stack up", extra={"engine": self.engine.url, "mns": self.mns.endpoint, "oss": str(self.paths.oss_root)}
        )
        return self

    def _ensure_topic(self, topic: str) -> None:
        from mns.account import Account
        from mns.topic import TopicMeta

        account = Account(self.mns.endpoint, self.credentials.access_key_id, self.credentials.access_key_secret)
        account.get_topic(topic).create(TopicMeta())

    def _mns_push(self, function: str) -> Callable[[bytes], None]:
        def push(event: bytes) -> None:
            self.fc.invoke(function, event)
            self._on_invocation(function, "", "done")

        return push

    def _on_invocation(self, function: str, invocation_id: str, outcome: str) -> None:
        with self._progress:
            self._progress.notify_all()

    def _watch(self) -> None:
        """Files dropped straight into the bucket directory become uploads too."""
        while not self._stop.wait(self.settings.scan_interval):
            try:
                self.scan_once()
            except Exception as exc:  # a vanished or unreadable file must not stop the watcher
                log.warning("bucket scan failed", extra={"error": str(exc)})

    def scan_once(self) -> int:
        announced = 0
        for obj, mtime_ns in self.bucket_dir.scan(self.state.known_objects(self.settings.bucket)):
            if announce_upload(self.state, self.template, obj, mtime_ns, self.settings.region):
                announced += 1
        if announced:
            self.fc.notify()
        return announced

    def upload(self, source: Path, key: str) -> tuple[StoredObject, bool]:
        obj, mtime_ns = self.bucket_dir.put_file(Path(source), key)
        fresh = announce_upload(self.state, self.template, obj, mtime_ns, self.settings.region)
        self.fc.notify()
        return obj, fresh

    def tick_timers(self) -> list[Any]:
        """Fire every timer trigger once now (FC's "test trigger"), without waiting for its schedule."""
        from engine.localstack.fc_runtime import timer_event

        return [
            self.fc.invoke(trigger.function, timer_event(trigger, time.time()))
            for trigger in self.template.timer_triggers()
            if trigger.enable
        ]

    def results_store(self) -> SqliteStore:
        return SqliteStore(self.paths.results)

    def wait(self, done: Callable[[], bool], *, timeout: float) -> bool:
        """Block until `done()` holds; re-checked whenever a function invocation finishes (and every second,
        for work finishing elsewhere, e.g. the engine)."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(timeout=min(remaining, 1.0))
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for part in ("fc", "engine", "mns"):
            component = getattr(self, part, None)
            if component is not None:
                try:
                    component.stop()
                except Exception as exc:  # stopping is best effort: report, keep stopping the rest
                    log.warning("stop failed", extra={"component": part, "error": str(exc)})
        if hasattr(self, "state"):
            self.state.close()
        if self._restore_logging is not None:
            self._restore_logging()
            self._restore_logging = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
