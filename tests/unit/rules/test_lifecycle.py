"""Which rule decides, as a table of observations: leaving comes first, then an operator's restore request,
the recovery after a quorum loss, serving, the restart backoff, rejoining with data, the other regions'
access to this instance, and only then joining or seeding."""


import pytest

from appliance.model.decisions import Action
from appliance.model.members import LocalData
from appliance.model.observation import RestoreRequest
from appliance.model.security_groups import RuleChange
from tests.unit.rules.observations import (
    CLUSTER,
    MINE,
    assert_decides,
    obs,
)

OPENING = (RuleChange("eu-west-1", "sg-1", "ingress", "127.0.1.4/32", True),)

CASES = [
    # (name, observation, expected action, words the reason must contain)
    ("other regions cannot reach this instance yet: no join",
     obs(cluster=CLUSTER, peer_access_problem="DescribeSecurityGroups in eu-west-1 failed"),
     Action.WAIT, "cannot reach this instance yet: DescribeSecurityGroups in eu-west-1"),
    ("other regions cannot reach this instance yet: no seeding", obs(peer_access_problem="AccessDenied"),
     Action.WAIT, "other regions cannot reach"),
    ("own data and no peer access: restart anyway (its rules outlive a restart)",
     obs(local=LocalData(True, 3), peer_access_problem="AccessDenied"), Action.REJOIN, "restarting with it"),
    ("crash backoff: wait", obs(local=LocalData(True, 3), may_start=False), Action.WAIT, "backoff"),
    ("terminating: leave", obs(etcd_running=True, terminating=True, cluster=CLUSTER), Action.LEAVE, "terminated"),
    ("terminating before joining: leave", obs(terminating=True), Action.LEAVE, "leaving"),
    ("quorum lost: the recovery rules decide",
     obs(etcd_running=True, local=LocalData(True, 3), quorum_lost_for=1.0, revision=9), Action.WAIT,
     "quorum lost"),
    ("operator's restore request comes first, refused while a leader answers",
     obs(etcd_running=True, local=LocalData(True, 3), cluster=MINE, restore_request=RestoreRequest("own-data")),
     Action.REFUSE_RESTORE, "has a leader"),

    ("the other regions' groups lack this instance's rules: open them before joining",
     obs(cluster=CLUSTER, missing_access=OPENING), Action.OPEN_PEER_ACCESS, "open eu-west-1 ingress from 127.0.1.4/32"),
    ("the other regions' groups lack this instance's rules: open them before seeding",
     obs(missing_access=OPENING), Action.OPEN_PEER_ACCESS, "before it seeds or joins"),
    ("own data: rejoin without opening anything (its rules outlive a restart)",
     obs(local=LocalData(True, 3), missing_access=OPENING), Action.REJOIN, "restarting with it"),
    ("terminating wins over a restore request", obs(terminating=True, restore_request=RestoreRequest("own-data")),
     Action.LEAVE, "terminated"),
]


@pytest.mark.parametrize("name,observation,action,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, observation, action, words):
    assert_decides(observation, action, words)
