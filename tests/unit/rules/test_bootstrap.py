"""The bootstrap rule as a table of observations: seed (announce, then check), join as a learner, rejoin
with data. No AWS, no etcd."""

import dataclasses

import pytest

from appliance.model.decisions import Action
from appliance.model.instances import Instance, Listing
from appliance.model.members import ClusterView, LocalData
from appliance.model.observation import Marker, Observation, PeerStatus
from appliance.rules.lifecycle import decide
from tests.unit.rules.observations import (
    CLUSTER,
    CLUSTER_34,
    FRESH_PEERS,
    FULL,
    ME,
    NO_DATA,
    A,
    B,
    assert_decides,
    listing,
    member,
    obs,
)

CASES = [
    # (name, observation, expected action, words the reason must contain)
    # (name, snapshot, expected action, words the reason must contain)
    ("lowest of a fresh group: announce first", obs(), Action.ANNOUNCE_SEED, "announcing the intent"),
    ("announced and still clear: seed", obs(seed_announced=True), Action.SEED, "checked after announcing"),
    ("a peer announced it seeds: wait, even if lower",
     obs(peers={A: PeerStatus(A, False, False, seeding=True), B: PeerStatus(B, False, False)}),
     Action.WAIT, "i-0b announced it seeds"),
    ("announced, but a lower instance appeared since: wait",
     obs(seed_announced=True, listing=Listing(True, FULL.instances + (Instance("i-00", "127.0.1.9", "InService"),)),
          peers={**FRESH_PEERS, "i-00": PeerStatus("i-00", False, False)}),
     Action.WAIT, "waiting for i-00"),
    ("not lowest: wait for the lowest",
     obs(instance_id="i-0z", peer_url="http://127.0.1.9:2380",
          listing=Listing(True, FULL.instances + (Instance("i-0z", "127.0.1.9", "InService"),)),
          peers={**FRESH_PEERS, ME: PeerStatus(ME, False, False)}),
     Action.WAIT, "waiting for i-0a"),
    ("partial listing never seeds", obs(listing=listing("InService", "InService", "InService", complete=False,
                                                         problem="EC2 does not describe i-0c")),
     Action.WAIT, "incomplete"),
    ("no listing never seeds", obs(listing=None), Action.WAIT, "incomplete"),
    ("a silent peer may hold a cluster: wait", obs(peers={A: PeerStatus(A, False, False), B: None}),
     Action.WAIT, "no answer from the agents of i-0c"),
    ("a peer with data: wait for it", obs(peers={A: PeerStatus(A, False, True), B: PeerStatus(B, False, False)}),
     Action.WAIT, "hold a member's data"),
    ("a peer running etcd: wait", obs(peers={A: PeerStatus(A, True, False), B: PeerStatus(B, False, False)}),
     Action.WAIT, "run etcd"),
    ("this instance not InService: wait", obs(listing=listing("Pending", "InService", "InService")),
     Action.WAIT, "not InService"),
    ("terminating peers do not block seeding", obs(listing=listing("InService", "Terminating", "InService"),
                                                   peers={B: PeerStatus(B, False, False)}, seed_announced=True),
     Action.SEED, "2 InService"),
    ("healthy cluster, not a member: join", obs(cluster=CLUSTER), Action.JOIN, "joining as a learner"),
    ("a member's agent leaves this region out of ACTIVE_REGIONS: no join",
     obs(cluster=CLUSTER, unaware_members=(A,)), Action.WAIT,
     "the agents of i-0b do not count this instance's region"),
    ("join even on a partial listing", obs(cluster=CLUSTER, listing=listing("InService", "InService",
                                                                             "InService", complete=False)),
     Action.JOIN, "learner"),
    ("cluster without leader: wait", obs(cluster=dataclasses.replace(CLUSTER, leader_id=None)),
     Action.WAIT, "no leader"),
    ("another learner: one joiner at a time",
     obs(cluster=ClusterView(0xC1, CLUSTER.members + (member(3, "", "127.0.1.9", learner=True),), 1)),
     Action.WAIT, "one joiner at a time"),
    ("stale entry by name, no data: remove it",
     obs(cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1)),
     Action.REMOVE_STALE, "claims this instance"),
    ("stale never-started learner with our peer URL: remove it",
     obs(cluster=ClusterView(0xC1, CLUSTER.members + (member(3, "", "127.0.1.4", learner=True),), 1)),
     Action.REMOVE_STALE, "no usable local data"),
    ("own data, member listed: rejoin",
     obs(local=LocalData(True, 3), cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1)),
     Action.REJOIN, "restarting with it"),
    ("own data, no member answers: rejoin", obs(local=LocalData(True, 3)), Action.REJOIN, "no member answers"),
    ("own data, member removed since: set aside", obs(local=LocalData(True, 3), cluster=CLUSTER),
     Action.SET_ASIDE, "no longer lists"),
    ("unmarked data, member named like us: rejoin",
     obs(local=LocalData(True, None), cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1)),
     Action.REJOIN, "unmarked"),
    ("unmarked data, no such member: set aside", obs(local=LocalData(True, None), cluster=CLUSTER),
     Action.SET_ASIDE, "unknown member"),
    ("cluster version not decided yet: wait", obs(cluster=dataclasses.replace(CLUSTER, version=None)),
     Action.WAIT, "cluster version not known"),
    ("binary older than the cluster version: refuse", obs(cluster=CLUSTER, binary_version=(3, 4, 23)),
     Action.WAIT, "refusing to join: this instance's etcd 3.4 is older than the cluster version 3.5"),
    ("binary two minors newer: refuse", obs(cluster=CLUSTER_34, binary_version=(3, 6, 0)),
     Action.WAIT, "more than one minor version newer"),
    ("binary one minor newer, lock free: take it", obs(cluster=CLUSTER_34),
     Action.TAKE_UPGRADE_LOCK, "taking the upgrade lock before joining"),
    ("binary one minor newer, lock ours: join", obs(cluster=CLUSTER_34, upgrade_lock_holder=ME),
     Action.JOIN, "holds the upgrade lock"),
    ("binary one minor newer, lock another's: wait", obs(cluster=CLUSTER_34, upgrade_lock_holder=A),
     Action.WAIT, "upgrade lock is held by i-0b"),
    ("lock unreadable: wait", obs(cluster=CLUSTER_34, upgrade_lock_holder="unknown (timeout)"),
     Action.WAIT, "held by unknown"),
    ("same version ignores the lock", obs(cluster=CLUSTER, upgrade_lock_holder=A), Action.JOIN, "learner"),
    ("a mixed 3.4 cluster takes a 3.4 member", obs(cluster=CLUSTER_34, binary_version=(3, 4, 23)),
     Action.JOIN, "learner"),
    # The durable marker (snapshots on): never an empty cluster where one existed.
    ("marker absent, announced: seed empty", obs(seed_announced=True, marker=Marker.ABSENT), Action.SEED,
     "seeding a one-member cluster"),
    ("marker present, announced: restore the newest snapshot",
     obs(seed_announced=True, marker=Marker.PRESENT), Action.RESTORE_SNAPSHOT, "never an empty one"),
    ("marker present, not announced yet: announce first", obs(marker=Marker.PRESENT), Action.ANNOUNCE_SEED,
     "announcing"),
    ("marker unknown (S3 down): neither seed nor restore",
     obs(seed_announced=True, marker=Marker.UNKNOWN, marker_problem="S3 GetObject unreachable"),
     Action.WAIT, "S3 GetObject unreachable"),
    ("marker present but a peer holds data: wait for it (its data beats any snapshot)",
     obs(seed_announced=True, marker=Marker.PRESENT,
          peers={A: PeerStatus(A, True, True), B: PeerStatus(B, False, False)}), Action.WAIT, "hold a member's data"),
    # After a recovery elsewhere: this member's data can never rejoin.
]


