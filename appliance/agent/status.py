"""The agent's status document: what ``GET /status`` answers, and the metrics of each cycle's decision.

Peers read it before they seed (``running``, ``has_data``, ``seeding``) and during a quorum loss
(``quorum``, ``revision``); ``etcd.py status`` shows it to operators. It is served from the first
moment, before etcd starts.
"""

from __future__ import annotations

import math
import threading
import time

from appliance.adapters.metrics import AgentMetrics
from appliance.model.decisions import Action, Decision
from appliance.model.observation import Observation


class StatusDocument:
    """The status as a JSON-able dict, updated by the agent's loop, read by the status endpoint's threads.

    Args:
        instance_id, region: this instance. active_regions: ACTIVE_REGIONS (or this region alone).
        has_data: whether the data directory held a member's data at start. etcd_version: e.g. "3.5.1".
    """

    def __init__(self, instance_id: str, region: str, active_regions: tuple[str, ...], has_data: bool,
                 etcd_version: str, metrics: AgentMetrics):
        self.metrics = metrics
        self._lock = threading.Lock()
        self._doc: dict = {"instance_id": instance_id, "region": region, "active_regions": list(active_regions),
                           "state": "starting", "reason": "", "running": False, "seeding": False, "member_id": None,
                           "healthy": False, "leader": False, "has_data": has_data, "etcd_version": etcd_version}

    def snapshot(self) -> dict:
        """A copy of the document (for the status endpoint)."""
        with self._lock:
            return dict(self._doc)

    def update(self, **fields) -> None:
        with self._lock:
            self._doc.update(fields)

    @property
    def seeding(self) -> bool:
        """This agent's published intent to seed."""
        with self._lock:
            return bool(self._doc["seeding"])

    def decided(self, decision: Decision, s: Observation) -> None:
        """One cycle's decision and the facts behind it, for peers and operators; counted in the metrics."""
        self.metrics.decisions.labels(decider="bootstrap", action=decision.action.value).inc()
        if s.cluster is not None:
            learners = sum(1 for m in s.cluster.members if m.is_learner)
            self.metrics.members.labels(role="voting").set(len(s.cluster.members) - learners)
            self.metrics.members.labels(role="learner").set(learners)
        # Only the leader lists the groups each interval; another agent's listing may be hours old.
        desired = s.listing.desired_capacity if s.is_leader and s.listing is not None else None
        self.metrics.group_desired_capacity.set(math.nan if desired is None else desired)
        self.update(
            state=decision.action.value, reason=decision.reason, running=s.etcd_running, has_data=s.local.has_data,
            member_id=format(s.local.member_id, "x") if s.local.member_id else None,
            healthy=decision.action is Action.SERVE and s.etcd_running and s.cluster is not None,
            leader=s.is_leader, upgrade_lock_holder=s.upgrade_lock_holder,
            quorum=s.etcd_running and s.quorum_lost_for is None and s.cluster is not None
            and s.cluster.leader_id is not None, revision=s.revision,
            aws_api_calls=self.metrics.aws_calls_made(), updated=time.time())
