"""The actuator and the etcd starter on fake adapters: what each action of the lifecycle rule does.

Covers seeding (a token unique to the seeding), joining as a learner (marker before start), marking the data,
opening this instance's peer access, setting data aside, promoting, the upgrade lock, a forced new cluster,
refusing a restore, leaving, the seeding intent on the status document, and one log line per new refusal.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib

import pytest

from appliance.adapters.etcd import membership, restore_requests
from appliance.adapters.etcd.data_dir import MARKER
from appliance.adapters.etcd.process import EtcdUrls
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.actuator import Actuator, EtcdStarter
from appliance.agent.components.quorum import QuorumTimer
from appliance.agent.components.recovery import Recovery
from appliance.agent.components.tokens import TokenCheck
from appliance.agent.components.upgrade_lock import UpgradeLockWatch
from appliance.agent.status import StatusDocument
from appliance.model.decisions import Action, Decision
from appliance.model.keys import UPGRADE_KEY, Credentials
from appliance.model.members import LocalData
from appliance.model.observation import Observation
from appliance.model.security_groups import GroupRules, RuleChange
from tests.unit.agent.fakes import (
    Clock,
    FakeCluster,
    FakeEtcd,
    FakeGroups,
    FakeProcess,
    client_error,
    cluster,
    member,
    settings,
)

ME, REGION = "i-1", "eu-central-1"
URLS = EtcdUrls.for_ip("127.0.1.4")
M1, M2, M3 = member(1, ME, "127.0.1.4"), member(2, "i-2", "127.0.1.5"), member(3, "i-3", "127.0.1.6")
OTHERS = cluster(M2, M3, leader=2)


@dataclasses.dataclass
class Rig:
    actuator: Actuator
    etcd: FakeProcess
    cluster: FakeCluster
    status: StatusDocument
    voting_asked: list
    data_dir: pathlib.Path
    metrics: AgentMetrics


def rig(tmp_path: pathlib.Path, me: str = ME, running: bool = False, groups: FakeGroups | None = None,
        tokens: TokenCheck | None = None, start=None) -> Rig:
    s = settings(data_dir=str(tmp_path / "etcd"))
    etcd = FakeProcess(running=running)
    metrics = AgentMetrics()
    status = StatusDocument(me, REGION, (REGION,), False, "3.5.1", metrics)
    starter = EtcdStarter(s, me, URLS, etcd, status)
    fake = FakeCluster(M1, M2, M3, leader_id=2)
    voting_asked: list = []

    def voting_client(view):
        voting_asked.append(view)
        return fake

    clock = Clock()
    recovery = Recovery(etcd, starter, s.data_dir, me, URLS.peer, s.cluster_name, None, None, metrics, clock)
    actuator = Actuator(s, me, URLS, etcd, start or starter, voting_client, fake, recovery, QuorumTimer(clock),
                        UpgradeLockWatch(), tokens or TokenCheck(etcd, None), status, groups)
    return Rig(actuator, etcd, fake, status, voting_asked, tmp_path / "etcd", metrics)


def obs(**facts) -> Observation:
    base = dict(instance_id=ME, peer_url=URLS.peer, local=LocalData(False, None), etcd_running=False, cluster=OTHERS)
    base.update(facts)
    return Observation(**base)


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def marker(data_dir: pathlib.Path) -> dict:
    return json.loads((data_dir / MARKER).read_text())


def test_seed_starts_a_new_cluster_with_a_token_unique_to_this_seeding(tmp_path):
    r = rig(tmp_path)
    assert r.actuator.act(Decision(Action.SEED, "lowest instance, marker absent"), obs(cluster=None)) is False
    command = r.etcd.commands[0]
    assert (flag(command, "--initial-cluster-state"), flag(command, "--initial-cluster")) == \
        ("new", f"{ME}={URLS.peer}")
    assert flag(command, "--initial-cluster-token") == "etcd-i-1"
    # A later cluster of the same name, seeded by another instance, gets another token (and cluster id).
    other = rig(tmp_path / "other", me="i-7")
    other.actuator.act(Decision(Action.SEED, "lowest instance"), obs(instance_id="i-7", cluster=None))
    assert flag(other.etcd.commands[0], "--initial-cluster-token") == "etcd-i-7"
    assert r.status.snapshot()["running"] is True  # said before etcd starts: no peer may read "not running"


def test_join_adds_a_learner_through_the_voting_members_and_marks_the_data_before_starting(tmp_path):
    marked_at_start = []

    def start(*args, **kwargs):
        marked_at_start.append((r.data_dir / MARKER).exists())
        EtcdStarter(r.actuator.settings, ME, URLS, r.etcd, r.status)(*args, **kwargs)

    r = rig(tmp_path, start=start)
    r.cluster.members = (M2, M3)
    assert r.actuator.act(Decision(Action.JOIN, "cluster found"), obs()) is False
    new = r.cluster.members[-1]
    assert r.voting_asked == [OTHERS] and "member_add" in r.cluster.calls
    assert (new.is_learner, new.peer_urls) == (True, (URLS.peer,))
    assert marker(r.data_dir) == {"member_id": new.hex_id, "cluster_id": "c1"}
    assert marked_at_start == [True]
    command = r.etcd.commands[0]
    assert flag(command, "--initial-cluster-state") == "existing"
    assert flag(command, "--initial-cluster") == f"i-2={M2.peer_urls[0]},i-3={M3.peer_urls[0]},{ME}={URLS.peer}"


def test_a_refused_join_neither_marks_nor_starts(tmp_path):
    r = rig(tmp_path)
    r.cluster.refuse["member_add"] = "etcdserver: too many learner members in cluster"
    assert r.actuator.act(Decision(Action.JOIN, "cluster found"), obs()) is False
    assert r.etcd.commands == [] and not r.data_dir.exists()


def test_mark_data_writes_the_marker(tmp_path):
    r = rig(tmp_path, running=True)
    r.actuator.act(Decision(Action.MARK_DATA, "unmarked data", member_id=0x1A), obs(etcd_running=True))
    assert marker(r.data_dir) == {"member_id": "1a", "cluster_id": "c1"}


def test_open_peer_access_applies_exactly_the_missing_rules(tmp_path):
    groups = FakeGroups({REGION: GroupRules(REGION, "sg-1"), "eu-west-1": GroupRules("eu-west-1", "sg-2")})
    missing = (RuleChange("eu-west-1", "sg-2", "ingress", "127.0.1.4/32", True),
               RuleChange("eu-west-1", "sg-2", "egress", "127.0.1.4/32", True))
    r = rig(tmp_path, groups=groups)
    r.actuator.act(Decision(Action.OPEN_PEER_ACCESS, "missing rules"), obs(cluster=None, missing_access=missing))
    assert groups.applied == list(missing) and groups.reads == 0
    assert r.etcd.commands == []  # seeding or joining waits for the next cycle's look


class RefusingGroups(FakeGroups):
    """EC2 refuses every rule change (throttled, or the instance role lacks AuthorizeSecurityGroupIngress)."""

    def apply(self, change) -> None:
        self.applied.append(change)
        raise client_error("UnauthorizedOperation", "AuthorizeSecurityGroupIngress")


def test_an_ec2_failure_while_opening_peer_access_is_not_raised(tmp_path, caplog):
    """EC2 may throttle or refuse a rule change: said once, and the next cycle reads the groups again."""
    groups = RefusingGroups({REGION: GroupRules(REGION, "sg-1"), "eu-west-1": GroupRules("eu-west-1", "sg-2")})
    missing = (RuleChange("eu-west-1", "sg-2", "ingress", "127.0.1.4/32", True),)
    r = rig(tmp_path, groups=groups)
    with caplog.at_level(logging.INFO):
        assert r.actuator.act(Decision(Action.OPEN_PEER_ACCESS, "missing rules"),
                              obs(cluster=None, missing_access=missing)) is False
    assert groups.applied == list(missing)
    assert "open-peer-access not done yet" in caplog.text


@pytest.mark.parametrize("action, removed, stopped", [
    (Action.REMOVE_STALE, [0x2B], 0),
    (Action.SET_ASIDE, [], 1),
], ids=["remove-stale removes the member, then sets the data aside", "set-aside stops etcd first"])
def test_data_is_set_aside_into_previous(tmp_path, action, removed, stopped):
    r = rig(tmp_path)
    (r.data_dir / "member").mkdir(parents=True)
    (r.data_dir / "member" / "old").write_text("the removed member's")
    (tmp_path / "etcd.previous").mkdir()
    (tmp_path / "etcd.previous" / "older").write_text("an older copy")
    r.actuator.act(Decision(action, "data of a removed member", member_id=0x2B), obs())
    assert r.cluster.removed == removed and r.etcd.stopped == stopped
    assert not r.data_dir.exists()
    assert sorted(os.listdir(tmp_path / "etcd.previous")) == ["member"]  # one copy kept, the older one replaced
    assert (tmp_path / "etcd.previous" / "member" / "old").read_text() == "the removed member's"


def test_promote_promotes_and_checks_the_tokens_at_once(tmp_path):
    token_client = FakeEtcd()
    etcd = FakeProcess(running=True)
    r = rig(tmp_path, running=True, tokens=TokenCheck(etcd, lambda: token_client))
    r.actuator.act(Decision(Action.PROMOTE, "learner caught up", member_id=1), obs(etcd_running=True))
    assert r.cluster.promoted == [1] and r.voting_asked == [OTHERS]
    assert token_client.calls == ["get"]


def test_take_and_release_the_upgrade_lock_flip_the_watch(tmp_path):
    r = rig(tmp_path)
    watch = r.actuator.upgrade_lock
    watch.released()
    r.actuator.act(Decision(Action.TAKE_UPGRADE_LOCK, "newer etcd"), obs())
    assert watch.watching is True and r.cluster.keys[UPGRADE_KEY][0] == ME.encode()
    lease = r.cluster.keys[UPGRADE_KEY][1]
    r.actuator.act(Decision(Action.RELEASE_UPGRADE_LOCK, "healthy voter"), obs(etcd_running=True))
    assert watch.watching is False and UPGRADE_KEY not in r.cluster.keys and lease not in r.cluster.leases


def test_taking_a_lock_someone_holds_keeps_watching_and_leaves_theirs(tmp_path, caplog):
    r = rig(tmp_path)
    r.actuator.upgrade_lock.released()
    r.cluster.keys[UPGRADE_KEY] = (b"i-9", 0x99)
    with caplog.at_level(logging.INFO, "agent"):
        r.actuator.act(Decision(Action.TAKE_UPGRADE_LOCK, "newer etcd"), obs())
    assert r.actuator.upgrade_lock.watching is True and r.cluster.keys[UPGRADE_KEY] == (b"i-9", 0x99)
    assert "upgrade lock: held by i-9" in caplog.text and r.cluster.leases == {}


def test_force_new_cluster_restarts_the_member_alone_and_resets_the_quorum_timer(tmp_path):
    r = rig(tmp_path, running=True)
    r.actuator.quorum.observe(True, False)
    r.actuator.act(Decision(Action.FORCE_NEW_CLUSTER, "quorum lost"),
                   obs(etcd_running=True, local=LocalData(True, 1), quorum_lost_for=90.0, revision=42))
    assert r.etcd.stopped == 1 and "--force-new-cluster" in r.etcd.commands[0]
    assert r.actuator.quorum.lost is False


def test_refuse_restore_answers_the_operator(tmp_path):
    r = rig(tmp_path, running=True)
    restore_requests.write_request(str(r.data_dir), "own-data", "req-1")
    r.actuator.act(Decision(Action.REFUSE_RESTORE, "the cluster has quorum"), obs(etcd_running=True))
    assert restore_requests.read_result(str(r.data_dir), "req-1") == {
        "id": "req-1", "ok": False, "message": "the cluster has quorum"}
    assert restore_requests.read_request(str(r.data_dir)) is None


def test_leave_removes_the_member_releases_the_lock_and_stops_etcd(tmp_path, monkeypatch):
    left = []
    monkeypatch.setattr(membership, "leave",
                        lambda view, mine, url, timeout, **kw: left.append((view, mine, kw["credentials"])))
    r = rig(tmp_path, running=True)
    r.cluster.credentials = Credentials("appliance", "secret")
    r.cluster.keys[UPGRADE_KEY] = (ME.encode(), 0)
    mine = cluster(M1, M2, M3)
    s = obs(etcd_running=True, local=LocalData(True, 1), cluster=mine)
    assert r.actuator.act(Decision(Action.LEAVE, "terminating"), s) is True
    assert left == [(mine, M1, Credentials("appliance", "secret"))]  # the agent's user: authentication may be on
    assert UPGRADE_KEY not in r.cluster.keys and r.etcd.stopped == 1


def test_leave_without_a_running_member_only_stops_etcd(tmp_path, monkeypatch):
    left = []
    monkeypatch.setattr(membership, "leave", lambda *a, **kw: left.append(a))
    r = rig(tmp_path)
    r.actuator.upgrade_lock.released()
    assert r.actuator.act(Decision(Action.LEAVE, "terminating"), obs(cluster=None)) is True
    assert left == [] and r.etcd.stopped == 1 and r.cluster.calls == []


def test_an_etcd_refusal_is_logged_once_per_new_refusal(tmp_path, caplog):
    r = rig(tmp_path, running=True)
    promote = Decision(Action.PROMOTE, "learner caught up", member_id=1)
    s = obs(etcd_running=True)
    refusals = ["etcdserver: can only promote a learner member which is in sync with leader"] * 3 + \
        ["etcdserver: unhealthy cluster"] * 2 + [None] + ["etcdserver: unhealthy cluster"]
    with caplog.at_level(logging.INFO, "agent"):
        for refusal in refusals:
            r.cluster.refuse = {"member_promote": refusal} if refusal else {}
            assert r.actuator.act(promote, s) is False
    said = [rec.getMessage() for rec in caplog.records if "not done yet" in rec.getMessage()]
    assert said == ["promote not done yet: etcdserver: can only promote a learner member which is in sync with leader",
                    "promote not done yet: etcdserver: unhealthy cluster",
                    "promote not done yet: etcdserver: unhealthy cluster"]  # again after a success in between
    assert r.cluster.promoted == [1]


@pytest.mark.parametrize("action, seeding", [
    (Action.ANNOUNCE_SEED, True),
    (Action.SEED, True),
    (Action.WAIT, False),
    (Action.JOIN, False),
    (Action.REJOIN, False),
    (Action.SERVE, False),
], ids=lambda v: v.value if isinstance(v, Action) else str(v))
def test_the_seeding_intent_is_published_only_while_announcing_or_seeding(tmp_path, action, seeding):
    r = rig(tmp_path)
    r.status.update(seeding=True)  # announced in an earlier cycle
    r.actuator.act(Decision(action, "a test's"), obs(cluster=None if seeding else OTHERS))
    assert r.status.seeding is seeding and r.status.snapshot()["seeding"] is seeding
