"""A local Function Compute: the functions `template.yml` declares, invoked the way FC invokes them.

- Async invocations (what OSS triggers use) go through the durable queue in `StackState`: at-least-once,
  retried with backoff up to `MaxAsyncRetryAttempts`, dropped to the dead letters after that or after
  `MaxAsyncEventAgeInSeconds`. A handler that raises `AlreadyInProgress` is retried when the lease runs out,
  without spending an attempt (the work is being done, just not by us).
- Sync invocations (MNS topic pushes, timers) call the handler directly; the caller owns the retries.
- Handlers are loaded from `CodeUri`/`Handler` exactly as the Python runtime does, and see an FC `context`.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from croniter import croniter

from engine.localstack.fc_context import FcContext, FcCredentials, FcFunction
from engine.localstack.state import Enqueue, QueuedInvocation, StackState
from engine.template import Function, Template, TimerTrigger
from shared.idempotency import AlreadyInProgress
from shared.log import get_logger
from shared.retry import Backoff

log = get_logger("fpscreen.local.fc")

Handler = Callable[[bytes, Any], Any]

_EVERY = re.compile(r"(\d+)([smh])")
_UNIT = {"s": 1, "m": 60, "h": 3600}


def load_handler(function: Function, root: Path) -> Handler:
    """Import `<CodeUri>/<module>.py` under a private name and return its handler, as FC's runtime would."""
    path = function.handler_file(root)
    if not path.is_file():
        raise FileNotFoundError(f"{function.name}: handler file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"fpscreen_fc_{function.name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    handler = getattr(module, function.handler_attr, None)
    if not callable(handler):
        raise AttributeError(f"{path} has no callable {function.handler_attr!r}")
    return handler


def async_invocation(spec: Function, payload: bytes) -> Enqueue:
    """An async invocation of `spec` with its AsyncConfiguration's limits (FC's defaults otherwise)."""
    config = spec.async_config
    retries = config.max_async_retry_attempts if config and config.max_async_retry_attempts is not None else 3
    age = config.max_async_event_age_in_seconds if config else None
    return Enqueue(spec.name, payload, max_attempts=1 + retries, max_age=float(age or 86400))


def merged_environment(functions: list[Function], overrides: Mapping[str, str]) -> dict[str, str]:
    """The functions share one process here, hence one environment: the union of theirs, with local
    overrides (endpoints, store URL). Two functions giving one variable different values cannot be honoured."""
    env: dict[str, str] = {}
    for function in functions:
        for name, value in function.environment.items():
            if name in overrides:
                continue
            if name in env and env[name] != value:
                raise ValueError(f"{name} differs between functions; the local stack runs them in one process")
            env[name] = value
    env.update(overrides)
    return env


@dataclass
class LocalFunction:
    spec: Function
    handler: Handler
    credentials: FcCredentials

    @property
    def name(self) -> str:
        return self.spec.name

    def context(self, request_id: str) -> FcContext:
        return FcContext(
            request_id=request_id,
            credentials=self.credentials,
            function=FcFunction(
                name=self.name, handler=self.spec.handler, memory=self.spec.memory_size, timeout=self.spec.timeout
            ),
        )

    def invoke(self, payload: bytes, request_id: str) -> Any:
        return self.handler(payload, self.context(request_id))


@dataclass(frozen=True, slots=True)
class RetrySchedule(Backoff):
    """Waits between async attempts (full jitter): FC's are longer, tests and the demo want short ones."""

    base: float = 1.0
    cap: float = 30.0


@dataclass
class LocalFc:
    template: Template
    state: StackState
    credentials: FcCredentials
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    workers_per_function: int = 2
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _threads: list[threading.Thread] = field(default_factory=list)
    on_invocation: Callable[[str, str, str], None] | None = None  # (function, invocation id, outcome)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def load(self, env_overrides: Mapping[str, str]) -> None:
        env = merged_environment(self.template.functions, env_overrides)
        self._saved_env = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        for spec in self.template.functions:
            handler = load_handler(spec, self.template.root)
            self.functions[spec.name] = LocalFunction(spec, handler, self.credentials)

    # --------------------------------------------------------------------------------- async

    def invoke_async(self, function: str, payload: bytes) -> str:
        invocation_id = self.state.enqueue(async_invocation(self.functions[function].spec, payload))
        self.notify()
        return invocation_id

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def start(self) -> None:
        recovered = self.state.recover()
        if recovered:
            log.info("re-queued invocations of a previous run", extra={"count": recovered})
        for name in self.functions:
            for n in range(self.workers_per_function):
                thread = threading.Thread(target=self._worker, args=(name,), name=f"fc-{name}-{n}", daemon=True)
                thread.start()
                self._threads.append(thread)
        for trigger in self.template.timer_triggers():
            if trigger.enable:
                thread = threading.Thread(
                    target=self._timer, args=(trigger,), name=f"timer-{trigger.name}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.notify()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        # The functions' environment was this process's: give the host process its own back.
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def _worker(self, function: str) -> None:
        fn = self.functions[function]
        lease = float(fn.spec.timeout) * 2
        while not self._stop.is_set():
            invocation = self.state.claim_next([function], lease_seconds=lease)
            if invocation is None:
                with self._wake:
                    # Woken at once by an enqueue in this process; the timeout picks up other processes' ones.
                    self._wake.wait(timeout=0.25)
                continue
            self._run(fn, invocation)

    def _run(self, fn: LocalFunction, invocation: QueuedInvocation) -> None:
        try:
            fn.invoke(invocation.payload, invocation.id)
        except AlreadyInProgress as busy:
            when = busy.retry_at if busy.retry_at is not None else time.time() + self.retry.delay(1)
            self.state.retry_at(invocation.id, max(when, time.time() + 0.05), str(busy), counts=False)
            self._report(fn.name, invocation.id, "in_progress")
            return
        except Exception as exc:  # the handler's failure: FC retries the async event
            error = f"{type(exc).__name__}: {exc}"
            attempt = invocation.attempts + 1
            if attempt >= invocation.max_attempts or time.time() >= invocation.expires_at:
                self.state.bury(invocation.id, error)
                log.error(
                    "async invocation dead-lettered",
                    extra={"function": fn.name, "invocation": invocation.id, "error": error},
                )
                self._report(fn.name, invocation.id, "dead")
            else:
                self.state.retry_at(invocation.id, time.time() + self.retry.delay(attempt), error)
                log.warning(
                    "async invocation failed, will retry",
                    extra={
                        "function": fn.name,
                        "invocation": invocation.id,
                        "attempt": attempt,
                        "error": error,
                        "trace": traceback.format_exc(limit=5),
                    },
                )
                self._report(fn.name, invocation.id, "retry")
            return
        self.state.finish(invocation.id)
        self._report(fn.name, invocation.id, "done")

    def _report(self, function: str, invocation_id: str, outcome: str) -> None:
        if self.on_invocation is not None:
            self.on_invocation(function, invocation_id, outcome)

    # ---------------------------------------------------------------------------------- sync

    def invoke(self, function: str, payload: bytes, *, request_id: str | None = None) -> Any:
        return self.functions[function].invoke(payload, request_id or uuid.uuid4().hex)

    # --------------------------------------------------------------------------------- timers

    def _timer(self, trigger: TimerTrigger) -> None:
        next_fire = next_fire_after(trigger.cron, time.time())
        while not self._stop.wait(timeout=max(0.0, next_fire - time.time())):
            event = timer_event(trigger, next_fire)
            try:
                self.invoke(trigger.function, event)
            except Exception as exc:  # a timer invocation that fails is simply tried again next tick
                log.error("timer invocation failed", extra={"trigger": trigger.name, "error": str(exc)})
            next_fire = next_fire_after(trigger.cron, time.time())


def next_fire_after(cron: str, now: float) -> float:
    """FC timer expressions: `@every 5m` or 6-field cron with seconds first (UTC)."""
    if cron.startswith("@every"):
        seconds = sum(int(n) * _UNIT[u] for n, u in _EVERY.findall(cron))
        return now + max(seconds, 1)
    start = dt.datetime.fromtimestamp(now, tz=dt.timezone.utc)
    return croniter(cron, start, second_at_beginning=True).get_next(float)


def timer_event(trigger: TimerTrigger, fire_time: float) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fire_time))
    return json.dumps({"triggerTime": stamp, "triggerName": trigger.name, "payload": trigger.payload or ""}).encode()
