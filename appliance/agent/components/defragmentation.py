"""The leader's defragmentation of members, one at a time, by :mod:`appliance.rules.defragmentation`.

A defragmentation runs in a thread of its own (it takes about a second per 100 MB and blocks that
member meanwhile), so that the leader's cycle goes on; the rule waits for it, and then for every
member to answer with a leader again, before the next. Each is logged when it starts and ends,
with its reason, the file size before and after and its duration, and recorded in etcd under
:data:`~appliance.model.keys.DEFRAG_PREFIX` (one key per member, deleted once the member is gone)
so that every agent shows its member's last one and the next leader knows it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Callable

from appliance.adapters.etcd import maintenance
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.reasons import ReasonLog
from appliance.model.keys import DEFRAG_PREFIX, DEFRAG_RUNNING_KEY
from appliance.model.maintenance import DefragRecord, Maintenance, MemberSpace
from appliance.model.members import ClusterView
from appliance.rules import defragmentation

log = logging.getLogger("agent")

FORCED_RETRY = 30.0  # seconds before a NOSPACE recovery tries a failed defragmentation again


@dataclasses.dataclass
class _Run:
    member: MemberSpace
    endpoint: str
    reason: str
    started: float
    thread: threading.Thread
    error: str = ""
    lease: int = 0  # the lease of DEFRAG_RUNNING_KEY (0: none could be granted, e.g. under NOSPACE)
    seconds: float = 0.0  # how long it took, and the file size after (bytes): set by the thread when it ends
    after: int = 0


class Defragmentation:
    """Defragmenting members.

    Args:
        client: a client on the local member (records, MoveLeader, sizes after).
        long_client: a client whose timeout covers a defragmentation (seconds: see :func:`timeout_for`).
        quota: the space quota (bytes). metrics: the agent's. clock: epoch seconds.
    """

    def __init__(self, client, long_client, quota: int, metrics: AgentMetrics,
                 clock: Callable[[], float] = time.time):
        self.client, self.long_client, self.quota, self.metrics, self.clock = client, long_client, quota, metrics, clock
        self.run: _Run | None = None
        self.done: dict[int, DefragRecord] = {}        # this agent's, recorded or not
        self.unrecorded: dict[int, DefragRecord] = {}  # refused under NOSPACE: written when etcd takes writes
        self.failed: dict[int, float] = {}  # member id -> when its last defragmentation failed (epoch seconds)
        self.reason = ReasonLog(log, "defragmentation")

    def last(self, m: Maintenance | None) -> dict[int, float]:
        """Member id -> epoch seconds of its last defragmentation: recorded in etcd, or run by this agent."""
        now = self.clock()
        # A record from the future (a clock far ahead, or a hand-written key) would hold a member back for ever.
        recorded = {k: r.time for k, r in (m.defragmented if m is not None else {}).items() if r.time <= now + 300}
        for member_id, record in self.done.items():
            recorded[member_id] = max(record.time, recorded.get(member_id, 0.0))
        return recorded

    def tick(self, m: Maintenance, cluster: ClusterView, leads: bool, upgrade_lock_holder: str | None,
             forced: frozenset[int] = frozenset()) -> defragmentation.DefragDecision:
        """On the leader holding the housekeeping lease: finish a run that ended, start the next or move
        leadership as the rule says; returns the decision."""
        self.collect()
        self.flush(m)
        self._forget_gone(m, cluster, leads)
        now = self.clock()
        # A member whose defragmentation failed is tried again after MIN_INTERVAL, or FORCED_RETRY under NOSPACE.
        done = self.last(m)
        last = {**done, **{k: t for k, t in self.failed.items() if t > done.get(k, 0.0)}}
        forced = frozenset(k for k in forced if now - self.failed.get(k, -FORCED_RETRY) >= FORCED_RETRY)
        # Another agent's run (a leader that lost leadership meanwhile) counts as running until its lease ends.
        running = self.run.member.member_id if self.run is not None else m.defragmenting
        decision = defragmentation.decide(defragmentation.DefragFacts(
            now=now, leads=leads, upgrade_lock_holder=upgrade_lock_holder, members=m.members,
            quota=self.quota, running=running, forced=forced, last=last))
        # A start is logged by _start (its own line, which the end's line follows).
        self.reason.say(decision.reason, loud=decision.action == "move-leader")
        if decision.action == "defragment" and decision.member is not None:
            member = cluster.by_id(decision.member.member_id)
            if member is not None and member.client_urls:
                self._start(decision.member, member.client_urls[0], decision.reason)
        elif decision.action == "move-leader" and decision.member is not None and decision.target is not None:
            self._move(cluster, decision)
        return decision

    @property
    def running(self) -> bool:
        return self.run is not None

    def _start(self, member: MemberSpace, endpoint: str, reason: str) -> None:
        log.info("defragmenting %s", reason)
        run = _Run(member, endpoint, reason, time.monotonic(), threading.Thread())
        run.lease = self._announce(member)
        run.thread = threading.Thread(target=self._defragment, args=(run,), name="defragmentation", daemon=True)
        self.run = run
        run.thread.start()

    def _defragment(self, run: _Run) -> None:
        """The thread: defragment, then the size after; the end is logged here, when it happens (the loop's
        :meth:`collect` records it at its next cycle)."""
        try:
            maintenance.defragment(self.long_client, run.endpoint)
        except EtcdFailure as exc:
            run.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a thread's failure is reported by collect, in the loop
            run.error = f"{type(exc).__name__}: {exc}"
        run.seconds = time.monotonic() - run.started
        before = run.member.db_size or 0
        if run.error:
            log.warning("defragmentation of %s failed after %.1f s: %s", run.member.shown(), run.seconds, run.error)
            return
        try:
            run.after = self.long_client.status(run.endpoint).db_size
        except Exception:  # noqa: BLE001 - unknown now; the next cycle's observation shows it
            run.after = before
        log.info("defragmented %s in %.1f s: %d -> %d bytes", run.member.shown(), run.seconds, before, run.after)

    def collect(self) -> None:
        """If the defragmentation running ended, log and record it (before the others decide on what is done)."""
        run = self.run
        if run is None or run.thread.is_alive():
            return
        self.run = None
        if run.lease:
            try:
                self.client.lease_revoke(run.lease)  # deletes DEFRAG_RUNNING_KEY with it
            except EtcdFailure:
                pass  # it expires by itself
        seconds, before, after = run.seconds, run.member.db_size or 0, run.after
        if run.error:
            self.failed[run.member.member_id] = self.clock()
            self.metrics.defragmentations.labels(outcome="failed").inc()
            return
        record = DefragRecord(self.clock(), before, after, seconds)
        self.done[run.member.member_id] = record
        self.unrecorded[run.member.member_id] = record
        self.metrics.defragmentations.labels(outcome="ok").inc()
        self.metrics.defragmentation_seconds.set(seconds)
        self.metrics.defragmentation_freed.inc(max(0, before - after))

    def _announce(self, member: MemberSpace) -> int:
        """Say in etcd which member is being defragmented, bound to a lease as long as the run may take, so that
        a next leader waits for it instead of blocking a second member; the lease id, 0 if etcd refused."""
        try:
            lease = self.client.lease_grant(int(timeout_for(self.quota)) + 10)
        except EtcdFailure:
            return 0
        try:
            self.client.put(DEFRAG_RUNNING_KEY, member.hex_id, lease)
            return lease
        except EtcdFailure:
            try:
                self.client.lease_revoke(lease)
            except EtcdFailure:
                pass  # it expires by itself
            return 0

    def _move(self, cluster: ClusterView, decision: defragmentation.DefragDecision) -> None:
        leader = cluster.by_id(decision.member.member_id)
        if leader is None or not leader.client_urls:
            return
        try:
            self.client.move_leader(leader.client_urls[0], decision.target.member_id)
        except EtcdFailure as exc:
            log.warning("defragmentation: moving leadership to %s failed: %s", decision.target.shown(), exc)
            return
        self.metrics.leadership_moves.labels(reason="defragmentation").inc()
        log.info("defragmentation: moved leadership to %s", decision.target.shown())

    def flush(self, m: Maintenance) -> None:
        """Write the records not yet written (refused under NOSPACE), each cycle, leading or not, never over a newer
        record."""
        for member_id, record in list(self.unrecorded.items()):
            newer = m.defragmented.get(member_id)
            if newer is None or newer.time < record.time:
                try:
                    self.client.put(f"{DEFRAG_PREFIX}{member_id:x}", record.to_json())
                except EtcdFailure:
                    return
            del self.unrecorded[member_id]

    def _forget_gone(self, m: Maintenance, cluster: ClusterView, leads: bool) -> None:
        """Delete the records of members the cluster no longer lists (a member replaced every few months leaves no
        key behind for years)."""
        if not leads:
            return
        for member_id in set(m.defragmented) - {x.id for x in cluster.members}:
            try:
                self.client.delete(f"{DEFRAG_PREFIX}{member_id:x}")
            except EtcdFailure:
                return
            self.done.pop(member_id, None)


def timeout_for(quota: int) -> float:
    """Seconds a defragmentation may take: a file at the quota rewritten at 10 MB/s (a slow disk), at least a
    minute."""
    return max(60.0, quota / 10e6)
