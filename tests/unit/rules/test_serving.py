"""The serving rule as a table of observations: a running member is promoted, records whose its data is,
releases the upgrade lock, or sets aside the data of a removed member."""


import pytest

from appliance.model.decisions import Action
from appliance.model.members import ClusterView, LocalData
from appliance.rules.lifecycle import decide
from tests.unit.rules.observations import (
    CLUSTER,
    ME,
    MINE,
    assert_decides,
    member,
    obs,
)

CASES = [
    # (name, observation, expected action, words the reason must contain)
    ("running learner: promote",
     obs(etcd_running=True, local=LocalData(True, 3),
          cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4", learner=True),), 1)),
     Action.PROMOTE, "learner"),
    ("running voter: serve",
     obs(etcd_running=True, local=LocalData(True, 3),
          cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4"),), 1)),
     Action.SERVE, "voting member"),
    ("running, nobody answers: serve on", obs(etcd_running=True, local=LocalData(True, 3)), Action.SERVE,
     "no member answered"),
    ("voter holding the lock, healthy: release",
     obs(etcd_running=True, local=LocalData(True, 3), cluster=MINE, upgrade_lock_holder=ME, local_healthy=True),
     Action.RELEASE_UPGRADE_LOCK, "releasing the upgrade lock"),
    ("voter holding the lock, not healthy yet: keep it",
     obs(etcd_running=True, local=LocalData(True, 3), cluster=MINE, upgrade_lock_holder=ME),
     Action.SERVE, "keeping the upgrade lock"),
    ("learner holding the lock: promote first",
     obs(etcd_running=True, local=LocalData(True, 3), upgrade_lock_holder=ME, local_healthy=True,
          cluster=ClusterView(0xC1, CLUSTER.members + (member(3, ME, "127.0.1.4", learner=True),), 1)),
     Action.PROMOTE, "learner"),
    ("etcd runs with data of a member the led cluster removed: set aside",
     obs(etcd_running=True, local=LocalData(True, 7), cluster=CLUSTER), Action.SET_ASIDE, "does not list"),
    ("etcd runs, unmarked data, cluster does not list it: serve (it may be joining)",
     obs(etcd_running=True, local=LocalData(True, None), cluster=CLUSTER), Action.SERVE, "does not list this member"),
    ("running on unmarked data the cluster lists under this name: mark it",
     obs(etcd_running=True, local=LocalData(True, None), cluster=MINE), Action.MARK_DATA, "recording it"),
    ("running on marked data: no marking", obs(etcd_running=True, local=LocalData(True, 3), cluster=MINE),
     Action.SERVE, "voting member"),
]


@pytest.mark.parametrize("name,observation,action,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, observation, action, words):
    assert_decides(observation, action, words)


def test_mark_data_names_the_member():
    decision = decide(obs(etcd_running=True, local=LocalData(True, None), cluster=MINE))
    assert decision.member_id == 3
