"""The mirror's Prometheus metrics (prometheus-client), served on ``--metrics-port`` when given."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class MirrorMetrics:
    """Counters and gauges of one mirror, in a registry of their own.

    Args:
        port: serve ``/metrics`` on ``address:port``; None to serve nothing (tests, benchmarks).
        address: a loopback address by default; the operator widens it deliberately.

    Raises:
        OSError: the port cannot be bound.
    """

    def __init__(self, port: int | None, address: str = "127.0.0.1"):
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("etcd_mirror_events_applied", "source changes applied to the destination", registry=r)
        self.transactions = Counter("etcd_mirror_transactions", "destination transactions committed", registry=r)
        self.reloads = Counter("etcd_mirror_reloads", "copies redone after a compaction or --reload", registry=r)
        self.applied_revision = Gauge("etcd_mirror_applied_revision", "last source revision applied (the position)",
                                      registry=r)
        self.source_revision = Gauge("etcd_mirror_source_revision", "latest source store revision seen", registry=r)
        self.lag_revisions = Gauge("etcd_mirror_lag_revisions", "source revision seen minus the position", registry=r)
        self.lag_seconds = Gauge("etcd_mirror_lag_seconds",
                                 "now minus the time in the last heartbeat applied (the source writes it every second)",
                                 registry=r)
        self.paused = Gauge("etcd_mirror_paused", "1 while another cluster is the active one", registry=r)
        if port is not None:
            start_http_server(port, addr=address, registry=r)
