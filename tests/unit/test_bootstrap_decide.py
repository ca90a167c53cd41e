"""The agent's decision as a table of snapshots: no AWS, no etcd."""

import dataclasses

import pytest

from appliance.aws.discovery import Instance, Listing
from appliance.cluster.bootstrap import decide
from appliance.cluster.model import Action, AgentSnapshot, ClusterView, Marker, PeerStatus, RestoreRequest
from appliance.etcd.client import Member
from appliance.etcd.process import LocalData

ME, A, B = "i-0a", "i-0b", "i-0c"
MY_PEER = "http://127.0.1.4:2380"
NO_DATA = LocalData(has_data=False, member_id=None)


def member(mid, name, ip, learner=False):
    return Member(mid, name, (f"http://{ip}:2380",), (f"http://{ip}:2379",) if name else (), learner)


def listing(*states, complete=True, problem=""):
    ids = (ME, A, B)
    return Listing(complete=complete, problem=problem, instances=tuple(
        Instance(i, f"127.0.1.{4 + n}", s) for n, (i, s) in enumerate(zip(ids, states, strict=False))))


FULL = listing("InService", "InService", "InService")
FRESH_PEERS = {A: PeerStatus(A, False, False), B: PeerStatus(B, False, False)}
CLUSTER = ClusterView(0xC1, (member(1, A, "127.0.1.5"), member(2, B, "127.0.1.6")), leader_id=1,
                      version=(3, 5, 0))
CLUSTER_34 = dataclasses.replace(CLUSTER, version=(3, 4, 0))
MINE = ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1, (3, 4, 0))


def snap(**kw):
    base = dict(instance_id=ME, peer_url=MY_PEER, local=NO_DATA, etcd_running=False, listing=FULL,
                cluster=None, peers=FRESH_PEERS, binary_version=(3, 5, 1))
    base.update(kw)
    return AgentSnapshot(**base)


