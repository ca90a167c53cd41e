"""The agent's observer on fake adapters: it only reads, and it reads only what the cycle's decision needs.

Covers what an observation holds for a seeder, a joiner, a rejoiner, a follower, the serving leader and a
member without quorum; that none of them changes etcd, S3, the security groups, the etcd process or the data
directory; where the upgrade lock, the members' health, the mode, the S3 marker and this instance's peer
access are read; the quorum-loss timer; and that a metadata hiccup does not count as termination.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import types
from urllib.parse import urlparse

import pytest
import requests

from appliance.adapters.aws.metadata import Identity
from appliance.adapters.aws.s3 import StoreError
from appliance.adapters.aws.security_groups import GroupsUnknown
from appliance.adapters.etcd.data_dir import write_marker
from appliance.adapters.etcd.process import EtcdUrls
from appliance.agent.components.listing import ListingCadence
from appliance.agent.components.quorum import QuorumTimer
from appliance.agent.components.upgrade_lock import UpgradeLockWatch
from appliance.agent.observer import Observer
from appliance.model.decisions import Action
from appliance.model.instances import Instance, Listing
from appliance.model.keys import MODE_KEY, UPGRADE_KEY
from appliance.model.members import MemberHealth
from appliance.model.modes import Mode
from appliance.model.observation import Marker, PeerStatus
from appliance.model.security_groups import GroupRules
from appliance.rules.recovery import decide_quorum_loss
from tests.unit.agent.fakes import READS, Clock, FakeCluster, FakeGroups, FakeProcess, FakeStore, member, settings

ME, REGION, OTHER_REGION = "i-1", "eu-central-1", "eu-west-1"
URLS = EtcdUrls.for_ip("127.0.1.4")
M1, M2, M3 = member(1, ME, "127.0.1.4"), member(2, "i-2", "127.0.1.5"), member(3, "i-3", "127.0.1.6")
LISTING = Listing(True, (Instance(ME, "127.0.1.4", "InService", region=REGION),
                         Instance("i-2", "127.0.1.5", "InService", region=REGION),
                         Instance("i-3", "127.0.1.6", "InService", region=REGION)), desired_capacity=3)
EVERY_CLIENT_URL = {f"http://127.0.1.{n}:2379" for n in (4, 5, 6, 7)}
FRESH = {"running": False, "has_data": False, "seeding": False, "region": REGION, "active_regions": [REGION]}
NO_RULES = {REGION: GroupRules(REGION, "sg-1"), OTHER_REGION: GroupRules(OTHER_REGION, "sg-2")}
MY_RULES = {**NO_RULES, OTHER_REGION: GroupRules(OTHER_REGION, "sg-2", frozenset({"127.0.1.4/32"}),
                                                 frozenset({"127.0.1.4/32"}))}


class Metadata:
    """The instance metadata's target lifecycle state: a value, or an exception it raises."""

    def __init__(self, answer):
        self.answer = answer

    def target_lifecycle_state(self):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Discovery:
    def __init__(self, listing: Listing = LISTING):
        self.listing, self.calls = listing, []

    def list(self, confirm=()):
        self.calls.append("list")
        return self.listing

    def own_lifecycle_state(self):
        self.calls.append("own_lifecycle_state")
        return "InService"


class Http:
    """Other agents' status endpoints: host -> the JSON body it answers (bytes: those bytes); other hosts do
    not answer. Only GET exists here: anything else the observer tried would fail the test."""

    def __init__(self, bodies: dict[str, dict | bytes]):
        self.bodies, self.urls = bodies, []

    def get(self, url, timeout, verify=True, stream=False):
        self.urls.append(url)
        host = urlparse(url).hostname
        if host not in self.bodies:
            raise requests.ConnectionError(url)
        body = self.bodies[host]
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        stream = io.BytesIO(data)
        raw = types.SimpleNamespace(read1=lambda size, decode_content=True: stream.read(size))
        return types.SimpleNamespace(status_code=200, headers={}, raw=raw, close=lambda: None)


@dataclasses.dataclass
class World:
    observer: Observer
    etcd: FakeProcess
    cluster: FakeCluster
    voting_asked: list
    http: Http
    clock: Clock
    data_dir: pathlib.Path


def nobody() -> FakeCluster:
    """No member answers anywhere: there is no cluster yet."""
    cluster = FakeCluster()
    cluster.down = set(EVERY_CLIENT_URL)
    return cluster


