"""Push workers: topic → queue retries and topic → local callback (FC "MNS topic" trigger) deliveries.

Pending pushes are rows in the store; one thread per push target takes them when due, delivers, and on failure
schedules the next attempt per the subscription's NotifyStrategy (`RetryPolicy`) or dead-letters the message.
A message is deleted only after delivery, so a stop mid-delivery re-delivers it after a restart.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from engine.localstack.mns.protocol import notification, render_notification
from engine.localstack.mns.store import Delivery, MnsError, MnsStore, Subscription
from shared.retry import Backoff

log = logging.getLogger(__name__)

LocalCallback = Callable[[bytes], object]
WorkerKey = tuple[str, ...]  # ("dispatch",) or ("local", topic, subscription)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a failed push waits before its next attempt; None = give up (dead letter).

    Defaults are the cloud's: BACKOFF_RETRY 3 retries 10-20 s apart; EXPONENTIAL_DECAY_RETRY 176 retries,
    2^n s capped at 512 s. Tests and the local stack use `RetryPolicy().scaled(0.005)`.
    """

    backoff_retries: int = 3
    backoff_delay: tuple[float, float] = (10.0, 20.0)
    exponential_retries: int = 176
    exponential_first: float = 1.0
    exponential_cap: float = 512.0

    def delay_after(self, strategy: str, failures: int) -> float | None:
        if strategy == "EXPONENTIAL_DECAY_RETRY":
            if failures > self.exponential_retries:
                return None
            # MNS's documented schedule, not a randomised one: the ceiling of the shared backoff.
            return Backoff(self.exponential_first, self.exponential_cap).ceiling(failures)
        if failures > self.backoff_retries:
            return None
        return random.uniform(*self.backoff_delay)

    def scaled(self, factor: float) -> RetryPolicy:
        """Same retry counts, every delay multiplied by `factor`."""
        low, high = self.backoff_delay
        return replace(
            self,
            backoff_delay=(low * factor, high * factor),
            exponential_first=self.exponential_first * factor,
            exponential_cap=self.exponential_cap * factor,
        )


@dataclass(slots=True)
class LocalSubscriber:
    topic: str
    name: str
    callback: LocalCallback
    content_format: Literal["JSON", "STREAM"]
    filter_tag: str
    notify_strategy: str


@dataclass(slots=True)
class _Worker:
    thread: threading.Thread
    stop: threading.Event


class PushWorkers:
    """The push threads of one running server over one open store."""

    def __init__(self, store: MnsStore, retry_policy: RetryPolicy, account_id: str, region: str) -> None:
        self.store = store
        self.retry_policy = retry_policy
        self.account_id = account_id
        self.region = region
        self._workers: dict[WorkerKey, _Worker] = {}

    def start(self) -> None:
        self._start(("dispatch",), self._run_dispatch)

    def activate(self, subscriber: LocalSubscriber) -> None:
        """Store the subscription (replacing one of the same name) and start its push thread."""
        self.store.subscribe(
            Subscription(
                subscriber.topic,
                subscriber.name,
                f"acs:fc:{self.region}:{self.account_id}:local/{subscriber.name}",
                "local",
                subscriber.notify_strategy,
                "JSON" if subscriber.content_format == "JSON" else "SIMPLIFIED",
                subscriber.filter_tag,
                0,
                0,
            ),
            replace=True,
        )
        key = ("local", subscriber.topic, subscriber.name)
        self.stop_one(key)  # one push thread per subscription: no concurrent duplicate of a delivery
        self._start(key, lambda stop: self._run_local(subscriber, stop))

    def stop_one(self, key: WorkerKey) -> None:
        worker = self._workers.pop(key, None)
        if worker is None:
            return
        worker.stop.set()
        self.store.wake(key)
        if worker.thread is not threading.current_thread():
            worker.thread.join(timeout=5.0)

    def signal_stop(self) -> None:
        """Ask every thread to stop; `store.begin_close()` then wakes the idle ones."""
        for worker in self._workers.values():
            worker.stop.set()

    def join(self, timeout: float = 5.0) -> None:
        for worker in self._workers.values():
            if worker.thread is not threading.current_thread():
                worker.thread.join(timeout=timeout)
        self._workers.clear()

    def _start(self, key: WorkerKey, target: Callable[[threading.Event], None]) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=target, args=(stop,), name=f"mns-push-{'/'.join(key)}", daemon=True)
        self._workers[key] = _Worker(thread, stop)
        thread.start()

    def _run_local(self, subscriber: LocalSubscriber, stop: threading.Event) -> None:
        key = ("local", subscriber.topic, subscriber.name)
        store = self.store
        try:
            while (item := store.next_delivery(key, stop)) is not None:
                delivery, sub = item
                event = (
                    json.dumps(notification(sub, delivery, self.account_id), ensure_ascii=False).encode()
                    if sub.content_format == "JSON"
                    else delivery.body.encode("utf-8")
                )
                try:
                    subscriber.callback(event)
                except Exception as exc:
                    self._failed(delivery, sub, exc)
                else:
                    store.complete_delivery(delivery)
        except MnsError:
            if not store.closing:
                raise
            # stopping mid-delivery: the row stays, so the message is pushed again after a restart

    def _run_dispatch(self, stop: threading.Event) -> None:
        """Retries of topic → queue pushes that could not land at publish time (e.g. the queue was missing)."""
        store = self.store

        def render(sub: Subscription, delivery: Delivery) -> str:
            return render_notification(sub, delivery, self.account_id)

        try:
            while (item := store.next_delivery(("dispatch",), stop)) is not None:
                delivery, sub = item
                try:
                    store.push_to_queue(delivery, render)
                except MnsError as exc:
                    if store.closing:
                        return
                    self._failed(delivery, sub, exc)
        except MnsError:
            if not store.closing:
                raise

    def _failed(self, delivery: Delivery, sub: Subscription, exc: BaseException) -> None:
        failures = delivery.attempts + 1
        retry_in = self.retry_policy.delay_after(sub.notify_strategy, failures)
        log.warning(
            "local MNS: push %s → %s/%s failed (attempt %d): %r; %s",
            delivery.message_id,
            sub.topic,
            sub.name,
            failures,
            exc,
            "dead-lettered" if retry_in is None else f"retry in {retry_in:.2f}s",
        )
        self.store.fail_delivery(delivery, f"{type(exc).__name__}: {exc}", retry_in)
