"""The agent's metrics as Prometheus scrapes them: names, labels, and the ages computed at scrape time."""

import math
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance.adapters.metrics import AgentMetrics


def scrape(metrics: AgentMetrics) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, parsed from the text exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.exposition().decode()) for s in family.samples}


def test_aws_calls_and_errors_by_service_and_operation():
    metrics = AgentMetrics()
    for call in [("autoscaling", "DescribeAutoScalingGroups", ""), ("autoscaling", "DescribeAutoScalingGroups", ""),
                 ("autoscaling", "DescribeAutoScalingGroups", "Throttling"), ("s3", "HeadObject", "404")]:
        metrics.aws_call(*call)
    seen = scrape(metrics)
    groups = (("operation", "DescribeAutoScalingGroups"), ("service", "autoscaling"))
    assert seen[("etcd_appliance_aws_api_calls_total", groups)] == 3
    assert seen[("etcd_appliance_aws_api_errors_total", (("code", "Throttling"),) + groups)] == 1
    assert seen[("etcd_appliance_aws_api_errors_total", (("code", "404"), ("operation", "HeadObject"),
                                                          ("service", "s3")))] == 1
    assert ("etcd_appliance_aws_api_errors_total", (("code", ""),) + groups) not in seen


@pytest.mark.parametrize("timestamp,age", [
    pytest.param("etcd_appliance_snapshot_last_success_timestamp_seconds", "etcd_appliance_snapshot_age_seconds",
                 id="snapshot"),
    pytest.param("etcd_appliance_housekeeping_last_success_timestamp_seconds",
                 "etcd_appliance_housekeeping_age_seconds", id="housekeeping"),
])
def test_ages_are_nan_until_the_first_then_grow_from_the_timestamp(timestamp, age):
    metrics = AgentMetrics()
    assert math.isnan(scrape(metrics)[(age, ())]) and scrape(metrics)[(timestamp, ())] == 0
    gauge = {"etcd_appliance_snapshot_last_success_timestamp_seconds": metrics.snapshot_last_success,
             "etcd_appliance_housekeeping_last_success_timestamp_seconds": metrics.housekeeping_last_success}[timestamp]
    gauge.set(time.time() - 120)
    assert 119 <= scrape(metrics)[(age, ())] <= 130


def test_decisions_and_members():
    metrics = AgentMetrics()
    metrics.decisions.labels(decider="bootstrap", action="serve").inc()
    metrics.decisions.labels(decider="housekeeping", action="remove-member").inc()
    metrics.members.labels(role="voting").set(3)
    metrics.members.labels(role="learner").set(1)
    seen = scrape(metrics)
    assert seen[("etcd_appliance_decisions_total", (("action", "serve"), ("decider", "bootstrap")))] == 1
    assert seen[("etcd_appliance_decisions_total", (("action", "remove-member"), ("decider", "housekeeping")))] == 1
    assert seen[("etcd_appliance_members", (("role", "voting"),))] == 3
    assert seen[("etcd_appliance_members", (("role", "learner"),))] == 1
