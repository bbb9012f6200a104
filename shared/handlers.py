"""The three FC entry points' bodies: trigger event (bytes) → typed model → service → JSON summary.

`functions/<name>/index.py` only re-exports these, so every function ships the same tested code.
A malformed event is parked with its reason (nothing is lost) and the invocation returns normally, because
an FC retry of the same bytes can never succeed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from shared.contracts.events import (
    EventParseError,
    MnsTopicMessage,
    parse_mns_topic_event,
    parse_oss_event,
    parse_timer_event,
)
from shared.log import bind_invocation, get_logger
from shared.ports import ParkingLot
from shared.runtime import Invocation, get_runtime, mps_for
from shared.services.parking import park
from shared.services.report import FailedJobReporter
from shared.services.results import ResultRecorder
from shared.services.submit import SubmitService
from shared.verdicts.service import VerdictService
from shared.vocabulary import SUCCESS

log = get_logger("fpscreen.handlers")


def _as_bytes(event: Any) -> bytes:
    if isinstance(event, bytes):
        return event
    if isinstance(event, str):
        return event.encode("utf-8")
    return json.dumps(event).encode("utf-8")


def _park_event(store: ParkingLot, source: str, raw: bytes, reason: str) -> dict[str, Any]:
    return {"parked": park(store, source=source, body=raw, reason=reason, now=time.time()), "reason": reason}


def submit_on_upload(event: Any, context: Any) -> str:
    call = Invocation.from_context(context, default_name="submit_on_upload")
    bind_invocation(call.request_id, call.function_name)
    runtime = get_runtime(context)
    raw = _as_bytes(event)
    try:
        oss_event = parse_oss_event(raw)
    except EventParseError as exc:
        return json.dumps(_park_event(runtime.store, "oss", raw, str(exc)))
    service = SubmitService(mps_for(runtime, call.deadline), runtime.store, runtime.settings, objects=runtime.objects)
    outcomes = service.handle_event(oss_event, owner=call.request_id)
    return json.dumps(
        {
            "outcomes": [
                {"key": o.object_key, "status": o.status, "job_id": o.job_id, "reason": o.reason} for o in outcomes
            ]
        }
    )


def store_results(event: Any, context: Any) -> str:
    call = Invocation.from_context(context, default_name="store_results")
    bind_invocation(call.request_id, call.function_name)
    runtime = get_runtime(context)
    raw = _as_bytes(event)
    recorder = ResultRecorder(mps_for(runtime, call.deadline), runtime.store)
    try:
        message = parse_mns_topic_event(raw)
    except EventParseError as exc:
        outcome = recorder.park(MnsTopicMessage(body=raw), str(exc))
    else:
        outcome = recorder.handle_message(message)
    summary = {"job_id": outcome.job_id, "status": outcome.status, "state": outcome.state, "reason": outcome.reason}
    if outcome.state == SUCCESS:
        # Also on "unchanged": a retried delivery redoes whatever actions had not completed.
        VerdictService(runtime.store, runtime.settings.policies, runtime.actions).evaluate(outcome.job_id)
    return json.dumps(summary)


def report_failed(event: Any, context: Any) -> str:
    call = Invocation.from_context(context, default_name="report_failed")
    bind_invocation(call.request_id, call.function_name)
    runtime = get_runtime(context)
    raw = _as_bytes(event) if event is not None else b""
    try:
        timer = parse_timer_event(raw)
    except EventParseError as exc:
        # A timer payload we cannot read still means "it is time": log it and do the work.
        log.error("malformed timer event", extra={"reason": str(exc)})
        _park_event(runtime.store, "timer", raw, str(exc))
    else:
        log.info("timer tick", extra={"trigger_time": timer.trigger_time, "trigger": timer.trigger_name})
    reporter = FailedJobReporter(mps_for(runtime, call.deadline), runtime.store, runtime.settings)
    summary = reporter.run(deadline=call.deadline)
    return json.dumps(summary.to_dict())
