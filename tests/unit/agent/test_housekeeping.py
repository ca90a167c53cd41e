"""The leader's housekeeping component on a fake etcd: its lease, the removal it carries out, its history,
and its metrics. The removal guards themselves are the rule's (tests/unit/rules/test_housekeeping.py)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.housekeeping import Housekeeping, Outcome
from appliance.model.instances import Instance, Listing
from appliance.model.keys import HOUSEKEEPING_KEY
from appliance.model.members import LocalData, MemberHealth
from appliance.model.observation import Observation
from appliance.rules.housekeeping import HousekeepingDecision
from tests.unit.agent.fakes import Clock, FakeEtcd, cluster, member

ME, GRACE = "i-1", 300.0
M1, M2, M3 = member(1, ME, "127.0.1.4"), member(2, "i-2", "127.0.1.5"), member(3, "i-3", "127.0.1.6")
# i-3's instance is gone from a complete listing.
LISTING = Listing(True, (Instance(ME, "127.0.1.4", "InService"), Instance("i-2", "127.0.1.5", "InService")),
                  gone=frozenset({"i-3"}))
LEADING = Observation(instance_id=ME, peer_url="http://127.0.1.4:2380", local=LocalData(True, 1), etcd_running=True,
                      listing=LISTING, cluster=cluster(M1, M2, M3), is_leader=True,
                      member_health=(MemberHealth(M1, True), MemberHealth(M2, True), MemberHealth(M3, False)))


def keeper(snapshot_done_at=lambda: None) -> tuple[Housekeeping, FakeEtcd, Clock, AgentMetrics]:
    etcd, clock, metrics = FakeEtcd(), Clock(), AgentMetrics()
    return Housekeeping(etcd, ME, 15, GRACE, snapshot_done_at, metrics, clock), etcd, clock, metrics


def last_success(metrics: AgentMetrics) -> float:
    return metrics.registry.get_sample_value("etcd_appliance_housekeeping_last_success_timestamp_seconds")


def test_the_lease_is_taken_then_renewed():
    h, etcd, clock, _ = keeper()
    assert h.tick(LEADING).lease_holder == ME
    assert etcd.calls == ["lease_grant", "create_if_absent"] and etcd.keys[HOUSEKEEPING_KEY][0] == ME.encode()
    etcd.calls.clear()
    clock.advance(5.0)
    assert h.tick(LEADING).lease_holder == ME
    assert etcd.calls == ["lease_keepalive"]  # renewed, not taken again


def test_a_lease_held_by_another_agent_removes_nothing():
    h, etcd, clock, _ = keeper()
    etcd.keys[HOUSEKEEPING_KEY] = (b"i-9", 0x99)
    h.tick(LEADING)
    clock.advance(GRACE + 1)
    outcome = h.tick(LEADING)
    assert (outcome.lease_holder, outcome.removed, etcd.removed) == ("i-9", False, [])
    assert etcd.leases == {}  # the lease granted for the attempt is given back


@pytest.mark.parametrize("after, facts, removed, reason", [
    (100.0, {}, [], "instance gone for 100 s of the 300 s grace"),
    (GRACE + 1, {}, [3], "removing it"),
    (GRACE + 1, {"member_health": (MemberHealth(M1, True), MemberHealth(M2, False), MemberHealth(M3, False))}, [],
     "below the quorum"),
    (GRACE + 1, {"upgrade_lock_holder": "i-9"}, [], "upgrade lock held by i-9"),
], ids=["within the grace", "after the grace, quorum kept", "after the grace, quorum would break",
        "the upgrade lock is held"])
def test_a_gone_members_removal(after, facts, removed, reason):
    h, etcd, clock, _ = keeper()
    h.tick(LEADING)  # first seen gone now
    clock.advance(after)
    outcome = h.tick(dataclasses.replace(LEADING, **facts))
    assert etcd.removed == removed and outcome.removed is bool(removed)
    assert reason in h.reason.last
    assert (3 in h.gone_since) is not removed  # a removed member is no longer tracked


def test_the_history_keeps_a_decision_once_per_gist():
    h, _, clock, _ = keeper()
    for _ in range(4):  # the same decision, only the durations grow
        h.tick(LEADING)
        clock.advance(60.0)
    assert [d["action"] for d in h.history] == ["none"] and "gone for 0 s of the 300 s grace" in h.history[0]["reason"]
    clock.advance(GRACE)
    h.tick(LEADING)
    assert [(d["action"], d["member"], d["instance"]) for d in h.history] == [
        ("none", None, None), ("remove-member", "3", "i-3")]


def test_a_refused_removal_is_logged_once_and_not_counted_as_removed(caplog):
    h, etcd, clock, _ = keeper()
    etcd.refuse["member_remove"] = "etcdserver: unhealthy cluster"
    h.tick(LEADING)
    clock.advance(GRACE + 1)
    with caplog.at_level(logging.INFO, "agent"):
        outcomes = [h.tick(LEADING) for _ in range(3)]
    assert [o.removed for o in outcomes] == [False, False, False] and etcd.removed == []
    assert caplog.text.count("removing member 3 not done yet: etcdserver: unhealthy cluster") == 1
    assert 3 in h.gone_since  # still tracked: the next cycle decides again
    del etcd.refuse["member_remove"]
    assert h.tick(LEADING).removed is True and etcd.removed == [3]


def test_a_removal_waits_for_a_snapshot_attempt_after_the_instance_went():
    done_at = [float("-inf")]
    h, etcd, clock, _ = keeper(lambda: done_at[0])
    h.tick(LEADING)
    clock.advance(GRACE + 1)
    outcome = h.tick(LEADING)
    assert outcome.decision.snapshot_first and etcd.removed == []
    done_at[0] = clock()  # the backups component attempted one
    assert h.tick(LEADING).removed is True


@pytest.mark.parametrize("holder, success", [(ME, True), ("i-9", False), (None, False)],
                         ids=["the lease holder", "another holder", "holder unknown"])
def test_completed_counts_a_success_only_for_the_lease_holder(holder, success):
    h, _, _, metrics = keeper()
    h.completed(Outcome(HousekeepingDecision(None, "nothing to do"), holder))
    assert (last_success(metrics) > 0) is success


def test_step_down_gives_the_lease_back():
    h, etcd, _, _ = keeper()
    h.tick(LEADING)
    lease = etcd.keys[HOUSEKEEPING_KEY][1]
    h.step_down()
    assert HOUSEKEEPING_KEY not in etcd.keys and lease not in etcd.leases and h.lock.lease_id is None
    etcd.calls.clear()
    h.step_down()  # nothing held: nothing asked
    assert etcd.calls == []


def test_the_decisions_are_counted_and_calm_follows_the_members():
    h, _, _, metrics = keeper()
    h.tick(LEADING)
    assert metrics.registry.get_sample_value("etcd_appliance_decisions_total",
                                             {"decider": "housekeeping", "action": "none"}) == 1
    assert h.calm is False  # a gone member keeps the leader busy
    calm = dataclasses.replace(LEADING, cluster=cluster(M1, M2), listing=dataclasses.replace(LISTING, gone=frozenset()),
                               member_health=(MemberHealth(M1, True), MemberHealth(M2, True)))
    h.tick(calm)
    assert h.calm is True
