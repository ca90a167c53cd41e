"""Observations the rules' table tests share: a three-instance group, its members and clusters."""

import dataclasses

from appliance.model.instances import Instance, Listing
from appliance.model.members import ClusterView, LocalData, Member
from appliance.model.observation import Observation, PeerStatus

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


def obs(**kw):
    """An observation of this instance (ME) in the three-instance group, with the given facts."""
    base = dict(instance_id=ME, peer_url=MY_PEER, local=NO_DATA, etcd_running=False, listing=FULL,
                cluster=None, peers=FRESH_PEERS, binary_version=(3, 5, 1))
    base.update(kw)
    return Observation(**base)


def assert_decides(observation: Observation, action, words: str) -> None:
    """The lifecycle rule decides ``action`` for ``observation``, with ``words`` in its reason."""
    from appliance.rules.lifecycle import decide

    decision = decide(observation)
    assert decision.action is action, decision.reason
    assert words in decision.reason