@pytest.mark.parametrize("name,observation,action,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, observation, action, words):
    assert_decides(observation, action, words)


def test_remove_stale_names_the_member():
    stale = member(7, ME, "127.0.1.4")
    decision = decide(obs(cluster=ClusterView(0xC1, CLUSTER.members + (stale,), 1)))
    assert decision.member_id == 7


def _round(ids, announced, listing_ids=None):
    """One cycle of every agent, each seeing the others' announcements of the previous round."""
    listed = listing_ids or ids
    full = Listing(True, tuple(Instance(i, f"127.0.1.{n + 4}", "InService") for n, i in enumerate(listed)))
    decisions = {}
    for n, me in enumerate(ids):
        peers = {i: PeerStatus(i, False, False, seeding=i in announced) for i in listed if i != me}
        decisions[me] = decide(Observation(me, f"http://127.0.1.{n + 4}:2380", NO_DATA, False, listing=full,
                                           peers=peers, seed_announced=me in announced)).action
    return decisions


def test_exactly_one_seeder_among_fresh_instances():
    """Every instance of a fresh group decides from the same facts: one announces, then that one seeds."""
    ids = [f"i-0{c}" for c in "53174"]
    first = _round(ids, announced=set())
    assert [i for i, a in first.items() if a is Action.ANNOUNCE_SEED] == ["i-01"]
    second = _round(ids, announced={"i-01"})
    assert [i for i, a in second.items() if a is Action.SEED] == ["i-01"]
    assert all(a is Action.WAIT for i, a in second.items() if i != "i-01")


def test_a_lower_latecomer_defers_to_an_announced_seeder():
    """i-05 announced before i-00 existed; i-00 (lower) sees the intent and waits, so one seeds."""
    late = _round(["i-00"], announced={"i-05"}, listing_ids=["i-00", "i-05", "i-07"])
    assert late["i-00"] is Action.WAIT
