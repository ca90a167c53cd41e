"""The leader's removal decision as a table: every guard of docs/design.md, "Removal guards"."""

import pytest

from appliance.model.instances import Instance, Listing
from appliance.model.members import Member, MemberHealth
from appliance.rules.housekeeping import HousekeepingFacts, InstanceFate, calm, decide, fate, gist, track_gone

LEADER, B, GONE = "i-01", "i-02", "i-03"


def m(mid, name, ip, learner=False):
    return Member(mid, name, (f"http://{ip}:2380",), (f"http://{ip}:2379",) if name else (), learner)


M1, M2, M3 = m(1, LEADER, "127.0.1.4"), m(2, B, "127.0.1.5"), m(3, GONE, "127.0.1.6")
PRESENT = (Instance(LEADER, "127.0.1.4", "InService"), Instance(B, "127.0.1.5", "InService"),
           Instance("i-04", "127.0.1.7", "InService"))
GONE_LISTING = Listing(True, PRESENT, gone=frozenset({GONE}))
HEALTH = (MemberHealth(M1, True), MemberHealth(M2, True), MemberHealth(M3, False))


def facts(**kw):
    base = dict(now=100.0, is_leader=True, lease_holder=LEADER, me=LEADER, listing=GONE_LISTING,
                members=HEALTH, gone_since={3: 90.0}, grace_period=5.0, upgrade_lock_holder=None)
    base.update(kw)
    return HousekeepingFacts(**base)


CASES = [
    ("all guards hold: remove", facts(), 3, "removing it"),
    ("not the leader", facts(is_leader=False), None, "not the etcd leader"),
    ("lease held by another", facts(lease_holder=B), None, "lease held by i-02"),
    ("lease unknown", facts(lease_holder=None), None, "lease held by nobody"),
    ("incomplete listing", facts(listing=Listing(False, PRESENT, problem="throttled")), None, "incomplete"),
    ("no listing", facts(listing=None), None, "incomplete"),
    ("within grace", facts(gone_since={3: 97.0}), None, "grace"),
    ("upgrade lock", facts(upgrade_lock_holder="i-09"), None, "upgrade lock held by i-09"),
    ("quorum would break", facts(members=(MemberHealth(M1, True), MemberHealth(M2, False), MemberHealth(M3, False))),
     None, "below the quorum"),
    ("instance present: nothing", facts(listing=Listing(True, PRESENT + (Instance(GONE, "127.0.1.6", "InService"),))),
     None, "known to be gone"),
    ("terminating instance counts as gone",
     facts(listing=Listing(True, PRESENT + (Instance(GONE, "127.0.1.6", "Terminating"),))), 3, "terminating"),
    ("member not in the group and not confirmed gone: unknown, keep",
     facts(listing=Listing(True, PRESENT)), None, "known to be gone"),
    ("never-started learner of a vanished IP: remove first",
     facts(members=HEALTH + (MemberHealth(m(9, "", "127.0.1.99", learner=True), False),),
          gone_since={3: 90.0, 9: 80.0}), 9, "never started"),
    ("snapshots on, none attempted since the instance went: snapshot first",
     facts(snapshot_done_at=85.0), None, "taking a snapshot before removing it"),
    ("snapshots on, an attempt ended after the instance went (failed or not): remove",
     facts(snapshot_done_at=95.0), 3, "removing it"),
    ("snapshots on, never attempted: snapshot first", facts(snapshot_done_at=float("-inf")), None,
     "taking a snapshot before removing it"),
    ("snapshot pending but within grace: the grace speaks", facts(gone_since={3: 97.0}, snapshot_done_at=0.0), None,
     "grace"),
]


