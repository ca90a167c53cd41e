"""The leader's CloudWatch data point, as a table: once a minute, only from a serving leader with quorum."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.rules.leader_metric import PUT_INTERVAL, due

CASES = [
    ("first data point of a serving leader", True, True, None, True),
    ("a minute later", True, True, PUT_INTERVAL, True),
    ("within the minute", True, True, PUT_INTERVAL - 0.5, False),
    ("not the leader", True, False, None, False),
    ("not the leader, long since", True, False, 3600.0, False),
    ("no namespace set", False, True, None, False),
]


@pytest.mark.parametrize("configured, leader, since, put", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_when_the_leader_reports(configured, leader, since, put):
    assert due(configured, leader, since) is put


@given(st.booleans(), st.booleans(), st.one_of(st.none(), st.floats(0, 1e7)))
def test_never_more_than_once_a_minute_nor_from_a_follower(configured, leader, since):
    if due(configured, leader, since):
        assert configured and leader and (since is None or since >= PUT_INTERVAL)
