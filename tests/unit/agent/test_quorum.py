"""The quorum-loss timer (appliance/agent/components/quorum.py): seconds etcd has run here with no member
seeing a leader, as a table of looks (each: seconds since the previous look, etcd running, a leader known)."""

from __future__ import annotations

import pytest

from appliance.agent.components.quorum import QuorumTimer
from tests.unit.agent.fakes import Clock


@pytest.mark.parametrize("looks, counted", [
    ([(0, True, True), (5, True, True)], [None, None]),
    ([(0, True, False), (5, True, False), (10, True, False)], [0.0, 5.0, 15.0]),
    ([(0, True, False), (5, True, True), (5, True, False)], [0.0, None, 0.0]),
    ([(0, True, False), (5, False, False), (5, True, False)], [0.0, None, 0.0]),
    ([(0, False, False), (30, False, False)], [None, None]),
], ids=["a leader is known", "no leader: counting", "a leader again: counted afresh",
        "etcd stopped: counted afresh", "etcd not running: nothing to count"])
def test_the_timer(looks, counted):
    clock = Clock()
    timer = QuorumTimer(clock)
    seen = []
    for seconds, running, leader_known in looks:
        clock.advance(seconds)
        seen.append(timer.observe(running, leader_known))
    assert seen == counted
    assert timer.lost is (counted[-1] is not None)


def test_reset_counts_afresh_after_a_recovery():
    clock = Clock()
    timer = QuorumTimer(clock)
    timer.observe(True, False)
    clock.advance(90.0)
    assert timer.observe(True, False) == 90.0
    timer.reset()
    assert timer.lost is False
    clock.advance(5.0)
    assert timer.observe(True, False) == 0.0