@pytest.mark.parametrize("name,snapshot,removed,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, snapshot, removed, words):
    verdict = decide(snapshot)
    assert (verdict.member.id if verdict.member else None) == removed, verdict.reason
    assert words in verdict.reason
    assert verdict.snapshot_first == ("taking a snapshot" in words)
    assert verdict.action == ("remove-member" if removed else "snapshot-first" if verdict.snapshot_first else "none")


def test_fate():
    listing = Listing(True, PRESENT + (Instance("i-05", "127.0.1.8", "Terminating:Wait"),), gone=frozenset({GONE}))
    assert fate(M1, listing) is InstanceFate.PRESENT
    assert fate(M3, listing) is InstanceFate.GONE
    assert fate(m(5, "i-05", "127.0.1.8"), listing) is InstanceFate.TERMINATING
    assert fate(m(6, "i-06", "127.0.1.9"), listing) is InstanceFate.UNKNOWN
    assert fate(m(7, "", "127.0.1.7", learner=True), listing) is InstanceFate.PRESENT


def test_track_gone_keeps_first_time_and_ignores_incomplete_listings():
    members = (M1, M2, M3)
    first = track_gone({}, members, GONE_LISTING, now=10.0)
    assert first == {3: 10.0}
    assert track_gone(first, members, GONE_LISTING, now=20.0) == {3: 10.0}
    assert track_gone(first, members, Listing(False, problem="x"), now=30.0) == {3: 10.0}
    back = Listing(True, PRESENT + (Instance(GONE, "127.0.1.6", "InService"),))
    assert track_gone(first, members, back, now=40.0) == {}


@pytest.mark.parametrize("a,b,same", [
    pytest.param("member 3 (i-03): instance gone for 2 s of the 300 s grace",
                 "member 3 (i-03): instance gone for 4 s of the 300 s grace", True, id="only-the-duration-grew"),
    pytest.param("member 3 (i-03): instance gone for 12 s: taking a snapshot before removing it",
                 "member 3 (i-03): instance gone for 14.5 s: taking a snapshot before removing it", True,
                 id="fractional-seconds"),
    pytest.param("member 3 (i-03): instance gone for 2 s of the 300 s grace",
                 "member 4 (i-04): instance gone for 2 s of the 300 s grace", False, id="another-member"),
    pytest.param("member 3 (i-03): instance gone for 299 s of the 300 s grace",
                 "member 3 (i-03): instance gone for 301 s (grace 300 s): removing it", False, id="grace-over"),
    pytest.param("member 3 (i-03): removal would leave 1 healthy of 2 voting members, below the quorum of 2",
                 "member 3 (i-03): removal would leave 0 healthy of 2 voting members, below the quorum of 2", False,
                 id="counts-are-not-durations"),
    pytest.param("upgrade lock held by i-09: removing nothing", "no member's instance is known to be gone", False,
                 id="different-words"),
])
def test_gist_leaves_out_durations_only(a, b, same):
    assert (gist(a) == gist(b)) == same


TWO = (MemberHealth(M1, True), MemberHealth(M2, True))
LISTED = Listing(True, PRESENT)


@pytest.mark.parametrize("members, gone_since, listing, expected", [
    pytest.param(TWO, {}, LISTED, True, id="healthy-voters-all-listed"),
    pytest.param((MemberHealth(M1, True), MemberHealth(M2, False)), {}, LISTED, False, id="a-member-unhealthy"),
    pytest.param((MemberHealth(M1, True), MemberHealth(m(2, B, "127.0.1.5", learner=True), True)), {}, LISTED,
                 False, id="a-learner-catching-up"),
    pytest.param(TWO, {3: 90.0}, LISTED, False, id="an-instance-gone"),
    pytest.param(TWO + (MemberHealth(m(5, "i-05", "127.0.1.9"), True),), {}, LISTED, False,
                 id="a-member-the-listing-does-not-show-yet"),
    pytest.param(TWO + (MemberHealth(m(5, "i-05", "127.0.1.9"), True),), {}, Listing.unknown("throttled"), True,
                 id="an-incomplete-listing-says-nothing-of-members"),
])
def test_calm(members, gone_since, listing, expected):
    """The leader lists AWS at its slow pace only while nothing changes."""
    assert calm(members, gone_since, listing) is expected
