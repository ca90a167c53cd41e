"""The leader's housekeeping: hold the housekeeping lease, and remove at most one vanished member a cycle.

The rule is :mod:`appliance.rules.housekeeping` (docs/design.md, "Removal guards"); this component
keeps its state (the lease, when each member's instance was first seen gone, the last decisions)
and carries out a removal.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from typing import Callable

from appliance.adapters.etcd.errors import EtcdFailure
from appliance.adapters.etcd.locks import LeaseLock
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.reasons import ReasonLog
from appliance.model.keys import HOUSEKEEPING_KEY
from appliance.model.observation import Observation
from appliance.rules import housekeeping

log = logging.getLogger("agent")

HISTORY = 10  # the leader's last housekeeping decisions kept for the status endpoint


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One housekeeping cycle: the decision, who holds the lease (None: unknown), whether a member was removed,
    and whether etcd refused the removal decided on (the cycle did not complete)."""

    decision: housekeeping.HousekeepingDecision
    lease_holder: str | None
    removed: bool = False
    refused: bool = False


class Housekeeping:
    """The leader's housekeeping.

    Args:
        client: an :class:`~appliance.adapters.etcd.client.EtcdClient` on the local member (lease, removal).
        me: this instance's id. ttl: the housekeeping lease's TTL in seconds. grace_period: seconds.
        snapshot_done_at: when the last snapshot attempt ended (monotonic), None without snapshots.
        metrics: the agent's metrics. clock: monotonic seconds.
    """

    def __init__(self, client, me: str, ttl: int, grace_period: float,
                 snapshot_done_at: Callable[[], float | None], metrics: AgentMetrics,
                 clock: Callable[[], float] = time.monotonic):
        self.client, self.me, self.grace_period = client, me, grace_period
        self.snapshot_done_at, self.metrics, self.clock = snapshot_done_at, metrics, clock
        self.lock = LeaseLock(client, HOUSEKEEPING_KEY, me, ttl)
        self.gone_since: dict[int, float] = {}
        self.calm = False
        self.reason = ReasonLog(log, "housekeeping")
        self.failure = ReasonLog(log, "housekeeping")  # a removal etcd refused, once per new refusal
        # The last decisions, each when it changed more than its durations (housekeeping.gist): time (epoch
        # seconds), action, reason, and the member concerned (hex id, name) or None.
        self.history: collections.deque[dict] = collections.deque(maxlen=HISTORY)

    def tick(self, s: Observation) -> Outcome:
        """On the leader: renew (or take) the lease, decide, and remove the member decided on."""
        assert s.cluster is not None
        lease_holder = self.lock.acquire_or_renew()
        now = self.clock()
        self.gone_since = housekeeping.track_gone(self.gone_since, s.cluster.members, s.listing, now)
        verdict = housekeeping.decide(housekeeping.HousekeepingFacts(
            now=now, is_leader=s.is_leader, lease_holder=lease_holder, me=self.me, listing=s.listing,
            members=s.member_health, gone_since=self.gone_since, grace_period=self.grace_period,
            upgrade_lock_holder=s.upgrade_lock_holder, snapshot_done_at=self.snapshot_done_at()))
        self.calm = housekeeping.calm(s.member_health, self.gone_since, s.listing)
        self.metrics.decisions.labels(decider="housekeeping", action=verdict.action).inc()
        self.reason.say(verdict.reason)
        self._remember(verdict)
        if verdict.member is None:
            self.failure.clear()
            return Outcome(verdict, lease_holder)
        try:
            self.client.member_remove(verdict.member.id)
        except EtcdFailure as exc:
            # etcd refuses while not ready ("unhealthy cluster"): the next cycle decides again.
            self.failure.say(f"removing member {verdict.member.hex_id} not done yet: {exc}")
            return Outcome(verdict, lease_holder, refused=True)
        self.failure.clear()
        log.info("housekeeping: removed member %s (%s)", verdict.member.hex_id, verdict.member.name or "never started")
        self.gone_since.pop(verdict.member.id, None)
        return Outcome(verdict, lease_holder, removed=True)

    def _remember(self, verdict: housekeeping.HousekeepingDecision) -> None:
        previous = self.history[-1]["reason"] if self.history else None
        if previous is None or housekeeping.gist(previous) != housekeeping.gist(verdict.reason):
            concerned = verdict.member
            self.history.append({
                "time": time.time(), "action": verdict.action, "reason": verdict.reason,
                "member": concerned.hex_id if concerned is not None else None,
                "instance": (concerned.name or None) if concerned is not None else None})

    def completed(self, outcome: Outcome) -> None:
        """The cycle's leader work ran to its end (no refused removal, no component failed): it counts as a
        success (``etcd_appliance_housekeeping_last_success_timestamp_seconds``) only for the lease holder."""
        if outcome.lease_holder == self.me and not outcome.refused:
            self.metrics.housekeeping_last_success.set_to_current_time()

    def step_down(self) -> None:
        """Not the leader (any more): give the lease back, so that the new leader need not wait for its TTL."""
        if self.lock.lease_id:
            self.lock.release()
