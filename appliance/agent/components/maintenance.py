"""The cluster's maintenance, in the order one leader cycle needs it: the NOSPACE alarm seen, compaction,
the alarm's next step, defragmentation, the corruption check; and, on every member, its own space in the
status document and the metrics. Each part is a component with its own rule; this one only orders them
(docs/design.md, "Maintenance")."""

from __future__ import annotations

import logging
import math

from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.alarms import NospaceRecovery
from appliance.agent.components.compaction import Compaction
from appliance.agent.components.corruption import CorruptionCheck
from appliance.agent.components.defragmentation import Defragmentation
from appliance.model.maintenance import AlarmKind
from appliance.model.members import Member
from appliance.model.observation import Observation

log = logging.getLogger("agent")


class ClusterMaintenance:
    """Compaction, defragmentation, the NOSPACE alarm and the corruption check.

    Args:
        compaction, defragmentation, nospace, corruption: the components. quota: the space quota (bytes).
        metrics: the agent's.
    """

    def __init__(self, compaction: Compaction, defragmentation: Defragmentation, nospace: NospaceRecovery,
                 corruption: CorruptionCheck, quota: int, metrics: AgentMetrics):
        self.compaction, self.defragmentation = compaction, defragmentation
        self.nospace, self.corruption = nospace, corruption
        self.metrics = metrics
        metrics.quota.set(quota)

    def tick(self, s: Observation, lease: bool) -> None:
        """On the leader, after the housekeeping: ``lease`` when it holds the housekeeping lease."""
        m, cluster = s.maintenance, s.cluster
        if m is None or cluster is None:
            return
        # Under NOSPACE the lease cannot be taken (a put): the raft leader alone clears the alarm, whose steps are
        # safe to repeat (a former leader no longer leads). Removing a corrupt member still needs the lease.
        leads = lease or (s.is_leader and self.nospace_raised(s))
        own = _own(s)
        self.defragmentation.collect()
        since = self.nospace.since(m)
        self.compaction.tick(m, own.id if own else None, leads, since)
        last = self.compaction.last(m)
        step = self.nospace.tick(m, leads, last, self.defragmentation.last(m), self.defragmentation.running)
        forced = step.pending if step.step == "defragment" else frozenset()
        self.defragmentation.tick(m, cluster, leads, s.upgrade_lock_holder, forced)
        self.corruption.tick(m, cluster, lease, last.revision if last else 0, s.upgrade_lock_holder)

    @staticmethod
    def nospace_raised(s: Observation) -> bool:
        """A NOSPACE alarm is raised, as this cycle observed."""
        return s.maintenance is not None and bool(s.maintenance.alarmed(AlarmKind.NOSPACE))

    @property
    def busy(self) -> bool:
        """Something is under way (a defragmentation, a NOSPACE alarm, data in use at half the quota): the leader
        cycles at the busy pace."""
        return self.defragmentation.running or self.nospace.seen_at is not None or self.compaction.near

    def reasons(self) -> dict:
        """The leader's last reason of each part, for the status document."""
        return {"compaction": self.compaction.reason.last, "defragmentation": self.defragmentation.reason.last,
                "space": self.nospace.reason.last, "corruption_check": self.corruption.reason.last}

    def report(self, s: Observation) -> dict:
        """On every serving member: sample the revision, set this member's space in ``/metrics``, and return the
        fields of ``/status`` that show it ({} when it was not observed)."""
        m = s.maintenance
        own = _own(s)
        if m is None or own is None:
            return {}
        self.nospace.since(m)  # on every member: a former leader forgets an alarm that was cleared meanwhile
        self.compaction.sample(m, own.id)
        self.compaction.flush(m)
        self.defragmentation.flush(m)
        mine = m.member(own.id)
        last = self.compaction.last(m)
        defragmented = self.defragmentation.last(m).get(own.id)
        alarms = sorted({a.kind.value for a in m.alarms or () if a.member_id == own.id})
        known = lambda value: math.nan if value is None else value  # noqa: E731 - unknown is NaN, not the last value
        self.metrics.db_size.set(known(mine.db_size if mine else None))
        self.metrics.db_size_in_use.set(known(mine.db_size_in_use if mine else None))
        self.metrics.db_free_ratio.set(known(mine.free_fraction if mine else None))
        self.metrics.last_defragmentation.set(defragmented or 0)
        self.metrics.compacted_revision.set(last.revision if last else 0)
        if m.alarms is not None:
            for kind in AlarmKind:
                self.metrics.alarm.labels(alarm=kind.value).set(1 if kind.value in alarms else 0)
        return dict(space={
            "db_size_bytes": mine.db_size if mine else None,
            "db_size_in_use_bytes": mine.db_size_in_use if mine else None,
            "free_ratio": round(mine.free_fraction, 4) if mine and mine.free_fraction is not None else None,
            "last_defragmentation": defragmented, "compacted_revision": last.revision if last else None,
            "alarms": alarms if m.alarms is not None else None},
            maintenance=self.reasons() if s.is_leader else None)


def _own(s: Observation) -> Member | None:
    if s.cluster is None:
        return None
    return s.cluster.by_id(s.local.member_id) or s.cluster.by_name_or_peer(s.instance_id, s.peer_url)