def world(tmp_path: pathlib.Path, cluster: FakeCluster, running: bool = False, has_data: bool = False,
          store: FakeStore | None = None, groups: FakeGroups | None = None, peers: dict | None = None,
          watching: bool = True, metadata="InService", listing: Listing = LISTING, **values) -> World:
    data_dir = tmp_path / "etcd"
    if has_data:
        (data_dir / "member" / "wal").mkdir(parents=True)
        (data_dir / "member" / "wal" / "0000000000000000-0000000000000000.wal").write_bytes(b"wal")
        write_marker(str(data_dir), 1, 0xC1)
    clock = Clock()
    cadence = ListingCadence(Discovery(listing), 30.0, clock)
    cadence.start_with(listing)
    lock = UpgradeLockWatch()
    if not watching:
        lock.released()
    voting_asked: list = []

    def voting_client(view):
        voting_asked.append(view)
        return cluster

    http = Http({"127.0.1.5": FRESH, "127.0.1.6": FRESH} if peers is None else peers)
    etcd = FakeProcess(running=running)
    observer = Observer(settings(data_dir=str(data_dir), **values),
                        Identity(ME, REGION, f"{REGION}a", "127.0.1.4"), "127.0.1.4", URLS, (3, 5, 1), etcd,
                        Metadata(metadata), cadence, QuorumTimer(clock), lock, lambda kind: cluster, voting_client,
                        store=store, security_groups=groups, seed_announced=lambda: True, http=http)
    return World(observer, etcd, cluster, voting_asked, http, clock, data_dir)


