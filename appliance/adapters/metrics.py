"""The agent's Prometheus metrics (prometheus-client), served at ``/metrics`` on its status endpoint."""

from __future__ import annotations

import math
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class AgentMetrics:
    """The agent's counters and gauges, in a registry of their own (one agent per process, and tests
    build several)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.snapshots = Counter("etcd_appliance_snapshots", "snapshots attempted by this agent, by outcome (ok, "
                                 "failed)", ["outcome"], registry=r)
        self.snapshot_last_success = Gauge("etcd_appliance_snapshot_last_success_timestamp_seconds",
                                           "when the newest snapshot in S3 was taken (epoch seconds)", registry=r)
        self.snapshot_age = Gauge("etcd_appliance_snapshot_age_seconds",
                                  "seconds since the newest snapshot in S3 was taken, as this agent last saw it "
                                  "(NaN before it saw one)", registry=r)
        self.snapshot_age.set_function(lambda: _age(self.snapshot_last_success))
        self.snapshot_bytes = Gauge("etcd_appliance_snapshot_bytes", "size of the last snapshot taken", registry=r)
        self.recoveries = Counter("etcd_appliance_recoveries", "disaster recoveries this agent carried out, by kind "
                                  "(force-new-cluster, snapshot) and whether acknowledged writes may be lost",
                                  ["kind", "may_lose_writes"], registry=r)
        self.decisions = Counter("etcd_appliance_decisions", "decisions this agent made (one per cycle), by decider "
                                 "(bootstrap: every agent's; housekeeping: the leader's) and action",
                                 ["decider", "action"], registry=r)
        self.aws_calls = Counter("etcd_appliance_aws_api_calls", "AWS API calls this agent made (each counted once, "
                                 "after retries), by service and operation", ["service", "operation"], registry=r)
        self.aws_errors = Counter("etcd_appliance_aws_api_errors", "AWS API calls that ended in an error, by service, "
                                  "operation and code (the AWS error code, or the exception's name when AWS did not "
                                  "answer)", ["service", "operation", "code"], registry=r)
        self.members = Gauge("etcd_appliance_members", "members of the cluster as this agent last saw the member "
                             "list, by role (voting, learner)", ["role"], registry=r)
        self.housekeeping_last_success = Gauge(
            "etcd_appliance_housekeeping_last_success_timestamp_seconds",
            "when this agent last completed a housekeeping cycle as the leader holding the housekeeping lease "
            "(epoch seconds; 0: never)", registry=r)
        self.housekeeping_age = Gauge("etcd_appliance_housekeeping_age_seconds",
                                      "seconds since this agent last completed a housekeeping cycle (NaN: never)",
                                      registry=r)
        self.housekeeping_age.set_function(lambda: _age(self.housekeeping_last_success))

    def aws_call(self, service: str, operation: str, error: str) -> None:
        """Count one AWS API call (see :func:`appliance.adapters.aws.calls.counted_session`); ``error``: "" for
        success."""
        self.aws_calls.labels(service=service, operation=operation).inc()
        if error:
            self.aws_errors.labels(service=service, operation=operation, code=error).inc()

    def aws_calls_made(self) -> int:
        """Every AWS API call counted so far (all services and operations): the status endpoint's figure,
        from the same counter as ``/metrics``."""
        return int(sum(sample.value for metric in self.aws_calls.collect() for sample in metric.samples
                       if sample.name.endswith("_total")))

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


def _age(timestamp: Gauge) -> float:
    """Seconds from ``timestamp``'s value (epoch seconds) to now; NaN while it is 0 (never set)."""
    at = timestamp.collect()[0].samples[0].value
    return time.time() - at if at > 0 else math.nan