CASES = [
    # (name, snapshot, expected action, words the reason must contain)
    ("lowest of a fresh group: announce first", snap(), Action.ANNOUNCE_SEED, "announcing the intent"),
    ("announced and still clear: seed", snap(seed_announced=True), Action.SEED, "checked after announcing"),
    ("a peer announced it seeds: wait, even if lower",
     snap(peers={A: PeerStatus(A, False, False, seeding=True), B: PeerStatus(B, False, False)}),
     Action.WAIT, "i-0b announced it seeds"),
    ("announced, but a lower instance appeared since: wait",
     snap(seed_announced=True, listing=Listing(True, FULL.instances + (Instance("i-00", "127.0.1.9", "InService"),)),
          peers={**FRESH_PEERS, "i-00": PeerStatus("i-00", False, False)}),
     Action.WAIT, "waiting for i-00"),
    ("not lowest: wait for the lowest",
     snap(instance_id="i-0z", peer_url="http://127.0.1.9:2380",
          listing=Listing(True, FULL.instances + (Instance("i-0z", "127.0.1.9", "InService"),)),
          peers={**FRESH_PEERS, ME: PeerStatus(ME, False, False)}),
     Action.WAIT, "waiting for i-0a"),
    ("partial listing never seeds", snap(listing=listing("InService", "InService", "InService", complete=False,
                                                         problem="EC2 does not describe i-0c")),
     Action.WAIT, "incomplete"),
    ("no listing never seeds", snap(listing=None), Action.WAIT, "incomplete"),
    ("a silent peer may hold a cluster: wait", snap(peers={A: PeerStatus(A, False, False), B: None}),
     Action.WAIT, "no answer from the agents of i-0c"),
    ("a peer with data: wait for it", snap(peers={A: PeerStatus(A, False, True), B: PeerStatus(B, False, False)}),
     Action.WAIT, "hold a member's data"),
    ("a peer running etcd: wait", snap(peers={A: PeerStatus(A, True, False), B: PeerStatus(B, False, False)}),
     Action.WAIT, "run etcd"),
    ("this instance not InService: wait", snap(listing=listing("Pending", "InService", "InService")),
     Action.WAIT, "not InService"),
    ("terminating peers do not block seeding", snap(listing=listing("InService", "Terminating", "InService"),
                                                   peers={B: PeerStatus(B, False, False)}, seed_announced=True),
     Action.SEED, "2 InService"),
    ("healthy cluster, not a member: join", snap(cluster=CLUSTER), Action.JOIN, "joining as a learner"),
    ("other regions cannot reach this instance yet: no join",
     snap(cluster=CLUSTER, peer_access_problem="DescribeSecurityGroups in eu-west-1 failed"),
     Action.WAIT, "cannot reach this instance yet: DescribeSecurityGroups in eu-west-1"),
    ("other regions cannot reach this instance yet: no seeding", snap(peer_access_problem="AccessDenied"),
     Action.WAIT, "other regions cannot reach"),
    ("a member's agent leaves this region out of ACTIVE_REGIONS: no join",
     snap(cluster=CLUSTER, unaware_members=(A,)), Action.WAIT,
     "the agents of i-0b do not count this instance's region"),
    ("own data and no peer access: restart anyway (its rules outlive a restart)",
     snap(local=LocalData(True, 3), peer_access_problem="AccessDenied"), Action.REJOIN, "restarting with it"),
    ("join even on a partial listing", snap(cluster=CLUSTER, listing=listing("InService", "InService",
                                                                             "InService", complete=False)),
     Action.JOIN, "learner"),
    ("cluster without leader: wait", snap(cluster=dataclasses.replace(CLUSTER, leader_id=None)),
     Action.WAIT, "no leader"),
    ("another learner: one joiner at a time",
     snap(cluster=ClusterView(0xC1, CLUSTER.members + (member(3, "", "127.0.1.9", learner=True),), 1)),
     Action.WAIT, "one joiner at a time"),
    ("stale entry by name, no data: remove it",
     snap(cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1)),
     Action.REMOVE_STALE, "claims this instance"),
    ("stale never-started learner with our peer URL: remove it",
     snap(cluster=ClusterView(0xC1, CLUSTER.members + (member(3, "", "127.0.1.4", learner=True),), 1)),
     Action.REMOVE_STALE, "no usable local data"),
    ("own data, member listed: rejoin",
     snap(local=LocalData(True, 3), cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1)),
     Action.REJOIN, "restarting with it"),
    ("own data, no member answers: rejoin", snap(local=LocalData(True, 3)), Action.REJOIN, "no member answers"),
    ("own data, member removed since: set aside", snap(local=LocalData(True, 3), cluster=CLUSTER),
     Action.SET_ASIDE, "no longer lists"),
    ("unmarked data, member named like us: rejoin",
     snap(local=LocalData(True, None), cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1)),
     Action.REJOIN, "unmarked"),
    ("unmarked data, no such member: set aside", snap(local=LocalData(True, None), cluster=CLUSTER),
     Action.SET_ASIDE, "unknown member"),
    ("crash backoff: wait", snap(local=LocalData(True, 3), may_start=False), Action.WAIT, "backoff"),
    ("running learner: promote",
     snap(etcd_running=True, local=LocalData(True, 3),
          cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4", learner=True),), 1)),
     Action.PROMOTE, "learner"),
    ("running voter: serve",
     snap(etcd_running=True, local=LocalData(True, 3),
          cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1)),
     Action.SERVE, "voting member"),
    ("running, nobody answers: serve on", snap(etcd_running=True, local=LocalData(True, 3)), Action.SERVE,
     "no member answered"),
    ("cluster version not decided yet: wait", snap(cluster=dataclasses.replace(CLUSTER, version=None)),
     Action.WAIT, "cluster version not known"),
    ("binary older than the cluster version: refuse", snap(cluster=CLUSTER, binary_version=(3, 4, 23)),
     Action.WAIT, "refusing to join: this instance's etcd 3.4 is older than the cluster version 3.5"),
    ("binary two minors newer: refuse", snap(cluster=CLUSTER_34, binary_version=(3, 6, 0)),
     Action.WAIT, "more than one minor version newer"),
    ("binary one minor newer, lock free: take it", snap(cluster=CLUSTER_34),
     Action.TAKE_UPGRADE_LOCK, "taking the upgrade lock before joining"),
    ("binary one minor newer, lock ours: join", snap(cluster=CLUSTER_34, upgrade_lock_holder=ME),
     Action.JOIN, "holds the upgrade lock"),
    ("binary one minor newer, lock another's: wait", snap(cluster=CLUSTER_34, upgrade_lock_holder=A),
     Action.WAIT, "upgrade lock is held by i-0b"),
    ("lock unreadable: wait", snap(cluster=CLUSTER_34, upgrade_lock_holder="unknown (timeout)"),
     Action.WAIT, "held by unknown"),
    ("same version ignores the lock", snap(cluster=CLUSTER, upgrade_lock_holder=A), Action.JOIN, "learner"),
    ("a mixed 3.4 cluster takes a 3.4 member", snap(cluster=CLUSTER_34, binary_version=(3, 4, 23)),
     Action.JOIN, "learner"),
    ("voter holding the lock, healthy: release",
     snap(etcd_running=True, local=LocalData(True, 3), cluster=MINE, upgrade_lock_holder=ME, local_healthy=True),
     Action.RELEASE_UPGRADE_LOCK, "releasing the upgrade lock"),
    ("voter holding the lock, not healthy yet: keep it",
     snap(etcd_running=True, local=LocalData(True, 3), cluster=MINE, upgrade_lock_holder=ME),
     Action.SERVE, "keeping the upgrade lock"),
    ("learner holding the lock: promote first",
     snap(etcd_running=True, local=LocalData(True, 3), upgrade_lock_holder=ME, local_healthy=True,
          cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4", learner=True),), 1)),
     Action.PROMOTE, "learner"),
    ("terminating: leave", snap(etcd_running=True, terminating=True, cluster=CLUSTER), Action.LEAVE, "terminated"),
    ("terminating before joining: leave", snap(terminating=True), Action.LEAVE, "leaving"),
    # The durable marker (snapshots on): never an empty cluster where one existed.
    ("marker absent, announced: seed empty", snap(seed_announced=True, marker=Marker.ABSENT), Action.SEED,
     "seeding a one-member cluster"),
    ("marker present, announced: restore the newest snapshot",
     snap(seed_announced=True, marker=Marker.PRESENT), Action.RESTORE_SNAPSHOT, "never an empty one"),
    ("marker present, not announced yet: announce first", snap(marker=Marker.PRESENT), Action.ANNOUNCE_SEED,
     "announcing"),
    ("marker unknown (S3 down): neither seed nor restore",
     snap(seed_announced=True, marker=Marker.UNKNOWN, marker_problem="S3 GetObject unreachable"),
     Action.WAIT, "S3 GetObject unreachable"),
    ("marker present but a peer holds data: wait for it (its data beats any snapshot)",
     snap(seed_announced=True, marker=Marker.PRESENT,
          peers={A: PeerStatus(A, True, True), B: PeerStatus(B, False, False)}), Action.WAIT, "hold a member's data"),
    # After a recovery elsewhere: this member's data can never rejoin.
    ("etcd runs with data of a member the led cluster removed: set aside",
     snap(etcd_running=True, local=LocalData(True, 7), cluster=CLUSTER), Action.SET_ASIDE, "does not list"),
    ("etcd runs, unmarked data, cluster does not list it: serve (it may be joining)",
     snap(etcd_running=True, local=LocalData(True, None), cluster=CLUSTER), Action.SERVE, "does not list this member"),
    ("quorum lost: the recovery rules decide",
     snap(etcd_running=True, local=LocalData(True, 3), quorum_lost_for=1.0, revision=9), Action.WAIT,
     "quorum lost"),
    ("operator's restore request comes first, refused while a leader answers",
     snap(etcd_running=True, local=LocalData(True, 3), cluster=MINE, restore_request=RestoreRequest("own-data")),
     Action.REFUSE_RESTORE, "has a leader"),
]


@pytest.mark.parametrize("name,snapshot,action,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, snapshot, action, words):
    decision = decide(snapshot)
    assert decision.action is action, decision.reason
    assert words in decision.reason


def test_remove_stale_names_the_member():
    stale = member(7, ME, "127.0.1.4")
    decision = decide(snap(cluster=ClusterView(0xC1, CLUSTER.members + (stale,), 1)))
    assert decision.member_id == 7


def _round(ids, announced, listing_ids=None):
    """One cycle of every agent, each seeing the others' announcements of the previous round."""
    listed = listing_ids or ids
    full = Listing(True, tuple(Instance(i, f"127.0.1.{n + 4}", "InService") for n, i in enumerate(listed)))
    decisions = {}
    for n, me in enumerate(ids):
        peers = {i: PeerStatus(i, False, False, seeding=i in announced) for i in listed if i != me}
        decisions[me] = decide(AgentSnapshot(me, f"http://127.0.1.{n + 4}:2380", NO_DATA, False, listing=full,
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
