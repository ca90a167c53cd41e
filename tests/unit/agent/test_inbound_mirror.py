"""The inbound-mirror component (appliance/agent/components/inbound_mirror.py) with a fake mirror child and a
fake zone: when it starts, restarts and stops the mirror, where it mirrors from, and how often it reads the
other regions' read records. Whether a mirror is wanted is the rule's (tests/unit/rules/test_inbound_mirror.py).
"""

from __future__ import annotations

import dataclasses

import pytest

from appliance.agent.components.inbound_mirror import SOURCE_REFRESH, SOURCE_RETRY, InboundMirror
from appliance.model.errors import AwsPermissionError
from appliance.model.members import LocalData
from appliance.model.modes import Mode
from appliance.model.observation import Observation
from tests.unit.agent.fakes import Clock, client_error

HERE, THERE = "eu-central-1", "us-east-1"
READ_NAME = "_etcd-client._tcp.svc.example.org."
SETS = {HERE: ("1 1 2379 i-1.etcd.example.org.",),
        THERE: ("1 1 2379 i-7.etcd-us.example.org.", "1 1 2379 i-8.etcd-us.example.org.")}
ADDRESSES = {"i-1.etcd.example.org.": "10.0.0.1", "i-7.etcd-us.example.org.": "10.1.0.7",
             "i-8.etcd-us.example.org.": "10.1.0.8", "i-9.etcd-us.example.org.": "10.1.0.9"}
FROM_THERE = ("http://10.1.0.7:2379", "http://10.1.0.8:2379")
PASSIVE_LEADER = Observation(instance_id="i-1", peer_url="http://10.0.0.1:2380", local=LocalData(True, 1),
                             etcd_running=True, is_leader=True, mode=(Mode.PASSIVE, 3))


class Child:
    """The mirror process: its source while it runs, the sources it was started from, how often it was stopped."""

    def __init__(self):
        self.source = None
        self.started: list[tuple[str, ...]] = []
        self.stops = 0
        self.wait = 0.0
        self.last_exit = ""

    def running_source(self):
        return self.source

    def hold_off(self) -> float:
        return self.wait

    def start(self, source) -> None:
        self.started.append(tuple(source))
        self.source = tuple(source)

    def stop(self) -> None:
        self.stops += 1
        self.source = None


class Zone:
    """The read records' latency sets and their targets' A records; ``fail``: what every call raises."""

    def __init__(self, sets=SETS):
        self.sets = dict(sets)
        self.fail: Exception | None = None
        self.reads = 0
        self.looked_up: list[set[str]] = []

    def latency_sets(self, read_name: str):
        assert read_name == READ_NAME
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return dict(self.sets)

    def addresses(self, hosts):
        self.looked_up.append(set(hosts))
        return {h: ADDRESSES[h] for h in hosts if h in ADDRESSES}


def mirror(sets=SETS) -> tuple[InboundMirror, Child, Zone, Clock]:
    child, zone, clock = Child(), Zone(sets), Clock()
    return InboundMirror(child, zone, READ_NAME, HERE, "http", clock), child, zone, clock


def test_a_passive_leader_mirrors_from_the_one_other_region_publishing_members():
    inbound, child, zone, _ = mirror()
    reason = inbound.tick(PASSIVE_LEADER, True)
    assert child.started == [FROM_THERE] and inbound.region_mirrored == THERE
    assert reason == f"passive: mirroring from {THERE} ({', '.join(FROM_THERE)})"
    assert zone.looked_up == [{"i-7.etcd-us.example.org.", "i-8.etcd-us.example.org."}]  # not its own region's


@pytest.mark.parametrize("facts, serving", [
    ({"mode": (Mode.ACTIVE, 9)}, True),
    ({"is_leader": False}, True),
    ({}, False),
], ids=["the cluster turned active", "no longer the leader", "not serving"])
def test_the_mirror_stops(facts, serving):
    inbound, child, _, _ = mirror()
    inbound.tick(PASSIVE_LEADER, True)
    inbound.tick(dataclasses.replace(PASSIVE_LEADER, **facts), serving)
    assert (child.stops, child.source, inbound.region_mirrored) == (1, None, None)
    inbound.tick(dataclasses.replace(PASSIVE_LEADER, **facts), serving)
    assert child.stops == 1 and len(child.started) == 1  # stopped once, not started again


@pytest.mark.parametrize("sets", [
    {HERE: SETS[HERE]},
    {**SETS, "ap-south-1": ("1 1 2379 i-9.etcd-us.example.org.",)},
    {**SETS, THERE: ("1 1 2379 i-6.unknown.example.org.",)},
], ids=["no other region", "two other regions", "the other region's targets have no address"])
def test_no_mirror_without_exactly_one_source(sets):
    inbound, child, _, _ = mirror(sets)
    inbound.tick(PASSIVE_LEADER, True)
    assert child.started == [] and inbound.region_mirrored is None


@pytest.mark.parametrize("error", [client_error("Throttling", "ListResourceRecordSets"),
                                   AwsPermissionError("route53:ListResourceRecordSets is not allowed")],
                         ids=["Route53 fails", "Route53 refuses"])
def test_route53_failing_keeps_the_last_sources(error):
    inbound, child, zone, clock = mirror()
    inbound.tick(PASSIVE_LEADER, True)
    zone.fail = error
    clock.advance(SOURCE_REFRESH)
    reason = inbound.tick(PASSIVE_LEADER, True)
    assert zone.reads == 2  # it did look again
    assert (child.started, child.stops, inbound.region_mirrored) == ([FROM_THERE], 0, THERE)
    assert reason.startswith(f"passive: mirroring from {THERE}")


def test_the_read_records_are_read_again_only_after_their_interval():
    inbound, child, zone, clock = mirror({HERE: SETS[HERE]})  # nothing to mirror from yet: retried often
    inbound.tick(PASSIVE_LEADER, True)
    clock.advance(SOURCE_RETRY - 1)
    inbound.tick(PASSIVE_LEADER, True)
    assert zone.reads == 1
    zone.sets = dict(SETS)
    clock.advance(1)
    inbound.tick(PASSIVE_LEADER, True)
    assert zone.reads == 2 and child.started == [FROM_THERE]
    clock.advance(SOURCE_REFRESH - 1)  # while the mirror runs: seldom
    inbound.tick(PASSIVE_LEADER, True)
    assert zone.reads == 2


def test_new_members_there_restart_the_mirror_and_only_new_targets_are_looked_up():
    inbound, child, zone, clock = mirror()
    inbound.tick(PASSIVE_LEADER, True)
    zone.sets[THERE] = ("1 1 2379 i-7.etcd-us.example.org.", "1 1 2379 i-9.etcd-us.example.org.")
    clock.advance(SOURCE_REFRESH)
    inbound.tick(PASSIVE_LEADER, True)
    assert child.stops == 1 and child.started[-1] == ("http://10.1.0.7:2379", "http://10.1.0.9:2379")
    assert zone.looked_up[-1] == {"i-9.etcd-us.example.org."}


def test_a_mirror_that_exited_is_started_again_after_its_hold_off():
    inbound, child, _, _ = mirror()
    child.wait, child.last_exit = 3.0, "exited with code 3"
    reason = inbound.tick(PASSIVE_LEADER, True)
    assert child.started == [] and reason.endswith("starting it again in 3 s")
    child.wait = 0.0
    inbound.tick(PASSIVE_LEADER, True)
    assert child.started == [FROM_THERE]
