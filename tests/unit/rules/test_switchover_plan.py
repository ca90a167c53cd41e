"""switchover.plan as a table: both clusters' modes and the mirror's position decide the steps."""

import pytest

from appliance.model.modes import Mode
from appliance.rules.switchover_plan import Side, Step, plan

A, P = Mode.ACTIVE, Mode.PASSIVE
FULL = (Step.OLD_READ_ONLY, Step.CATCH_UP, Step.REVERSE_POSITION, Step.NEW_WRITABLE, Step.REVERSE_MIRROR)


def side(cluster_id, mode, mode_revision=5, revision=100, position=None):
    return Side(cluster_id, mode, mode_revision, revision, position)


@pytest.mark.parametrize("old, new, record, steps, refusal", [
    (side(1, A), side(2, P, position=90), False, FULL, ""),
    (side(1, A), side(2, P, position=90), True, FULL + (Step.WRITE_RECORD,), ""),
    (side(1, A), side(1, P, position=90), False, (), "same cluster"),
    (side(1, A), side(2, P), False, (), "never run"),
    (side(1, P), side(2, A), False, (Step.REVERSE_MIRROR,), ""),
    (side(1, P), side(2, A), True, (Step.REVERSE_MIRROR, Step.WRITE_RECORD), ""),
    (side(1, A), side(2, A, position=90), False, (), "both clusters are active"),
    (side(1, P, mode_revision=50), side(2, P, position=50), False,
     (Step.REVERSE_POSITION, Step.NEW_WRITABLE, Step.REVERSE_MIRROR), ""),
    (side(1, P, mode_revision=50), side(2, P, position=49), False, (), "behind OLD's last write"),
    (side(1, P, mode_revision=50), side(2, P), False, (), "behind OLD's last write"),
])
def test_plan(old, new, record, steps, refusal):
    decided = plan(old, new, record)
    assert decided.steps == steps
    assert (refusal in decided.refusal) if refusal else decided.refusal == ""
