"""Clearing a NOSPACE alarm by itself, by :mod:`appliance.rules.alarms`: the compaction and defragmentation
components do the work; this one says which members are still to be defragmented and disarms the alarm
at the end, logging what was done and why."""

from __future__ import annotations

import logging
import time
from typing import Callable

from appliance.adapters.etcd import maintenance
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.reasons import ReasonLog
from appliance.model.maintenance import Alarm, AlarmKind, CompactionRecord, Maintenance
from appliance.rules import alarms

log = logging.getLogger("agent")


class NospaceRecovery:
    """The NOSPACE alarm's recovery.

    Args:
        client: a client on the local member. quota: the space quota (bytes). metrics: the agent's.
        clock: epoch seconds.
    """

    def __init__(self, client, quota: int, metrics: AgentMetrics, clock: Callable[[], float] = time.time):
        self.client, self.quota, self.metrics, self.clock = client, quota, metrics, clock
        self.seen_at: float | None = None
        # This agent sent a disarm for the alarm seen at seen_at: if the alarm is then gone, the disarm took effect
        # even when its answer was lost (a timeout under load), and the clearing is this agent's to report.
        self.disarm_sent = False
        self.reason = ReasonLog(log, "space")

    def since(self, m: Maintenance) -> float | None:
        """When this agent first saw the NOSPACE alarm that is raised now (epoch seconds), None when none is. An
        alarm list that could not be read changes nothing: unknown is not "cleared"."""
        if m.alarms is None:
            return self.seen_at
        alarmed = m.alarmed(AlarmKind.NOSPACE)
        if not alarmed:
            if self.seen_at is not None:
                self._gone()
            return None
        if self.seen_at is None:
            self.seen_at = self.clock()
            log.warning("space: NOSPACE alarm raised by %s: etcd refuses writes until it is cleared",
                        ", ".join(sorted(format(a, "x") for a in set(alarmed))))
        return self.seen_at

    def tick(self, m: Maintenance, leads: bool, compacted: CompactionRecord | None,
             defragmented: dict[int, float], defragmenting: bool) -> alarms.NospaceDecision:
        """Decide the next step; disarm when it is time. Returns the decision (its ``pending``: the members the
        defragmentation must do whatever their free space)."""
        alarmed = m.alarmed(AlarmKind.NOSPACE)
        since = self.since(m)
        leader = next((x for x in m.members if x.is_leader), None)
        decision = alarms.decide(alarms.NospaceFacts(
            leads=leads, alarmed=alarmed, revision=leader.revision if leader is not None else None,
            compacted=compacted.revision if compacted else 0, compacted_at=compacted.time if compacted else 0.0,
            members=m.members, defragmented=defragmented, quota=self.quota, since=since or 0.0))
        self.reason.say(decision.reason, loud=decision.step != "none" or bool(alarmed))
        if decision.step == "disarm" and not defragmenting:
            self._disarm(alarmed, decision.reason)
        return decision

    def _disarm(self, alarmed: tuple[int, ...], reason: str) -> None:
        self.disarm_sent = True
        for member_id in alarmed:
            try:
                maintenance.disarm(self.client, Alarm(member_id, AlarmKind.NOSPACE))
            except EtcdFailure as exc:
                log.warning("space: disarming NOSPACE of member %x failed: %s", member_id, exc)
                return
        log.info("space: NOSPACE cleared %.1f s after it was seen, writes accepted again: %s", self._cleared(), reason)

    def _cleared(self) -> float:
        """Count a clearing by this agent; returns how long the alarm lasted (seconds) and forgets it."""
        took = self.clock() - self.seen_at if self.seen_at is not None else 0.0
        self.metrics.nospace_cleared.inc()
        self.metrics.nospace_clear_seconds.set(took)
        self.seen_at, self.disarm_sent = None, False
        return took

    def _gone(self) -> None:
        """The alarm seen (``seen_at`` set) is no longer listed, and this agent did not hear its disarm succeed."""
        if self.disarm_sent:
            log.info("space: NOSPACE cleared %.1f s after it was seen, writes accepted again: the alarm list no "
                     "longer shows it, so this agent's disarm took effect though its answer was lost", self._cleared())
            return
        log.info("space: NOSPACE no longer raised, %.1f s after this agent saw it: cleared by the leader's agent or "
                 "an operator; writes accepted again", self.clock() - self.seen_at)
        self.seen_at = None
