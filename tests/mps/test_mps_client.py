"""MpsClient (CoreSDK) and TeaMpsClient (ACS3 and v1) against FakeMps: the port, retries, limits, errors."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from shared.contracts.mps import (
    FpShot,
    FpShotResult,
    FpShots,
    FpShotSlice,
    FpShotSlices,
    QueryFpShotJobListRequest,
    ReportFpShotJobResultRequest,
    TextFpShot,
    TextFpShots,
    TextFpShotSlice,
    TextFpShotSlices,
    TimeSpan,
)
from shared.credentials import Credentials
from shared.mps import Endpoint, MpsClient, MpsError, RetryPolicy, TokenBucket, is_retryable
from shared.ports import MpsPort
from tests.support.fake_mps import FakeMps

from .helpers import FakeClock, make_client, submit_request

EXPECTED_STYLE = {"core": "RPC", "tea-v3": "ACS3", "tea-v1": "RPC"}


def retrying(clock: FakeClock, *, attempts: int = 5, deadline: float | None = None, rand: float = 0.5) -> dict:
    """Client kwargs: retries on the fake clock with a fixed jitter draw."""
    return {
        "retry_policy": RetryPolicy(max_attempts=attempts, base_delay=0.1, max_delay=10.0, deadline=deadline),
        "sleep": clock.sleep,
        "clock": clock,
        "random": lambda: rand,
    }


def sample_result() -> FpShotResult:
    return FpShotResult(
        fp_shots=FpShots(
            fp_shot=[
                FpShot(
                    primary_key="lib-1",
                    similarity=0.95,
                    fp_shot_slices=FpShotSlices(
                        fp_shot_slice=[
                            FpShotSlice(
                                input=TimeSpan(start=0, duration=12.5),
                                duplication=TimeSpan(start=30, duration=12.5),
                                similarity=0.95,
                            )
                        ]
                    ),
                )
            ]
        ),
        audio_fp_shots=FpShots(fp_shot=[]),
        text_fp_shots=TextFpShots(
            text_fp_shot=[
                TextFpShot(
                    primary_key="txt-1",
                    similarity=1.0,
                    text_fp_shot_slices=TextFpShotSlices(
                        text_fp_shot_slice=[
                            TextFpShotSlice(
                                similarity=1.0,
                                input_text="今天下雪了",
                                duplication_text="今天下雪了",
                                input_fragment=TimeSpan(start=0, duration=3),
                            )
                        ]
                    ),
                )
            ]
        ),
    )


# ----------------------------------------------------------------------------------- the port


def test_clients_implement_the_port(fake_mps: FakeMps, client_kind: str) -> None:
    client: MpsPort = make_client(client_kind, fake_mps)
    assert callable(client.submit_fp_shot_job) and callable(client.report_fp_shot_job_result)


def test_submit_query_report_round_trip(fake_mps: FakeMps, client_kind: str) -> None:
    client = make_client(client_kind, fake_mps)
    request = submit_request()
    submitted = client.submit_fp_shot_job(request)
    assert len(submitted.job_id) == 32 and submitted.request_id
    assert fake_mps.job(submitted.job_id).request == request  # arrived intact: spaces, '+', '~', '*'

    queued = client.query_fp_shot_job_list(QueryFpShotJobListRequest(job_ids=[submitted.job_id]))
    assert [j.state for j in queued.jobs] == ["Queuing"]

    result = sample_result()
    fake_mps.complete(submitted.job_id, result=result, duration=42)
    missing = "0123456789abcdef0123456789abcdef"
    done = client.query_fp_shot_job_list(QueryFpShotJobListRequest(job_ids=[submitted.job_id, missing]))
    (job,) = done.jobs
    assert (job.id, job.state, job.user_data, job.pipeline_id, job.duration) == (
        submitted.job_id,
        "Success",
        "upload 42",
        "pipe-1",
        42,
    )
    assert job.input_file == request.input and job.fp_shot_config == request.fp_shot_config
    assert job.fp_shot_result == result  # survives the Tea SDK's typed models too
    assert done.missing_ids == [missing]

    reported = client.report_fp_shot_job_result(
        ReportFpShotJobResultRequest(job_id=submitted.job_id, result="false positive", details="frames 1-3")
    )
    assert reported.job_id == submitted.job_id
    assert [(r.job_id, r.result, r.details) for r in fake_mps.reports] == [
        (submitted.job_id, "false positive", "frames 1-3")
    ]
    assert {r.style for r in fake_mps.requests} == {EXPECTED_STYLE[client_kind]}
    assert [r.action for r in fake_mps.requests] == [
        "SubmitFpShotJob",
        "QueryFpShotJobList",
        "QueryFpShotJobList",
        "ReportFpShotJobResult",
    ]


def test_failed_job_code_and_message(fake_mps: FakeMps, client_kind: str) -> None:
    client = make_client(client_kind, fake_mps)
    job_id = client.submit_fp_shot_job(submit_request()).job_id
    fake_mps.fail(job_id, "InvalidInput.NotFound", "The input object does not exist.")
    (job,) = client.query_fp_shot_job_list(QueryFpShotJobListRequest(job_ids=[job_id])).jobs
    assert (job.state, job.code, job.message, job.fp_shot_result) == (
        "Fail",
        "InvalidInput.NotFound",
        "The input object does not exist.",
        None,
    )


def test_sts_credentials_are_sent(client_kind: str) -> None:
    with FakeMps(security_tokens={"stsAK": "token-xyz"}, secrets={"stsAK": "stsSecret"}) as server:
        client = make_client(client_kind, server)
        assert server.credentials().security_token == "token-xyz"
        client.submit_fp_shot_job(submit_request())
        assert server.calls(ok=True)
        forged = make_client(client_kind, server, credentials=Credentials("stsAK", "stsSecret", "other"))
        with pytest.raises(MpsError) as info:
            forged.submit_fp_shot_job(submit_request())
        assert info.value.code == "InvalidSecurityToken.MismatchWithAccessKey" and not info.value.retryable


def test_eleven_job_ids_fail_client_side(fake_mps: FakeMps, client_kind: str) -> None:
    ids = [f"{i:032x}" for i in range(11)]
    with pytest.raises(ValidationError):
        QueryFpShotJobListRequest(job_ids=ids)
    client = make_client(client_kind, fake_mps)
    with pytest.raises(MpsError) as info:  # a model that skipped validation is caught before sending
        client.query_fp_shot_job_list(QueryFpShotJobListRequest.model_construct(job_ids=ids))
    assert (info.value.code, info.value.retryable, info.value.http_status) == ("InvalidParameter", False, None)
    assert fake_mps.requests == []


# ------------------------------------------------------------------------------------- retries


def test_throttled_twice_then_success(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    fake_mps.throttle_next(2, "Throttling.User")
    client = make_client(client_kind, fake_mps, **retrying(clock))
    response = client.submit_fp_shot_job(submit_request())
    assert [r.status for r in fake_mps.requests] == [400, 400, 200]
    assert list(fake_mps.jobs) == [response.job_id]  # exactly one job
    assert clock.sleeps == pytest.approx([0.05, 0.1])  # full jitter at 0.5 of caps 0.1, 0.2: growing


def test_503_throttling_and_5xx_are_retried(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    fake_mps.throttle_next(1, "Throttling", status=503)
    fake_mps.fail_next(1, status=500, code="InternalError")
    fake_mps.fail_next(1, status=502, code="BadGateway")
    client = make_client(client_kind, fake_mps, **retrying(clock))
    client.query_fp_shot_job_list(QueryFpShotJobListRequest(job_ids=["j1"]))  # a query is safe to resend
    assert [r.status for r in fake_mps.requests] == [503, 500, 502, 200]
    assert len(clock.sleeps) == 3


def test_a_throttled_submit_is_resent(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    # Throttling (400 or 503) is answered before MPS does anything: sending again cannot make a second job.
    fake_mps.throttle_next(1, "Throttling", status=503)
    fake_mps.throttle_next(1, "Throttling.User", status=400)
    client = make_client(client_kind, fake_mps, **retrying(clock))
    client.submit_fp_shot_job(submit_request())
    assert [r.status for r in fake_mps.requests] == [503, 400, 200]
    assert len(fake_mps.jobs) == 1


@pytest.mark.parametrize("status", [0, 500, 503])
def test_a_submit_whose_answer_is_lost_is_never_resent(
    fake_mps: FakeMps, client_kind: str, clock: FakeClock, status: int
) -> None:
    # MPS created the job, then the connection dropped (what a read timeout looks like) or a 5xx came back:
    # a blind resend would create a second job with the same UserData. The caller must reconcile instead.
    fake_mps.accept_then_fail_next(1, status=status, code="ServiceUnavailable" if status else "InternalError")
    client = make_client(client_kind, fake_mps, **retrying(clock))
    with pytest.raises(MpsError) as info:
        client.submit_fp_shot_job(submit_request())
    assert info.value.maybe_accepted and info.value.retryable
    assert len(fake_mps.requests) == 1 and clock.sleeps == []
    assert len(fake_mps.jobs) == 1


def test_a_refused_submit_is_not_maybe_accepted(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    fake_mps.fail_next(1, status=400, code="InvalidParameter.DBNotExist", message="The DNA database does not exist.")
    fake_mps.throttle_next(5, "Throttling.User")
    client = make_client(client_kind, fake_mps)
    for _ in range(2):
        with pytest.raises(MpsError) as info:
            client.submit_fp_shot_job(submit_request())
        assert not info.value.maybe_accepted
    assert fake_mps.jobs == {}


def test_gives_up_after_max_attempts(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    fake_mps.throttle_next(10, "Throttling.Api")
    client = make_client(client_kind, fake_mps, **retrying(clock, attempts=3))
    with pytest.raises(MpsError) as info:
        client.submit_fp_shot_job(submit_request())
    err = info.value
    assert (err.code, err.http_status, err.retryable) == ("Throttling.Api", 400, True)
    assert err.request_id and err.message == "Request was denied due to api flow control."
    assert len(fake_mps.requests) == 3 and len(clock.sleeps) == 2


def test_non_retryable_error_is_not_retried(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    fake_mps.fail_next(1, status=400, code="InvalidParameter.DBNotExist", message="The DNA database does not exist.")
    client = make_client(client_kind, fake_mps, **retrying(clock))
    with pytest.raises(MpsError) as info:
        client.submit_fp_shot_job(submit_request())
    assert (info.value.code, info.value.http_status, info.value.retryable) == (
        "InvalidParameter.DBNotExist",
        400,
        False,
    )
    assert info.value.message == "The DNA database does not exist."
    assert len(fake_mps.requests) == 1 and clock.sleeps == []


def test_wrong_secret_is_not_retried(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    bad = Credentials(fake_mps.access_key_id, "not-the-secret")
    client = make_client(client_kind, fake_mps, credentials=bad, **retrying(clock))
    with pytest.raises(MpsError) as info:
        client.submit_fp_shot_job(submit_request())
    expected = {"core": "InvalidAccessKeySecret", "tea-v3": "IncompleteSignature", "tea-v1": "SignatureDoesNotMatch"}
    assert (info.value.code, info.value.http_status, info.value.retryable) == (expected[client_kind], 400, False)
    assert len(fake_mps.requests) == 1


def test_dropped_connection_is_retried(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    fake_mps.disconnect_next(1)
    client = make_client(client_kind, fake_mps, **retrying(clock))
    client.query_fp_shot_job_list(QueryFpShotJobListRequest(job_ids=["j1"]))  # a submit is not resent: see above
    assert [r.status for r in fake_mps.requests] == [0, 200]


def test_unreachable_endpoint_is_a_retryable_transport_error(client_kind: str, clock: FakeClock) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unstarted = FakeMps()  # only lends its credentials
    client = make_client(client_kind, unstarted, endpoint=f"http://127.0.0.1:{port}", **retrying(clock, attempts=3))
    with pytest.raises(MpsError) as info:
        client.query_fp_shot_job_list(QueryFpShotJobListRequest(job_ids=["j1"]))
    assert (info.value.code, info.value.retryable, info.value.http_status) == ("SDK.HttpError", True, None)
    assert len(clock.sleeps) == 2


TIMEOUTS = {"connect_timeout": 1.0, "read_timeout": 2.0}  # one attempt may take up to 3 s


def test_policy_deadline_stops_retrying_early(fake_mps: FakeMps, client_kind: str, clock: FakeClock) -> None:
    fake_mps.throttle_next(10)
    # Caps 0.4, 0.8, ... drawn at 0.999. Retry 1 starts at 0.3996 and could end at 3.3996 < 4; retry 2
    # would start at 1.1988 and could end past the 4 s budget, so the client stops after two requests.
    kwargs = retrying(clock, attempts=10, rand=0.999)
    kwargs["retry_policy"] = RetryPolicy(max_attempts=10, base_delay=0.4, max_delay=10.0, deadline=4.0)
    client = make_client(client_kind, fake_mps, **kwargs, **TIMEOUTS)
    with pytest.raises(MpsError) as info:
        client.submit_fp_shot_job(submit_request())
    assert info.value.retryable
    assert len(fake_mps.requests) == 2 and clock.sleeps == pytest.approx([0.3996])


def test_no_retry_starts_that_could_not_finish_by_the_deadline(fake_mps: FakeMps, clock: FakeClock) -> None:
    fake_mps.throttle_next(1)
    client = make_client("core", fake_mps, **retrying(clock, attempts=5), **TIMEOUTS)
    with pytest.raises(MpsError):  # 3 s of attempt budget does not fit in the 2.9 s left
        client.with_deadline(clock() + 2.9).submit_fp_shot_job(submit_request())
    assert len(fake_mps.requests) == 1
    client.with_deadline(clock() + 3.1).submit_fp_shot_job(submit_request())  # 0.05 + 3 s fits
    assert [r.status for r in fake_mps.requests] == [400, 200]


def test_with_deadline_bounds_a_single_invocation(fake_mps: FakeMps, clock: FakeClock) -> None:
    fake_mps.throttle_next(10)
    client = make_client("core", fake_mps, **retrying(clock, attempts=10, rand=0.999), **TIMEOUTS)
    bounded = client.with_deadline(clock() + 3.25)  # waits 0.0999, 0.1998 (+3 s each): the second overruns
    with pytest.raises(MpsError):
        bounded.submit_fp_shot_job(submit_request())
    assert len(fake_mps.requests) == 2
    assert client.deadline_at is None and bounded.rate_limiter is client.rate_limiter


# --------------------------------------------------------------------------------- rate limit


def test_rate_limiter_spaces_calls(fake_mps: FakeMps, client_kind: str) -> None:
    limiter_clock = FakeClock()
    limiter = TokenBucket(rate=20, burst=1, clock=limiter_clock, sleep=limiter_clock.sleep)
    client = make_client(client_kind, fake_mps, rate_limiter=limiter)
    for _ in range(3):
        client.submit_fp_shot_job(submit_request())
    assert limiter_clock.sleeps == pytest.approx([0.05, 0.05])
    assert len(fake_mps.requests) == 3


def test_retries_also_pass_the_rate_limiter(fake_mps: FakeMps, clock: FakeClock) -> None:
    fake_mps.throttle_next(1)
    limiter_clock = FakeClock()
    limiter = TokenBucket(rate=10, burst=1, clock=limiter_clock, sleep=limiter_clock.sleep)
    client = make_client("core", fake_mps, rate_limiter=limiter, **retrying(clock))
    client.submit_fp_shot_job(submit_request())
    assert len(fake_mps.requests) == 2 and limiter_clock.sleeps == pytest.approx([0.1])


# ------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (None, Endpoint("https", "mts.cn-beijing.aliyuncs.com")),
        ("mts.cn-beijing.aliyuncs.com", Endpoint("https", "mts.cn-beijing.aliyuncs.com")),
        ("127.0.0.1:8080", Endpoint("https", "127.0.0.1", 8080)),
        ("http://127.0.0.1:8080", Endpoint("http", "127.0.0.1", 8080)),
        ("https://mts.cn-shanghai.aliyuncs.com/", Endpoint("https", "mts.cn-shanghai.aliyuncs.com")),
    ],
)
def test_endpoint_parsing(endpoint: str | None, expected: Endpoint) -> None:
    assert Endpoint.parse(endpoint, "cn-beijing") == expected


@pytest.mark.parametrize("endpoint", ["ftp://host", "http://host/path", "http://"])
def test_bad_endpoints_are_rejected(endpoint: str) -> None:
    with pytest.raises(ValueError):
        Endpoint.parse(endpoint)


def test_default_client_targets_the_regional_https_endpoint() -> None:
    client = MpsClient(Credentials("ak", "sk"), region="cn-beijing")
    assert client.endpoint.url == "https://mts.cn-beijing.aliyuncs.com"
    assert client._build("SubmitFpShotJob", {"Input": "{}"}).get_protocol_type() == "https"


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("Throttling", 400, True),
        ("Throttling.User", 400, True),
        ("Throttling.Api", 503, True),
        ("InternalError", 500, True),
        ("ServiceUnavailable", 503, True),
        ("SDK.HttpError", None, True),
        ("AnythingAtAll", 502, True),
        ("InvalidParameter", 400, False),
        ("SignatureDoesNotMatch", 400, False),
        ("InvalidAccessKeyId.NotFound", 404, False),
        ("Forbidden.RAM", 403, False),
        ("ThrottlingLike", 400, False),
    ],
)
def test_retry_classification(code: str, status: int | None, retryable: bool) -> None:
    assert is_retryable(code, status) is retryable
