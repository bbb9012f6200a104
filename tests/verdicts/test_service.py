"""VerdictService on both store backends: evaluate after a stored result, reviewer decisions, re-evaluation
under a changed policy, and idempotent, retried actions."""

from __future__ import annotations

import json

import pytest

from shared.ports import ResultStore
from shared.retry import RetryPolicy
from shared.services.actions import ActionError, ActionRunner
from shared.services.job_rows import job_record
from shared.verdicts.policy import DEFAULT_POLICY, Policy, Rule
from shared.verdicts.service import VerdictService

from .conftest import RecordingObjects, RecordingPublisher
from .media import job, media_shot

COPY = job(duration=60, video=[media_shot("lib-a", 0.99, (0, 45, 10, 0.99))], key="uploads/a [red]b[/red].mp4")


def _runner(objects: RecordingObjects, publisher: RecordingPublisher) -> ActionRunner:
    return ActionRunner.with_policy(
        objects, publisher, RetryPolicy(max_attempts=3, deadline=None), sleep=lambda _: None
    )


def _stored(store: ResultStore, fp_job=COPY, *, submitted_at: float = 100.0) -> str:  # type: ignore[no-untyped-def]
    record = job_record(fp_job, now=submitted_at)
    store.save_job(record)
    return record.job_id


def test_a_stored_copy_is_blocked_tagged_quarantined_made_private_and_announced(store: ResultStore) -> None:
    objects, publisher = RecordingObjects(), RecordingPublisher()
    service = VerdictService(store, [], _runner(objects, publisher), clock=lambda: 500.0)
    job_id = _stored(store)
    record = service.evaluate(job_id)
    assert record is not None and (record.verdict, record.final_verdict, record.rule) == ("block", "block", "full-copy")
    key = ("media", "uploads/a [red]b[/red].mp4")
    assert objects.tags[key] == {"fpscreen-verdict": "block"}
    assert ("media", "quarantine/uploads/a [red]b[/red].mp4") in objects.objects
    assert objects.acls[key] == "private"
    ((body, tag),) = publisher.messages
    message = json.loads(body)
    assert tag == "block" and message["Verdict"] == "block" and message["Object"] == key[1]
    assert message["MatchedItem"] == "lib-a" and message["UploadShare"] == 0.75
    stored = store.get_verdict(job_id)
    assert stored is not None and stored.actions["tag"] == "block" and stored.actions["message_id"] == "msg-1"
    assert stored.policy_version == DEFAULT_POLICY.version and stored.evidence["items"][0]["matched"] == 45.0


def test_evaluating_again_repeats_no_action(store: ResultStore) -> None:
    objects, publisher = RecordingObjects(), RecordingPublisher()
    service = VerdictService(store, [], _runner(objects, publisher))
    job_id = _stored(store)
    service.evaluate(job_id)
    calls = list(objects.calls)
    service.evaluate(job_id)
    assert objects.calls == calls and len(publisher.messages) == 1


def test_a_dismissal_flows_back_into_the_tag_the_acl_the_quarantine_and_a_message(store: ResultStore) -> None:
    objects, publisher = RecordingObjects(), RecordingPublisher()
    service = VerdictService(store, [], _runner(objects, publisher), clock=lambda: 900.0)
    job_id = _stored(store)
    service.evaluate(job_id)
    record = service.review(job_id, "dismiss", reviewer="ana", note="licensed clip")
    assert (record.verdict, record.final_verdict, record.reviewer, record.reviewed_at) == ("block", "allow", "ana", 900)
    key = ("media", "uploads/a [red]b[/red].mp4")
    assert objects.tags[key] == {"fpscreen-verdict": "allow"}
    assert objects.acls[key] == "default" and not objects.objects
    assert [tag for _, tag in publisher.messages] == ["block", "allow"]
    assert json.loads(publisher.messages[-1][0])["ReviewDecision"] == "dismiss"
    # The decision survives a re-evaluation (and so does what was done for it).
    again = service.evaluate(job_id)
    assert again is not None and again.final_verdict == "allow" and again.review_decision == "dismiss"
    assert len(publisher.messages) == 2
    with pytest.raises(ValueError):
        service.review(job_id, "delete", reviewer="ana")
    with pytest.raises(ValueError):
        service.review(job_id, "confirm", reviewer=" ")


def test_allowlisting_covers_a_reupload_of_the_same_key(store: ResultStore) -> None:
    service = VerdictService(store, [])
    first = _stored(store)
    service.evaluate(first)
    service.review(first, "allowlist", reviewer="ana")
    again = job(
        duration=60,
        video=[media_shot("lib-a", 0.99, (0, 45, 10, 0.99))],
        key=COPY.input_file.object,  # type: ignore[union-attr]
        job_id="job-2",
    )
    second = _stored(store, again, submitted_at=200.0)
    record = service.evaluate(second)
    assert record is not None and (record.verdict, record.final_verdict) == ("block", "allow")
    assert record.review_decision == "allowlist"


def test_a_changed_policy_reevaluates_stored_results_without_fingerprinting(store: ResultStore) -> None:
    objects, publisher = RecordingObjects(), RecordingPublisher()
    job_id = _stored(store)
    VerdictService(store, [], _runner(objects, publisher)).evaluate(job_id)
    lenient = Policy(name="lenient", rules=[Rule(name="only-huge", verdict="block", min_seconds=300)])
    (record,) = VerdictService(store, [lenient], _runner(objects, publisher)).reevaluate()
    assert (record.verdict, record.rule, record.policy_name) == ("allow", "below-thresholds", "lenient")
    assert objects.tags[("media", COPY.input_file.object)]["fpscreen-verdict"] == "allow"  # type: ignore[union-attr]
    assert store.get_verdict(job_id).policy_version == lenient.version  # type: ignore[union-attr]


def test_library_items_and_unfinished_jobs_get_no_verdict(store: ResultStore) -> None:
    library = job(duration=90, job_id="lib-job", key="library/film.mp4")
    record = job_record(library, now=1.0)
    record.save_type = "forcesave"
    store.save_job(record)
    assert VerdictService(store, []).evaluate("lib-job") is None
    assert VerdictService(store, []).evaluate("unknown") is None


def test_library_item_lengths_come_from_their_own_jobs(store: ResultStore) -> None:
    library = job_record(job(duration=180, job_id="lib-job", key="library/film.mp4"), now=1.0)
    library.save_type, library.primary_key = "forcesave", "lib-a"
    store.save_job(library)
    record = VerdictService(store, []).evaluate(_stored(store))
    assert record is not None and record.evidence["items"][0]["library_share"] == 0.25  # 45 of 180 s


def test_a_transient_failure_is_retried_and_a_lasting_one_is_recorded_then_resumed(store: ResultStore) -> None:
    objects, publisher = RecordingObjects(), RecordingPublisher()
    service = VerdictService(store, [], _runner(objects, publisher))
    job_id = _stored(store)
    objects.fail = [ActionError("503", retryable=True)]
    assert service.evaluate(job_id) is not None
    assert objects.calls[:2] == ["tag", "tag"] and objects.tags

    other = _stored(store, job(duration=60, video=[media_shot("lib-a", 1, (0, 60, 0, 1))], job_id="job-9"))
    objects.fail = [ActionError("403 AccessDenied", retryable=False)]
    with pytest.raises(ActionError):
        service.evaluate(other)
    failed = store.get_verdict(other)
    assert failed is not None and "AccessDenied" in failed.actions["errors"] and "tag" not in failed.actions
    record = service.evaluate(other)  # the redelivery finishes the job
    assert record is not None and record.actions["tag"] == "block" and "errors" not in record.actions
