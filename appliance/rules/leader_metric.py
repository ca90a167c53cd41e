"""When the leader reports itself to CloudWatch (pure).

An alarm that must fire when no member leads cannot read etcd: it needs a signal that stops when leadership
does. The serving leader, with quorum, puts one ``HealthyLeader`` data point each :data:`PUT_INTERVAL`; a
CloudWatch alarm on its sum, with missing data as breaching, then fires when none arrives (the templates'
NoHealthyLeader alarm).
"""

from __future__ import annotations

PUT_INTERVAL = 60.0  # seconds: CloudWatch's standard resolution, and the alarm's period


def due(configured: bool, serving_leader: bool, since_last_put: float | None, interval: float = PUT_INTERVAL) -> bool:
    """True when the leader puts a data point now: CLOUDWATCH_NAMESPACE is set, this member leads a cluster with
    quorum and serves, and ``interval`` seconds passed since the last one (None: none yet)."""
    return configured and serving_leader and (since_last_put is None or since_last_put >= interval)
