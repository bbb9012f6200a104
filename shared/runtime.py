"""Wiring: builds the adapters a function needs (settings, store, MPS client) once per warm container.

Credentials can rotate between invocations (FC hands each one an STS token), so the cache is keyed on them.
Tests install their own factory with `use_factory` (dependency injection, no monkeypatching of SDKs).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.credentials import Credentials, resolve_credentials
from shared.ports import MpsPort, ResultStore
from shared.services.actions import ActionRunner, MnsVerdictPublisher, ObjectActions, OssObjectActions, VerdictPublisher

if TYPE_CHECKING:
    from shared.services.submit import ObjectFiles


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: ResultStore
    mps: MpsPort
    actions: ActionRunner | None = None  # verdict actions (object tag/copy/ACL, verdict messages), if configured
    objects: ObjectFiles | None = None  # the bucket's objects (subtitle conversion), with an OSS endpoint


RuntimeFactory = Callable[[Settings, Credentials | None], Runtime]


def default_factory(settings: Settings, credentials: Credentials | None) -> Runtime:
    # Imported here so a handler module's import stays cheap until the first invocation needs them.
    from shared.mps import MpsClient, TokenBucket
    from shared.store import open_store

    if credentials is None:
        raise RuntimeError("no credentials available for the MPS client")
    store = open_store(settings.store_url, credentials=credentials)
    mps = MpsClient(
        credentials,
        region=settings.mps_region,
        endpoint=settings.mps_endpoint,
        rate_limiter=TokenBucket(settings.mps_qps, burst=max(1.0, settings.mps_qps / 10)),
    )
    fixed = credentials
    objects = OssObjectActions(settings.oss_endpoint, lambda: fixed) if settings.oss_endpoint else None
    return Runtime(settings, store, mps, actions_for(settings, credentials), objects)


def actions_for(settings: Settings, credentials: Credentials) -> ActionRunner | None:
    """The verdict actions the settings ask for (None when neither OSS nor a verdict topic is configured)."""
    fixed = credentials  # the runtime is rebuilt when the credentials rotate
    objects: ObjectActions | None = None
    publisher: VerdictPublisher | None = None
    if settings.oss_endpoint:
        objects = OssObjectActions(settings.oss_endpoint, lambda: fixed)
    if settings.mns_endpoint and settings.verdict_topic:
        publisher = MnsVerdictPublisher(settings.mns_endpoint, settings.verdict_topic, lambda: fixed)
    if objects is None and publisher is None:
        return None
    return ActionRunner.with_policy(objects, publisher)


_lock = threading.Lock()
_factory: RuntimeFactory = default_factory
_cached: tuple[tuple[str, Credentials | None], Runtime] | None = None


def use_factory(factory: RuntimeFactory | None) -> None:
    """Install a runtime factory (tests, local stack); None restores the default."""
    global _factory, _cached
    with _lock:
        _factory = factory or default_factory
        _cached = None


def get_runtime(context: Any) -> Runtime:
    global _cached
    settings = Settings.from_env()
    try:
        credentials: Credentials | None = resolve_credentials(context)
    except RuntimeError:
        credentials = None
    key = (settings.model_dump_json(), credentials)
    with _lock:
        if _cached is not None and _cached[0] == key:
            return _cached[1]
        runtime = _factory(settings, credentials)
        _cached = (key, runtime)
        return runtime


def mps_for(runtime: Runtime, deadline: float) -> MpsPort:
    """The runtime's MPS port bounded by the invocation's deadline (epoch seconds), when the adapter supports
    it: no retry starts that could outlive the function's timeout."""
    bounded: Callable[[float], MpsPort] | None = getattr(runtime.mps, "with_deadline", None)
    if bounded is None:
        return runtime.mps
    return bounded(time.monotonic() + (deadline - time.time()))


@dataclass(frozen=True, slots=True)
class Invocation:
    """What a handler needs from the FC context: who it is and when it must stop."""

    request_id: str
    function_name: str
    deadline: float  # epoch seconds by which the handler should have returned

    @classmethod
    def from_context(cls, context: Any, *, default_name: str, clock: Callable[[], float] = time.time) -> Invocation:
        started = clock()
        request_id = getattr(context, "request_id", None) or f"local-{uuid.uuid4().hex}"
        function = getattr(context, "function", None)
        name = getattr(function, "name", None) or default_name
        timeout = float(getattr(function, "timeout", 0) or 60)
        # Leave a margin to write state and return before FC kills the instance.
        margin = max(2.0, timeout * 0.1)
        return cls(request_id, name, started + max(timeout - margin, 1.0))
