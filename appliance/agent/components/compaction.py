"""The leader's compaction of the key-value history: samples the revision every cycle, compacts by
:mod:`appliance.rules.compaction`, and records the compaction in etcd for every agent and the next leader.

The record is written after the compaction; when it cannot be (a NOSPACE alarm refuses puts), this
component's own memory holds the fact until it can.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Callable

from appliance.adapters.etcd.errors import EtcdError, EtcdFailure
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.reasons import ReasonLog
from appliance.model.keys import COMPACTION_KEY
from appliance.model.maintenance import CompactionRecord, Maintenance
from appliance.rules import compaction

log = logging.getLogger("agent")

MAX_SAMPLES = 20000  # a cap beside the pruning by age (one sample a cycle)
PRESSURE_LOG_PERIOD = 600.0  # seconds between two log lines of compactions under pressure


class Compaction:
    """The history's compaction.

    Args:
        client: an :class:`~appliance.adapters.etcd.client.EtcdClient` on the local member.
        retention: COMPACTION_RETENTION (seconds). quota: the space quota (bytes).
        snapshot_running: whether a snapshot is being taken now. metrics: the agent's. clock: epoch seconds.
        long_client: a client whose timeout covers a physical compaction of a full quota (the NOSPACE compaction
            waits for the pages to be freed, so that the defragmentations after it give them back); None: ``client``.
    """

    def __init__(self, client, retention: float, quota: int, snapshot_running: Callable[[], bool],
                 metrics: AgentMetrics, clock: Callable[[], float] = time.time, long_client=None):
        self.client, self.retention, self.quota = client, retention, quota
        self.long_client = long_client or client
        self.in_use_floor: int | None = None  # the lowest data in use seen since the last compaction (bytes)
        self.snapshot_running, self.metrics, self.clock = snapshot_running, metrics, clock
        self.samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=MAX_SAMPLES)
        self.done: CompactionRecord | None = None  # what this agent compacted, recorded or not
        self.unrecorded = False
        self.pressing = False  # the space pressed at the last decision
        self.near = False  # data in use at PRESSURE_RATIO of the quota or more: the leader cycles at the busy pace
        self.pressure_said_at = -PRESSURE_LOG_PERIOD  # when a compaction under pressure was last logged (clock)
        self.reason = ReasonLog(log, "compaction")

    def last(self, m: Maintenance | None) -> CompactionRecord | None:
        """The newest compaction known: recorded in etcd, or done by this agent."""
        recorded = m.compaction if m is not None else None
        if recorded is not None and m is not None:
            # A record ahead of the cluster's revision or of the clock (a hand-written key, a clock far ahead) would
            # stop compaction for good: it is not believed.
            revisions = [x.revision for x in m.members if x.revision]
            if (revisions and recorded.revision > max(revisions)) or recorded.time > self.clock() + 300:
                recorded = None
        candidates = [r for r in (recorded, self.done) if r is not None]
        return max(candidates, key=lambda r: (r.revision, r.time)) if candidates else None

    def sample(self, m: Maintenance | None, member_id: int | None) -> None:
        """Every serving cycle, on every member: remember this member's revision now (a new leader has its own
        history of revisions to count the retention from)."""
        mine = m.member(member_id) if m is not None else None
        if mine is None or not mine.revision:
            return
        now = self.clock()
        self.samples.append((now, mine.revision))
        # Keep the newest sample older than the retention and everything after it.
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.retention:
            self.samples.popleft()

    def tick(self, m: Maintenance, member_id: int | None, leads: bool,
             nospace_since: float | None = None) -> compaction.CompactionDecision:
        """On the leader holding the housekeeping lease: compact if the rule says so; returns the decision.
        ``nospace_since``: when the raised NOSPACE alarm was first seen (epoch seconds), None when none is."""
        self.flush(m)
        last = self.last(m)
        mine = m.member(member_id)
        in_use = [x.db_size_in_use for x in m.members if x.db_size_in_use is not None]
        now_in_use = max(in_use) if in_use else None
        if now_in_use is not None:
            self.in_use_floor = now_in_use if self.in_use_floor is None else min(self.in_use_floor, now_in_use)
        decision = compaction.decide(compaction.CompactionFacts(
            now=self.clock(), leads=leads, revision=mine.revision if mine is not None else None,
            compacted=last.revision if last else 0, compacted_at=last.time if last else 0.0,
            samples=tuple(self.samples), retention=self.retention, quota=self.quota,
            in_use=now_in_use, nospace_since=nospace_since, snapshot_running=self.snapshot_running(),
            in_use_floor=self.in_use_floor))
        was_pressing = self.pressing
        self.pressing = compaction.pressing(now_in_use, self.quota, self.in_use_floor)
        self.near = compaction.pressing(now_in_use, self.quota)
        # Under a heavy writer the space presses again and again: those compactions are counted in the metrics and
        # logged once per PRESSURE_LOG_PERIOD, so that months of churn do not fill the log. A NOSPACE compaction is
        # rare and an operator looks for it: always logged, even when the space pressed the cycle before.
        loud = decision.revision is not None and (nospace_since is not None or not (was_pressing and self.pressing))
        if loud and self.pressing and nospace_since is None:
            loud = self.clock() - self.pressure_said_at >= PRESSURE_LOG_PERIOD
            self.pressure_said_at = self.clock() if loud else self.pressure_said_at
        self.reason.say(decision.reason, loud=loud)
        if decision.revision is not None:
            kind = "nospace" if nospace_since is not None else "pressure" if self.pressing else "retention"
            if self._compact(decision.revision, kind):
                self.in_use_floor = None  # the live data is measured again from here
        return decision

    def _compact(self, revision: int, kind: str) -> bool:
        """Compact; True if the history is gone up to ``revision`` (done now, or by another before)."""
        try:
            if kind == "nospace":
                # Physical: the answer waits until this member freed the pages, so that the defragmentations
                # that follow give them back.
                self.long_client.compact(revision, physical=True)
            else:
                # Not physical: the answer comes once raft applied it; bbolt frees the pages in the background.
                self.client.compact(revision, physical=False)
        except EtcdError as exc:
            if "compacted" not in exc.message:
                self.metrics.compactions.labels(reason=kind, outcome="failed").inc()
                log.warning("compaction: compacting to revision %d failed: %s", revision, exc)
                return False
            # Another compaction reached it first: the history is gone all the same.
        except EtcdFailure as exc:
            self.metrics.compactions.labels(reason=kind, outcome="failed").inc()
            log.warning("compaction: compacting to revision %d failed: %s", revision, exc)
            return False
        self.metrics.compactions.labels(reason=kind, outcome="ok").inc()
        self.done = CompactionRecord(revision, self.clock())
        self.unrecorded = True
        self.flush(None)
        return True

    def flush(self, m: Maintenance | None) -> None:
        """Record this agent's last compaction in etcd if it is not yet (refused under NOSPACE): each cycle, leading
        or not, so that a leader that lost leadership before it could record leaves the fact behind; never over a
        newer record."""
        if not self.unrecorded or self.done is None:
            return
        if m is not None and m.compaction is not None and m.compaction.revision >= self.done.revision:
            self.unrecorded = False
            return
        try:
            self.client.put(COMPACTION_KEY, self.done.to_json())
            self.unrecorded = False
        except EtcdFailure:
            pass
