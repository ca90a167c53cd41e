"""Disaster recovery decisions as tables: after a quorum loss, and on an operator's restore request."""

import dataclasses

import pytest

from appliance.model.decisions import Action
from appliance.model.instances import Instance, Listing
from appliance.model.members import ClusterView, LocalData
from appliance.model.observation import Observation, PeerStatus, RestoreRequest
from appliance.rules.recovery import decide_quorum_loss, decide_request

ME, A, B = "i-0b", "i-0a", "i-0c"  # A sorts first: ties go to the lowest instance id


def listing(*ids, desired=3, complete=True):
    return Listing(complete, tuple(Instance(i, f"127.0.1.{4 + n}", "InService") for n, i in enumerate(ids)),
                   problem="" if complete else "throttled", desired_capacity=desired)


REPLACEMENTS = {A: PeerStatus(A, False, False), B: PeerStatus(B, False, False)}


def snap(**kw):
    base = dict(instance_id=ME, peer_url="http://127.0.1.5:2380", local=LocalData(True, 2), etcd_running=True,
                listing=listing(ME, A, B), peers=REPLACEMENTS, quorum_lost_for=30.0, revision=120,
                quorum_loss_wait=10.0)
    base.update(kw)
    return Observation(**base)


QUORUM_LOSS = [
    # (name, snapshot, action, words)
    ("lone survivor, replacements answer without data: recover", snap(), Action.FORCE_NEW_CLUSTER,
     "i-0b (revision 120): this instance has the highest revision"),
    ("manual: say who and how, wait", snap(quorum_recovery="manual"), Action.WAIT, "etcd.py restore --own-data"),
    ("not yet QUORUM_LOSS_WAIT", snap(quorum_lost_for=3.0), Action.WAIT, "once that has lasted 10 s"),
    ("listing incomplete", snap(listing=listing(ME, A, B, complete=False)), Action.WAIT, "incomplete (throttled)"),
    ("no listing", snap(listing=None), Action.WAIT, "not taken"),
    ("group not at its desired size yet", snap(listing=listing(ME, A)), Action.WAIT, "2 of 3 desired"),
    ("desired size unknown", snap(listing=listing(ME, A, B, desired=None)), Action.WAIT, "of None desired"),
    ("an agent does not answer: maybe partitioned", snap(peers={A: REPLACEMENTS[A], B: None}), Action.WAIT,
     "no answer from the agents of i-0c"),
    ("another member sees a leader: this one is the partitioned one",
     snap(peers={A: PeerStatus(A, True, True, quorum=True, revision=130), B: REPLACEMENTS[B]}), Action.WAIT,
     "i-0a see a leader"),
    ("another survivor has a higher revision: it recovers",
     snap(peers={A: PeerStatus(A, True, True, revision=121), B: REPLACEMENTS[B]}), Action.WAIT,
     "i-0a has the highest revision and recovers"),
    ("equal revisions: the lowest instance id recovers",
     snap(peers={A: PeerStatus(A, True, True, revision=120), B: REPLACEMENTS[B]}), Action.WAIT,
     "i-0a has the highest revision"),
    ("this one higher than another survivor: recover",
     snap(peers={A: PeerStatus(A, True, True, revision=119), B: REPLACEMENTS[B]}), Action.FORCE_NEW_CLUSTER,
     "i-0a (revision 119), i-0b (revision 120)"),
    ("a survivor's revision unknown: wait", snap(peers={A: PeerStatus(A, False, True), B: REPLACEMENTS[B]}),
     Action.WAIT, "revision of i-0a's data is not known"),
    ("own revision unknown: wait", snap(revision=None), Action.WAIT, "revision of i-0b's data is not known"),
]


@pytest.mark.parametrize("name,snapshot,action,words", QUORUM_LOSS, ids=[c[0] for c in QUORUM_LOSS])
def test_quorum_loss(name, snapshot, action, words):
    decision = decide_quorum_loss(snapshot)
    assert (decision.action, words in decision.reason) == (action, True), decision.reason


LED = ClusterView(0xC1, (), leader_id=1)
LEADERLESS = dataclasses.replace(LED, leader_id=None)
REQUESTS = [
    ("snapshot while a leader answers: refused", snap(cluster=LED, restore_request=RestoreRequest("s3://b/k")),
     Action.REFUSE_RESTORE, "has a leader"),
    ("snapshot, nobody leads: restore it", snap(cluster=LEADERLESS, restore_request=RestoreRequest("s3://b/k")),
     Action.RESTORE_SNAPSHOT, "restore from s3://b/k"),
    ("snapshot, no member answers at all: restore it", snap(restore_request=RestoreRequest("/tmp/s.db")),
     Action.RESTORE_SNAPSHOT, "/tmp/s.db"),
    ("own data, nobody leads: force a new cluster", snap(restore_request=RestoreRequest("own-data")),
     Action.FORCE_NEW_CLUSTER, "restore --own-data"),
    ("own data without data: refused",
     snap(local=LocalData(False, None), etcd_running=False, restore_request=RestoreRequest("own-data")),
     Action.REFUSE_RESTORE, "holds no member data"),
]


@pytest.mark.parametrize("name,snapshot,action,words", REQUESTS, ids=[c[0] for c in REQUESTS])
def test_request(name, snapshot, action, words):
    decision = decide_request(snapshot)
    assert (decision.action, words in decision.reason) == (action, True), decision.reason
    assert decision.source == snapshot.restore_request.source