def tree(root: pathlib.Path) -> dict:
    """Every file and directory under ``root`` with its content and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, os.stat(p).st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def leading_cluster() -> FakeCluster:
    return FakeCluster(M1, M2, M3, leader_id=1)


def following_cluster() -> FakeCluster:
    return FakeCluster(M1, M2, M3, leader_id=2)


def leaderless_cluster() -> FakeCluster:
    return FakeCluster(M1, M2, M3, leader_id=None)


def joinable_cluster() -> FakeCluster:
    return FakeCluster(M2, M3, leader_id=2)


# Each case: a kind of instance, and what its observation says (so that the case observes what it claims to).
SITUATIONS = [
    pytest.param(dict(cluster=nobody, store=FakeStore(), groups=FakeGroups(NO_RULES)),
                 lambda s: s.cluster is None and s.marker is Marker.ABSENT and len(s.missing_access) == 2,
                 id="a seeder: peers, S3 marker and the other regions' groups read"),
    pytest.param(dict(cluster=joinable_cluster, store=FakeStore(), groups=FakeGroups(MY_RULES),
                      active_regions=(REGION, OTHER_REGION),
                      peers={"127.0.1.5": {**FRESH, "active_regions": [OTHER_REGION]}, "127.0.1.6": FRESH}),
                 lambda s: s.cluster.version == (3, 5, 0) and s.unaware_members == ("i-2",),
                 id="a joiner: cluster version, upgrade lock and the members' agents read"),
    pytest.param(dict(cluster=following_cluster, has_data=True, store=FakeStore()),
                 lambda s: s.local.has_data and not s.etcd_running, id="a rejoiner with data"),
    pytest.param(dict(cluster=leading_cluster, running=True, has_data=True, store=FakeStore(), mirror_prefix="/x/"),
                 lambda s: s.is_leader and len(s.member_health) == 3 and s.mode == (Mode.ACTIVE, 0),
                 id="the serving leader: members' health, mode and lock read"),
    pytest.param(dict(cluster=leaderless_cluster, running=True, has_data=True, store=FakeStore()),
                 lambda s: s.quorum_lost_for == 1.0 and s.revision == 42 and len(s.peers) == 2,
                 id="a member without quorum: revision and peers read"),
]


@pytest.mark.parametrize("situation, observed", SITUATIONS)
def test_observing_only_reads(tmp_path, situation, observed):
    situation = dict(situation)
    w = world(tmp_path, situation.pop("cluster")(), **situation)
    store, groups = w.observer.store, w.observer.security_groups
    keys, before = dict(w.cluster.keys), tree(tmp_path)
    for _ in range(2):  # a second cycle too: what the observer remembers must not lead it to write
        s = w.observer.observe()
        w.clock.advance(1.0)
    assert observed(s)
    assert set(w.cluster.calls) <= READS, f"the observer changed etcd: {w.cluster.calls}"
    assert w.cluster.keys == keys and w.cluster.leases == {} and w.cluster.removed == w.cluster.promoted == []
    assert set(w.etcd.calls) <= {"reap", "may_start"} and w.etcd.commands == [] and w.etcd.stopped == 0
    assert set(store.calls) <= {"read_marker"}
    assert groups is None or groups.applied == []
    assert tree(tmp_path) == before, "the observer changed the data directory"


def test_a_follower_gets_no_member_health_nor_mode(tmp_path):
    w = world(tmp_path, following_cluster(), running=True, has_data=True, watching=False, mirror_prefix="/x/")
    w.cluster.mode = ("passive", 9)
    s = w.observer.observe()
    assert (s.is_leader, s.member_health, s.mode) == (False, (), None)
    assert "healthy" not in w.cluster.calls and ("range", MODE_KEY) not in w.cluster.asked


@pytest.mark.parametrize("mirror_prefix, mode_key, mode", [
    ("/x/", ("passive", 9), (Mode.PASSIVE, 9)),
    ("/x/", None, (Mode.ACTIVE, 0)),  # a cluster without a mode record is active
    (None, ("passive", 9), None),     # not linked by the mirror: the mode is not read
], ids=["passive record", "no record", "no MIRROR_PREFIX"])
def test_the_serving_leader_gets_every_members_health_and_its_mode(tmp_path, mirror_prefix, mode_key, mode):
    w = world(tmp_path, leading_cluster(), running=True, has_data=True, mirror_prefix=mirror_prefix)
    w.cluster.mode = mode_key
    w.cluster.unhealthy = {M3.client_urls[0]}
    s = w.observer.observe()
    assert s.is_leader
    assert s.member_health == (MemberHealth(M1, True), MemberHealth(M2, True), MemberHealth(M3, False))
    assert s.mode == mode
    assert (("range", MODE_KEY) in w.cluster.asked) is (mirror_prefix is not None)


@pytest.mark.parametrize("cluster, running, has_data, watching, read, through_voting", [
    (joinable_cluster, False, False, False, True, True),
    (leading_cluster, True, True, False, True, False),
    (following_cluster, True, True, True, True, False),
    (following_cluster, True, True, False, False, False),
    (nobody, False, False, True, False, False),
    (following_cluster, False, True, True, False, False),
], ids=["a joiner, through the voting members", "the leader", "a member that may hold it",
        "a follower that does not hold it", "a seeder", "a rejoiner with data"])
def test_who_reads_the_upgrade_lock(tmp_path, cluster, running, has_data, watching, read, through_voting):
    w = world(tmp_path, cluster(), running=running, has_data=has_data, watching=watching)
    w.cluster.keys[UPGRADE_KEY] = (b"i-9", 5)
    s = w.observer.observe()
    assert ("get" in w.cluster.calls) is read
    assert s.upgrade_lock_holder == ("i-9" if read else None)
    assert bool(w.voting_asked) is through_voting


@pytest.mark.parametrize("holder, still_watching, local_healthy", [
    (b"i-9", False, False), (None, False, False), (ME.encode(), True, True),
], ids=["someone else holds it", "nobody holds it", "this instance holds it"])
def test_a_member_stops_reading_the_lock_once_it_cannot_hold_it(tmp_path, holder, still_watching, local_healthy):
    w = world(tmp_path, following_cluster(), running=True, has_data=True, watching=True)
    if holder is not None:
        w.cluster.keys[UPGRADE_KEY] = (holder, 5)
    s = w.observer.observe()
    assert (w.observer.upgrade_lock.watching, s.local_healthy) == (still_watching, local_healthy)
    reads = w.cluster.calls.count("get")
    w.observer.observe()
    assert w.cluster.calls.count("get") == reads + (1 if still_watching else 0)


def test_an_unreadable_upgrade_lock_counts_as_held(tmp_path):
    w = world(tmp_path, leading_cluster(), running=True, has_data=True)
    w.cluster.refuse["get"] = "etcdserver: request timed out"
    s = w.observer.observe()
    assert s.upgrade_lock_holder.startswith("unknown (") and not s.local_healthy


def test_missing_peer_rules_become_missing_access_and_are_read_until_none_is_missing(tmp_path):
    groups = FakeGroups(NO_RULES)
    w = world(tmp_path, nobody(), groups=groups)
    s = w.observer.observe()
    assert [str(c) for c in s.missing_access] == ["open eu-west-1 ingress from 127.0.1.4/32",
                                                  "open eu-west-1 egress to 127.0.1.4/32"]
    assert s.peer_access_problem == ""
    for change in s.missing_access:  # what the actuator's OPEN_PEER_ACCESS does between the cycles
        groups.apply(change)
    groups.applied.clear()
    assert w.observer.observe().missing_access == ()
    reads = groups.reads
    for _ in range(3):
        s = w.observer.observe()
    assert (groups.reads, s.missing_access, s.peer_access_problem) == (reads, (), "")


def test_groups_that_cannot_be_read_are_a_peer_access_problem_and_read_again(tmp_path):
    groups = FakeGroups(NO_RULES)
    groups.fail = GroupsUnknown("eu-west-1 has 2 security groups tagged etcd-appliance:cluster=etcd")
    w = world(tmp_path, nobody(), groups=groups)
    s = w.observer.observe()
    assert (s.peer_access_problem, s.missing_access) == (str(groups.fail), ())
    w.observer.observe()
    assert groups.reads == 2


@pytest.mark.parametrize("running, has_data", [(True, True), (False, True)], ids=["running", "with data"])
def test_a_member_with_data_does_not_read_the_groups(tmp_path, running, has_data):
    groups = FakeGroups(NO_RULES)
    w = world(tmp_path, following_cluster(), running=running, has_data=has_data, groups=groups)
    assert w.observer.observe().missing_access == () and groups.reads == 0


def test_the_quorum_timer_counts_while_no_member_sees_a_leader(tmp_path):
    w = world(tmp_path, leaderless_cluster(), running=True, has_data=True)
    lost = []
    for _ in range(3):
        s = w.observer.observe()
        lost.append(s.quorum_lost_for)
        w.clock.advance(5.0)
    assert lost == [0.0, 5.0, 10.0]
    assert s.cluster is not None and s.cluster.leader_id is None and not s.is_leader
    assert s.revision == 42 and s.member_health == ()  # no serving leader: nothing of the leader's is read
    w.cluster.leader_id = 1  # a member sees a leader again
    s = w.observer.observe()
    assert (s.quorum_lost_for, s.revision, s.is_leader) == (None, None, True)


def test_one_member_seeing_a_leader_is_enough(tmp_path):
    cluster = leaderless_cluster()
    cluster.leader_id = 2
    cluster.leaderless = {"http://127.0.1.4:2379"}  # this member is cut off, the others are not
    w = world(tmp_path, cluster, running=True, has_data=True)
    s = w.observer.observe()
    assert (s.quorum_lost_for, s.cluster.leader_id) == (None, 2)


@pytest.mark.parametrize("answer, own_state, terminating", [
    ("Terminated", "InService", True),
    ("InService", "InService", False),
    (None, "InService", False),
    (requests.ConnectionError("metadata did not answer"), "InService", False),
    (requests.Timeout("metadata too slow"), "InService", False),
    (requests.Timeout("metadata too slow"), "Terminating", True),
], ids=["metadata says Terminated", "metadata says InService", "no such metadata path", "a metadata hiccup",
        "a metadata timeout", "the listing says Terminating"])
def test_terminating(tmp_path, answer, own_state, terminating):
    listing = dataclasses.replace(LISTING, instances=(Instance(ME, "127.0.1.4", own_state, region=REGION),)
                                  + LISTING.instances[1:])
    w = world(tmp_path, following_cluster(), running=True, has_data=True, metadata=answer, listing=listing)
    assert w.observer.observe().terminating is terminating
    assert w.observer.terminated_by_metadata() is (answer == "Terminated")


@pytest.mark.parametrize("peers, fail, marker, read", [
    ({"127.0.1.5": FRESH, "127.0.1.6": FRESH}, None, Marker.ABSENT, True),
    ({"127.0.1.5": FRESH, "127.0.1.6": {**FRESH, "has_data": True}}, None, Marker.UNKNOWN, False),
    ({"127.0.1.5": FRESH}, None, Marker.UNKNOWN, False),
    ({"127.0.1.5": FRESH, "127.0.1.6": FRESH}, StoreError("AccessDenied"), Marker.UNKNOWN, True),
], ids=["every other agent fresh: read", "a peer has data: not read", "a peer does not answer: not read",
        "S3 fails: unknown"])
def test_the_marker_is_read_only_by_the_instance_that_may_seed(tmp_path, peers, fail, marker, read):
    store = FakeStore()
    store.fail = fail
    w = world(tmp_path, nobody(), store=store, peers=peers)
    s = w.observer.observe()
    assert s.marker is marker and (store.calls == ["read_marker"]) is read
    assert s.seed_announced  # as the status document said before this cycle asked its peers
    assert (s.marker_problem == "AccessDenied") is (fail is not None)


def test_an_instance_that_is_not_the_lowest_does_not_read_the_marker(tmp_path):
    listing = dataclasses.replace(LISTING, instances=LISTING.instances + (Instance("i-0", "127.0.1.7", "InService",
                                                                                   region=REGION),))
    store = FakeStore()
    w = world(tmp_path, nobody(), store=store, listing=listing, peers={h: FRESH for h in ("127.0.1.5", "127.0.1.6",
                                                                                          "127.0.1.7")})
    s = w.observer.observe()
    assert s.marker is Marker.UNKNOWN and store.calls == []


SERVING_PEER = {"running": True, "has_data": True, "seeding": False, "quorum": False, "revision": 10,
                "region": REGION, "active_regions": [REGION]}


@pytest.mark.parametrize("garbage", [
    {**SERVING_PEER, "revision": 10 ** 30},
    {**SERVING_PEER, "revision": True},
    {**SERVING_PEER, "quorum": "false"},
    {**SERVING_PEER, "running": "false", "has_data": "false"},
    b"<html>a proxy's error page</html>",
    b"[]",
], ids=["revision too large", "revision true", "quorum a string", "booleans as strings", "HTML", "a JSON list"])
def test_a_peer_answering_garbage_is_unknown_and_no_survivor_is_picked(tmp_path, garbage):
    w = world(tmp_path, leaderless_cluster(), running=True, has_data=True, quorum_loss_wait=0.0,
              peers={"127.0.1.5": SERVING_PEER, "127.0.1.6": garbage})
    s = w.observer.observe()
    assert s.peers["i-2"] is not None and s.peers["i-3"] is None
    decision = decide_quorum_loss(s)
    assert decision.action is Action.WAIT and "no answer from the agents of i-3" in decision.reason
    w.http.bodies["127.0.1.6"] = {**SERVING_PEER, "revision": 100}  # understood: the survivor is picked by revision
    s = w.observer.observe()
    assert s.peers["i-3"] == PeerStatus("i-3", True, True, False, False, 100, (REGION,))
    assert decide_quorum_loss(s).reason.endswith("i-3 has the highest revision and recovers")


def test_a_malformed_status_is_warned_of_once_per_peer_and_problem(tmp_path, caplog):
    w = world(tmp_path, leaderless_cluster(), running=True, has_data=True,
              peers={"127.0.1.5": {**SERVING_PEER, "running": "false"}, "127.0.1.6": b"[]"})
    for _ in range(3):
        w.observer.observe()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2 and all("\n" not in line for line in warned)
    assert "i-2 at 127.0.1.5" in warned[0] and "running is 'false', not a JSON boolean" in warned[0]
    assert "i-3 at 127.0.1.6" in warned[1] and "JSON list" in warned[1]
    caplog.clear()
    w.http.bodies["127.0.1.5"] = {**SERVING_PEER, "revision": -1}  # another problem: said once more
    w.observer.observe()
    w.observer.observe()
    w.http.bodies["127.0.1.6"] = SERVING_PEER  # understood, then the same problem again: said again
    w.observer.observe()
    w.http.bodies["127.0.1.6"] = b"[]"
    w.observer.observe()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2 and "revision is -1" in warned[0] and "JSON list" in warned[1]


def test_a_member_whose_agent_answers_garbage_regions_is_not_counted_as_unaware(tmp_path):
    w = world(tmp_path, joinable_cluster(), store=FakeStore(), groups=FakeGroups(MY_RULES),
              active_regions=(REGION, OTHER_REGION),
              peers={"127.0.1.5": {**FRESH, "active_regions": OTHER_REGION},  # a string, not a list
                     "127.0.1.6": {**FRESH, "active_regions": [OTHER_REGION]}})
    assert w.observer.observe().unaware_members == ("i-3",)
