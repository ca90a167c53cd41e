"""The listing cadence (appliance/agent/components/listing.py) on a fake discovery and clock: who lists AWS how
often, who asks only its own lifecycle state, and that AccessDenied makes the listing unknown instead of raising."""

from __future__ import annotations

import logging

import pytest

from appliance.agent.components.listing import BUSY_LISTING_INTERVAL, ListingCadence
from appliance.model.errors import AwsPermissionError
from appliance.model.instances import Instance, Listing
from tests.unit.agent.fakes import Clock

INTERVAL = 30.0
LISTING = Listing(True, (Instance("i-1", "127.0.1.4", "InService"),))
DENIED = AwsPermissionError("autoscaling:DescribeAutoScalingGroups is not allowed (AccessDenied)")


class Discovery:
    def __init__(self):
        self.calls: list[str] = []
        self.confirmed: list[list[str]] = []
        self.fail: Exception | None = None

    def list(self, confirm=()):
        self.calls.append("list")
        self.confirmed.append(list(confirm))
        if self.fail is not None:
            raise self.fail
        return LISTING

    def own_lifecycle_state(self):
        self.calls.append("own_lifecycle_state")
        if self.fail is not None:
            raise self.fail
        return "Terminating:Wait"


def cadence(calm: bool = False) -> tuple[ListingCadence, Discovery, Clock]:
    discovery, clock = Discovery(), Clock()
    c = ListingCadence(discovery, INTERVAL, clock)
    c.start_with(Listing.unknown("the first listing, at start-up"))
    c.calm = calm
    return c, discovery, clock


@pytest.mark.parametrize("running, leading, calm, quorum_lost, lists, own_asks", [
    (True, True, False, False, 60 / BUSY_LISTING_INTERVAL, 0),
    (True, True, True, False, 60 / INTERVAL, 0),
    (False, False, False, False, 60 / BUSY_LISTING_INTERVAL, 0),
    (True, False, False, True, 60 / BUSY_LISTING_INTERVAL, 0),
    (True, False, False, False, 0, 60 / INTERVAL),
], ids=["leader, busy", "leader, calm", "no etcd here", "member without quorum", "follower"])
def test_who_lists_how_often_in_a_minute(running, leading, calm, quorum_lost, lists, own_asks):
    c, discovery, clock = cadence(calm)
    for _ in range(60):
        clock.advance(1.0)
        c.observe(running, leading, quorum_lost, ["i-1"])
    assert (discovery.calls.count("list"), discovery.calls.count("own_lifecycle_state")) == (lists, own_asks)


def test_a_follower_keeps_the_last_listing_and_learns_its_own_state():
    c, _, clock = cadence()
    first = c.listing
    clock.advance(INTERVAL)
    assert c.observe(True, False, False, ["i-1"]) is first
    assert c.own_state == "Terminating:Wait"


def test_only_instance_ids_are_confirmed():
    c, discovery, clock = cadence()
    clock.advance(BUSY_LISTING_INTERVAL)
    assert c.observe(False, False, False, ["i-1", "", "i-0b", "etcd-seed"]) == LISTING
    assert discovery.confirmed == [["i-1", "i-0b"]]


def test_access_denied_makes_the_listing_unknown_and_never_raises(caplog):
    c, discovery, clock = cadence()
    discovery.fail = DENIED
    clock.advance(BUSY_LISTING_INTERVAL)
    with caplog.at_level(logging.ERROR, "agent"):
        listing = c.observe(True, True, False, ["i-1"])
    assert listing.complete is False and listing.problem == str(DENIED) and listing.instances == ()
    assert str(DENIED) in caplog.text
    clock.advance(1.0)
    c.observe(True, True, False, ["i-1"])
    assert discovery.calls.count("list") == 1  # counted as a listing: not asked again before it is due


def test_access_denied_on_the_own_state_is_logged_and_never_raises(caplog):
    c, discovery, clock = cadence()
    discovery.fail = DENIED
    clock.advance(INTERVAL)
    with caplog.at_level(logging.ERROR, "agent"):
        c.observe(True, False, False, ["i-1"])
    assert c.own_state is None and str(DENIED) in caplog.text
    clock.advance(1.0)
    c.observe(True, False, False, ["i-1"])
    assert discovery.calls == ["own_lifecycle_state"]
