"""The project's shared vocabulary: job states, the outcome statuses services report, the default region, and
the limits MPS and Tablestore impose. One place, so the functions, the stores and the engine can't drift apart.

States are `Literal`s (they are wire values; pydantic validates them and mypy checks every comparison) with a
named constant for each value.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# ------------------------------------------------------------------------------------------- job states

# An MPS fingerprint job (FpShotJob.State). A job only moves forward: Queuing < Analysing < Success | Fail.
JobState = Literal["Queuing", "Analysing", "Success", "Fail"]
QUEUING: Final = "Queuing"
ANALYSING: Final = "Analysing"
SUCCESS: Final = "Success"
FAIL: Final = "Fail"
JOB_STATES: tuple[JobState, ...] = get_args(JobState)
FINAL_STATES: frozenset[str] = frozenset({SUCCESS, FAIL})
NON_FINAL_STATES: tuple[JobState, ...] = (QUEUING, ANALYSING)
# A late "Analysing" must never overwrite a stored "Success": the stores compare these ranks.
STATE_RANK: dict[str, int] = {QUEUING: 0, ANALYSING: 1, SUCCESS: 2, FAIL: 2}



def state_rank(state: str) -> int:
    try:
        return STATE_RANK[state]
    except KeyError:
        raise ValueError(f"unknown job state {state!r}; expected one of {sorted(STATE_RANK)}") from None


def overwrite_rule(state: str) -> tuple[int, bool]:
    """`(rank, allow_equal)`: a stored job may be overwritten by one in `state` iff its rank is below `rank`,
    or equal to it when `allow_equal`. Equal non-final states refresh the row (the sweeper re-queried it);
    a final state is never rewritten, so a redelivered or contradicting final result is a no-op.
    The stores apply this rule as a conditional write; this is the one place it is decided."""
    return state_rank(state), state not in FINAL_STATES


# The State filter of QueryFpShotJobList.
QueryState = Literal["All", "Queuing", "Analysing", "Fail", "Success"]

# ------------------------------------------------------------------------------------ claims and outcomes

# An object claim's lease (ObjectClaim.status).
ClaimStatus = Literal["IN_PROGRESS", "COMPLETED", "MAYBE_SUBMITTED"]
CLAIM_IN_PROGRESS: Final = "IN_PROGRESS"
CLAIM_COMPLETED: Final = "COMPLETED"
# The submit may have reached MPS (a timeout, a 5xx, or a failure after it answered): the claim is kept, its
# lease already expired, so the next delivery takes it over and looks the job up by UserData before submitting.
CLAIM_MAYBE_SUBMITTED: Final = "MAYBE_SUBMITTED"
# Claims a later delivery may take over once their lease has run out (both may have submitted already).
CLAIM_TAKEOVER_STATUSES: frozenset[str] = frozenset({CLAIM_IN_PROGRESS, CLAIM_MAYBE_SUBMITTED})

# What submitting one object to one library came to (SubmitOutcome.status).
SubmitStatus = Literal["submitted", "duplicate", "rejected", "skipped", "in_progress"]
# What recording one job came to (RecordOutcome.status).
RecordStatus = Literal["stored", "unchanged", "pending", "missing", "parked"]

# ------------------------------------------------------------------------------------------------ region

DEFAULT_REGION: Final = "cn-shanghai"

# ------------------------------------------------------------------------------------------------ limits

MAX_USER_DATA_BYTES: Final = 128  # SubmitFpShotJob UserData
MAX_QUERY_JOB_IDS: Final = 10  # JobIds per QueryFpShotJobList
MAX_JOB_ID_LENGTH: Final = 64  # MPS job ids are 32 hex characters; anything much longer is not one
MAX_QUERY_PAGE_SIZE: Final = 100  # QueryFpShotJobList MaximumPageSize
MAX_BUCKET_LENGTH: Final = 63  # OSS bucket name (InputFile.Bucket)
MAX_LOCATION_LENGTH: Final = 64  # InputFile.Location, e.g. "oss-cn-shanghai"
MAX_OBJECT_LENGTH: Final = 1024  # bytes of the UTF-8 object key (InputFile.Object), not of its URL-encoded form
TABLESTORE_MAX_BATCH_ROWS: Final = 200  # rows per BatchWriteRow request
TABLESTORE_MAX_FILTER_CONDITIONS: Final = 10  # column conditions per filter
