"""The leader's corruption check: every ``CORRUPTION_CHECK_INTERVAL`` seconds it asks every member for its
key-value hash at one revision (in a thread: hashing a large store takes seconds), judges the answers by
:mod:`appliance.rules.corruption`, and removes the member whose data differs from the majority's. That
member's agent then sees its data belong to a member the cluster no longer lists, sets it aside (never
deletes it) and rejoins as a learner (:mod:`appliance.rules.serving`). A CORRUPT alarm that names a member
the cluster no longer lists is disarmed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import requests

from appliance.adapters.etcd import maintenance
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.reasons import ReasonLog
from appliance.model.maintenance import Alarm, AlarmKind, KvHash, Maintenance
from appliance.model.members import ClusterView
from appliance.model.tls import TlsFiles
from appliance.rules import corruption

log = logging.getLogger("agent")


class CorruptionCheck:
    """The members' hashes compared.

    Args:
        client: a client on the local member (removal, MoveLeader, alarms). interval: seconds between checks
            (0: never). timeout: seconds for each member's HashKV. peer_tls: the peer certificates (None: plain).
        metrics: the agent's. clock: monotonic seconds.
    """

    def __init__(self, client, interval: float, timeout: float, peer_tls: TlsFiles | None, metrics: AgentMetrics,
                 clock: Callable[[], float] = time.monotonic):
        self.client, self.interval, self.timeout, self.peer_tls = client, interval, timeout, peer_tls
        self.metrics, self.clock = metrics, clock
        self.http = requests.Session()
        self.next_at = 0.0
        self.thread: threading.Thread | None = None
        self.answers: tuple[KvHash, ...] | None = None
        self.asked: tuple[int, tuple] = (0, ())  # (revision, the members as they were when asked)
        self.reason = ReasonLog(log, "corruption check")

    def tick(self, m: Maintenance, cluster: ClusterView, leads: bool, compacted: int) -> str:
        """On the leader holding the housekeeping lease: start a round when due, judge one that ended; returns
        the reason of the last verdict."""
        self._disarm_gone(m, cluster, leads)
        if not leads or self.interval <= 0:
            self.answers, self.thread = None, None
            return self.reason.last
        if self.thread is not None:
            if self.thread.is_alive():
                return self.reason.last
            self.thread = None
            self._judge(cluster)
            return self.reason.last
        if self.clock() < self.next_at:
            return self.reason.last
        revisions = [x.revision for x in m.members if x.revision]
        if len(revisions) < len(m.members) or not revisions or min(revisions) <= compacted:
            return self.reason.last  # a member did not say its revision, or nothing new since the compaction
        self.next_at = self.clock() + self.interval
        revision = min(revisions)
        self.asked = (revision, m.members)
        targets = [(x.id, x.peer_urls[0]) for x in cluster.members if x.peer_urls]
        self.thread = threading.Thread(target=self._ask, args=(targets, revision), name="corruption-check",
                                       daemon=True)
        self.thread.start()
        return self.reason.last

    def _ask(self, targets: list[tuple[int, str]], revision: int) -> None:
        found = []
        for member_id, peer_url in targets:
            try:
                found.append(maintenance.hash_kv(self.http, peer_url, member_id, revision, self.timeout,
                                                 self.peer_tls))
            except EtcdFailure as exc:
                log.debug("corruption check: member %x gave no hash: %s", member_id, exc)
        self.answers = tuple(found)

    def _judge(self, cluster: ClusterView) -> None:
        revision, members = self.asked
        decision = corruption.decide(corruption.CorruptionFacts(True, revision, members, self.answers or ()))
        self.metrics.corruption_checks.labels(verdict=decision.verdict).inc()
        if decision.verdict not in ("consistent", "inconclusive"):
            log.warning("corruption check: %s", decision.reason)
        self.reason.say(decision.reason, loud=False)
        if decision.verdict == "replace" and decision.member is not None:
            try:
                self.client.member_remove(decision.member.member_id)
            except EtcdFailure as exc:
                log.warning("corruption check: removing %s failed: %s", decision.member.shown(), exc)
                return
            self.metrics.corrupt_members_replaced.inc()
            log.warning("corruption check: removed %s; its agent sets its data aside and rejoins as a learner",
                        decision.member.shown())
        elif decision.verdict == "move-leader" and decision.member is not None and decision.target is not None:
            leader = cluster.by_id(decision.member.member_id)
            try:
                self.client.move_leader(leader.client_urls[0] if leader else "", decision.target.member_id)
                self.metrics.leadership_moves.labels(reason="corruption").inc()
            except (EtcdFailure, IndexError) as exc:
                log.warning("corruption check: moving leadership to %s failed: %s", decision.target.shown(), exc)
            self.next_at = 0.0  # the next leader checks at once

    def _disarm_gone(self, m: Maintenance, cluster: ClusterView, leads: bool) -> None:
        """A CORRUPT alarm of a member that is no longer in the cluster is the past: disarm it, or the cluster
        keeps refusing requests."""
        if not leads:
            return
        listed = {x.id for x in cluster.members}
        for member_id in m.alarmed(AlarmKind.CORRUPT):
            if member_id in listed:
                continue
            try:
                maintenance.disarm(self.client, Alarm(member_id, AlarmKind.CORRUPT))
                log.info("corruption check: disarmed the CORRUPT alarm of member %x, which the cluster no longer "
                         "lists", member_id)
            except EtcdFailure as exc:
                log.warning("corruption check: disarming CORRUPT of member %x failed: %s", member_id, exc)
