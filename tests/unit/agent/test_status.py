"""The agent's status document: what ``decided`` publishes for peers and operators, and what it counts.

The AWS calls on the document come from the same counter as ``/metrics`` (``AgentMetrics.aws_call``), so the
two figures never disagree.
"""

from __future__ import annotations

import dataclasses

import pytest

from appliance.adapters.metrics import AgentMetrics
from appliance.agent.status import StatusDocument
from appliance.model.decisions import Action, Decision
from appliance.model.members import LocalData
from appliance.model.observation import Observation
from tests.unit.agent.fakes import cluster, member

ME = "i-1"
M1, M2, LEARNER = member(0x1A, ME, "127.0.1.4"), member(2, "i-2", "127.0.1.5"), member(3, "i-3", "127.0.1.6", True)
SERVING = Observation(instance_id=ME, peer_url="http://127.0.1.4:2380", local=LocalData(True, 0x1A),
                      etcd_running=True, cluster=cluster(M1, M2, LEARNER, leader=0x1A), is_leader=True,
                      upgrade_lock_holder="i-9")


def document(metrics: AgentMetrics | None = None) -> StatusDocument:
    return StatusDocument(ME, "eu-central-1", ("eu-central-1",), False, "3.5.1", metrics or AgentMetrics())


def sample(metrics: AgentMetrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_decided_publishes_the_decision_and_its_facts():
    status = document()
    status.decided(Decision(Action.SERVE, "a healthy voting member"), SERVING)
    doc = status.snapshot()
    assert {k: doc[k] for k in ("state", "reason", "running", "has_data", "member_id", "healthy", "leader",
                                "quorum", "upgrade_lock_holder", "revision")} == {
        "state": "serve", "reason": "a healthy voting member", "running": True, "has_data": True,
        "member_id": "1a", "healthy": True, "leader": True, "quorum": True, "upgrade_lock_holder": "i-9",
        "revision": None}
    assert doc["instance_id"] == ME and doc["etcd_version"] == "3.5.1" and doc["updated"] > 0


def test_the_aws_calls_are_those_of_the_metrics():
    metrics = AgentMetrics()
    status = document(metrics)
    metrics.aws_call("autoscaling", "DescribeAutoScalingGroups", "")
    metrics.aws_call("ec2", "DescribeInstances", "")
    metrics.aws_call("route53", "ChangeResourceRecordSets", "Throttling")  # an error is a call too
    status.decided(Decision(Action.SERVE, "serving"), SERVING)
    assert status.snapshot()["aws_api_calls"] == 3
    exposed = sum(sample(metrics, "etcd_appliance_aws_api_calls_total", service=s, operation=o) for s, o in (
        ("autoscaling", "DescribeAutoScalingGroups"), ("ec2", "DescribeInstances"),
        ("route53", "ChangeResourceRecordSets")))
    assert exposed == 3
    metrics.aws_call("s3", "PutObject", "")  # S3 counts too (it was left out when counted by hand)
    status.decided(Decision(Action.SERVE, "serving"), SERVING)
    assert status.snapshot()["aws_api_calls"] == 4


@pytest.mark.parametrize("action, facts, healthy, quorum", [
    (Action.SERVE, {}, True, True),
    (Action.PROMOTE, {}, False, True),
    (Action.SERVE, {"quorum_lost_for": 30.0, "cluster": cluster(M1, M2, leader=None)}, True, False),
    (Action.FORCE_NEW_CLUSTER, {"quorum_lost_for": 90.0}, False, False),
    (Action.JOIN, {"etcd_running": False, "is_leader": False}, False, False),
    (Action.SEED, {"etcd_running": False, "cluster": None, "is_leader": False}, False, False),
], ids=["serving", "a learner promoted", "serving but leaderless", "quorum lost", "joining", "seeding"])
def test_healthy_and_quorum(action, facts, healthy, quorum):
    status = document()
    status.decided(Decision(action, "a test's"), dataclasses.replace(SERVING, **facts))
    assert (status.snapshot()["healthy"], status.snapshot()["quorum"]) == (healthy, quorum)


def test_decided_counts_the_decision_and_the_members_by_role():
    metrics = AgentMetrics()
    status = document(metrics)
    for _ in range(2):
        status.decided(Decision(Action.SERVE, "serving"), SERVING)
    status.decided(Decision(Action.WAIT, "waiting"), dataclasses.replace(SERVING, cluster=None, etcd_running=False))
    assert sample(metrics, "etcd_appliance_decisions_total", decider="bootstrap", action="serve") == 2
    assert sample(metrics, "etcd_appliance_decisions_total", decider="bootstrap", action="wait") == 1
    # The members as last seen: a cycle without a cluster leaves the gauges as they were.
    assert (sample(metrics, "etcd_appliance_members", role="voting"),
            sample(metrics, "etcd_appliance_members", role="learner")) == (2, 1)


def test_a_snapshot_is_a_copy_and_the_seeding_intent_is_read_back():
    status = document()
    copy = status.snapshot()
    copy["state"] = "tampered"
    assert status.snapshot()["state"] == "starting" and status.seeding is False
    status.update(seeding=True)
    assert status.seeding is True
