"""shared.vocabulary: the state sets agree with each other and with the wire models that use them."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from shared.contracts.mps import FpShotJob, QueryFpShotJobListRequest
from shared.vocabulary import (
    FINAL_STATES,
    JOB_STATES,
    NON_FINAL_STATES,
    STATE_RANK,
    QueryState,
    overwrite_rule,
)


def test_state_sets_partition_the_job_states() -> None:
    assert set(JOB_STATES) == set(STATE_RANK) == FINAL_STATES | set(NON_FINAL_STATES)
    assert not FINAL_STATES & set(NON_FINAL_STATES)
    assert set(get_args(QueryState)) == {"All", *JOB_STATES}
    # Final states outrank every open one, so no open state can overwrite a final row.
    assert min(STATE_RANK[s] for s in FINAL_STATES) > max(STATE_RANK[s] for s in NON_FINAL_STATES)
    assert all(not overwrite_rule(s)[1] for s in FINAL_STATES)


def test_wire_models_accept_exactly_the_vocabulary() -> None:
    for state in JOB_STATES:
        assert FpShotJob.model_validate({"Id": "j", "State": state}).state == state
        assert FpShotJob.model_validate({"Id": "j", "State": state}).unknown_state is None
    # A State MPS may add later is accepted as not final, and kept for the logs.
    added = FpShotJob.model_validate({"Id": "j", "State": "Canceling"})
    assert (added.state, added.unknown_state, added.is_final) == ("Analysing", "Canceling", False)
    with pytest.raises(ValidationError):
        FpShotJob.model_validate({"Id": "j", "State": 7})
    with pytest.raises(ValidationError):
        QueryFpShotJobListRequest.model_validate({"State": "Done"})
