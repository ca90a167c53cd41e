"""The leader's peer-access component (appliance/agent/components/peer_access.py) on fake security groups: the
order of its changes, when it reads the groups, and what a failure says. Which rules are wanted is the rule's
(tests/unit/rules/test_peer_access.py)."""

from __future__ import annotations

import dataclasses

import pytest

from appliance.adapters.aws.security_groups import GroupsUnknown
from appliance.agent.components.peer_access import PEER_ACCESS_REFRESH, PeerAccess
from appliance.model.errors import AwsPermissionError
from appliance.model.instances import Instance, Listing
from appliance.model.members import LocalData
from appliance.model.observation import Observation
from appliance.model.security_groups import GroupRules
from tests.unit.agent.fakes import Clock, FakeGroups, client_error, cluster, member

EU, US = "eu-central-1", "us-east-1"
M1, M2 = member(1, "i-1", "127.0.1.4"), member(2, "i-2", "127.0.2.4")
LISTING = Listing(True, (Instance("i-1", "127.0.1.4", "InService", region=EU),
                         Instance("i-2", "127.0.2.4", "InService", region=US)))
LEADING = Observation(instance_id="i-1", peer_url="http://127.0.1.4:2380", local=LocalData(True, 1),
                      etcd_running=True, listing=LISTING, cluster=cluster(M1, M2), is_leader=True)
# us-east-1 still lets in an instance long gone (127.0.9.9), and neither group lets in the other region's member.
STALE = {EU: GroupRules(EU, "sg-1"), US: GroupRules(US, "sg-2", frozenset({"127.0.9.9/32"}), frozenset())}


def keeper(groups=STALE) -> tuple[PeerAccess, FakeGroups, Clock]:
    fake, clock = FakeGroups(groups), Clock()
    return PeerAccess(fake, clock), fake, clock


def test_additions_come_before_revocations():
    access, groups, _ = keeper()
    outcome = access.tick(LEADING)
    assert [str(c) for c in groups.applied] == [
        "open eu-central-1 ingress from 127.0.2.4/32", "open eu-central-1 egress to 127.0.2.4/32",
        "open us-east-1 ingress from 127.0.1.4/32", "open us-east-1 egress to 127.0.1.4/32",
        "close us-east-1 ingress from 127.0.9.9/32"]
    assert outcome == ", ".join(map(str, groups.applied)) and access.reason.last == outcome


def test_a_member_whose_instance_is_gone_keeps_its_rules_until_it_is_removed():
    access, groups, _ = keeper()
    access.tick(dataclasses.replace(LEADING, cluster=cluster(M1, M2, member(9, "i-9", "127.0.9.9"))))
    assert not any(c.cidr == "127.0.9.9/32" for c in groups.applied)


@pytest.mark.parametrize("change, reads", [
    (lambda s, clock: s, 1),
    (lambda s, clock: clock.advance(PEER_ACCESS_REFRESH - 1) or s, 1),
    (lambda s, clock: clock.advance(PEER_ACCESS_REFRESH) or s, 2),
    (lambda s, clock: dataclasses.replace(s, listing=dataclasses.replace(LISTING, instances=LISTING.instances + (
        Instance("i-3", "127.0.2.5", "InService", region=US),))), 2),
    (lambda s, clock: dataclasses.replace(s, cluster=cluster(M1, M2, member(3, "", "127.0.2.6", True))), 2),
    (lambda s, clock: dataclasses.replace(s, cluster=dataclasses.replace(s.cluster, leader_id=2)), 1),
], ids=["nothing changed", "just before the refresh", "after PEER_ACCESS_REFRESH", "a listed address",
        "a member's host", "a new leader, same hosts"])
def test_the_groups_are_read_only_when_addresses_or_hosts_change_or_after_the_refresh(change, reads):
    access, groups, clock = keeper()
    access.tick(LEADING)
    access.tick(change(LEADING, clock))
    assert groups.reads == reads


@pytest.mark.parametrize("error", [
    GroupsUnknown("us-east-1 has 2 groups tagged etcd-appliance:cluster=etcd"),
    AwsPermissionError("ec2:DescribeSecurityGroups is not allowed"),
    client_error("RequestLimitExceeded", "AuthorizeSecurityGroupIngress"),
], ids=["groups unknown", "access denied", "EC2 fails"])
def test_a_failure_says_unchanged_and_the_next_cycle_reads_again(error):
    access, groups, _ = keeper()
    groups.fail = error
    outcome = access.tick(LEADING)
    assert outcome.startswith("security groups unchanged, retrying after the next listing: ")
    assert groups.applied == []
    groups.fail = None
    access.tick(LEADING)
    assert groups.reads == 2 and len(groups.applied) == 5


@pytest.mark.parametrize("facts", [
    {"listing": Listing.unknown("throttled")}, {"listing": None}, {"cluster": None},
], ids=["incomplete listing", "no listing", "no cluster"])
def test_nothing_is_read_without_a_complete_listing_and_a_cluster(facts):
    access, groups, _ = keeper()
    access.tick(dataclasses.replace(LEADING, **facts))
    assert groups.reads == 0 and groups.applied == []
