"""The agent's Prometheus metrics (prometheus-client), served at ``/metrics`` on the status endpoint."""

from __future__ import annotations

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
        self.snapshot_bytes = Gauge("etcd_appliance_snapshot_bytes", "size of the last snapshot taken", registry=r)
        self.recoveries = Counter("etcd_appliance_recoveries", "disaster recoveries this agent carried out, by kind "
                                  "(force-new-cluster, snapshot) and whether acknowledged writes may be lost",
                                  ["kind", "may_lose_writes"], registry=r)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
