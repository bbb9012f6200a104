"""MPS (Mts 2014-06-18) adapters for `shared.ports.MpsPort`: official-SDK clients with our own retry policy
(full-jitter backoff, attempt cap, deadline) and a client-side token bucket.

    client = MpsClient(resolve_credentials(context), region="cn-shanghai")
    job = client.with_deadline(time.monotonic() + 50).submit_fp_shot_job(request)

`TeaMpsClient` (alibabacloud-mts20140618, ACS3 signatures) offers the same port and is imported lazily.
"""

from shared.mps.client import (
    RETRYABLE_CODES,
    Endpoint,
    MpsClient,
    TeaMpsClient,
    is_retryable,
    wire_params,
)
from shared.mps.ratelimit import DEFAULT_BURST, DEFAULT_RATE, RateLimiter, TokenBucket, Unlimited
from shared.ports import MpsError
from shared.retry import NO_RETRY, Retrier, RetryPolicy, is_retryable_error

__all__ = [
    "DEFAULT_BURST",
    "DEFAULT_RATE",
    "NO_RETRY",
    "RETRYABLE_CODES",
    "Endpoint",
    "MpsClient",
    "MpsError",
    "RateLimiter",
    "Retrier",
    "RetryPolicy",
    "TeaMpsClient",
    "TokenBucket",
    "Unlimited",
    "is_retryable",
    "is_retryable_error",
    "wire_params",
]
