"""The leader's corruption check: every ``CORRUPTION_CHECK_INTERVAL`` seconds it asks every member for its
key-value hash at one revision (in a thread: hashing a large store takes seconds), judges the answers by
:mod:`appliance.rules.corruption`, and removes the member whose data differs from the majority's. That
member's agent then sees its data belong to a member the cluster no longer lists, sets it aside (never
deletes it) and rejoins as a learner (:mod:`appliance.rules.serving`). A CORRUPT alarm that names a member
the cluster no longer lists is disarmed.

Two rounds must agree before anything is done: the same member odd at two different revisions (HashKV has
had false alarms in etcd's history). A round is judged with the members' health of the cycle that judges it,
and thrown away if the membership changed meanwhile or this agent stopped leading. Nothing is removed while
the upgrade lock is held.
"""

from __future__ import annotations

import dataclasses
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

CONFIRM_AFTER = 10.0  # seconds (at most) before the round that confirms an odd hash


@dataclasses.dataclass
class _Round:
    """One comparison: asked at ``revision`` of the members ``member_ids``; ``answers`` filled by its thread."""

    revision: int
    member_ids: frozenset[int]
    thread: threading.Thread | None = None
    answers: tuple[KvHash, ...] = ()


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
        self.round: _Round | None = None
        self.suspect: tuple[int, int] | None = None  # (member id, the revision at which its hash differed)
        self.reason = ReasonLog(log, "corruption check")
        self.alert = ReasonLog(log, "corruption check")  # warnings, once per verdict and member

    def tick(self, m: Maintenance, cluster: ClusterView, leads: bool, compacted: int,
             upgrade_lock_holder: str | None = None) -> str:
        """On the leader holding the housekeeping lease: start a round when due, judge one that ended; returns
        the reason of the last verdict. ``leads`` False forgets any round (a new leader starts afresh)."""
        self._disarm_gone(m, cluster, leads)
        if not leads or self.interval <= 0:
            self.round, self.suspect = None, None
            return self.reason.last
        if self.round is not None:
            if self.round.thread is not None and self.round.thread.is_alive():
                return self.reason.last
            done, self.round = self.round, None
            if done.member_ids != frozenset(x.id for x in cluster.members):
                self.reason.say("the membership changed during the round; asking again", loud=False)
                self.next_at = 0.0
            else:
                self._judge(done, m, cluster, upgrade_lock_holder)
            return self.reason.last
        if self.clock() < self.next_at:
            return self.reason.last
        revisions = [x.revision for x in m.members if x.revision]
        if len(revisions) < len(m.members) or not revisions or min(revisions) <= compacted:
            return self.reason.last  # a member did not say its revision, or nothing new since the compaction
        self.next_at = self.clock() + self.interval
        started = _Round(min(revisions), frozenset(x.id for x in cluster.members))
        targets = [(x.id, x.peer_urls[0]) for x in cluster.members if x.peer_urls]
        # The thread fills its own round: one abandoned (leadership lost) cannot write into the next.
        started.thread = threading.Thread(target=self._ask, args=(started, targets), name="corruption-check",
                                          daemon=True)
        self.round = started
        started.thread.start()
        return self.reason.last

    def _ask(self, done: _Round, targets: list[tuple[int, str]]) -> None:
        found = []
        for member_id, peer_url in targets:
            try:
                found.append(maintenance.hash_kv(self.http, peer_url, member_id, done.revision, self.timeout,
                                                 self.peer_tls))
            except EtcdFailure as exc:
                log.debug("corruption check: member %x gave no hash: %s", member_id, exc)
        done.answers = tuple(found)

    def _judge(self, done: _Round, m: Maintenance, cluster: ClusterView, upgrade_lock_holder: str | None) -> None:
        # This cycle's members (their health now), with the round's answers.
        decision = corruption.decide(corruption.CorruptionFacts(True, done.revision, m.members, done.answers))
        self.metrics.corruption_checks.labels(verdict=decision.verdict).inc()
        self.reason.say(decision.reason, loud=False)
        odd = decision.member.member_id if decision.member is not None else None
        if decision.verdict not in ("replace", "move-leader"):
            self.suspect = None
            if decision.verdict in ("consistent", "inconclusive"):
                self.alert.clear()
            elif self.alert.say(f"{decision.verdict}: {decision.reason}".split(" at revision")[0], loud=False):
                # "no-majority" or "wait": warned once while it lasts, not every round.
                log.warning("corruption check: %s", decision.reason)
            return
        if self.suspect is None or self.suspect[0] != odd or self.suspect[1] == done.revision:
            self.suspect = (odd, done.revision)
            self.next_at = min(self.next_at, self.clock() + min(self.interval, CONFIRM_AFTER))
            log.warning("corruption check: %s; checking again at another revision before acting", decision.reason)
            return
        if upgrade_lock_holder is not None:
            self.reason.say(f"{decision.reason}; waiting: the upgrade lock is held ({upgrade_lock_holder})")
            return
        self.suspect = None
        if decision.verdict == "replace":
            try:
                self.client.member_remove(odd)
            except EtcdFailure as exc:
                log.warning("corruption check: removing %s failed: %s", decision.member.shown(), exc)
                return
            self.metrics.corrupt_members_replaced.inc()
            log.warning("corruption check: removed %s, confirmed at two revisions; its agent sets its data aside "
                        "and rejoins as a learner", decision.member.shown())
            return
        leader = cluster.by_id(odd)
        try:
            self.client.move_leader(leader.client_urls[0] if leader else "", decision.target.member_id)
            self.metrics.leadership_moves.labels(reason="corruption").inc()
            log.warning("corruption check: %s", decision.reason)
        except (EtcdFailure, IndexError) as exc:
            log.warning("corruption check: moving leadership to %s failed: %s", decision.target.shown(), exc)

    def _disarm_gone(self, m: Maintenance, cluster: ClusterView, leads: bool) -> None:
        """A CORRUPT alarm of a member that is no longer in the cluster is the past: disarm it, or the cluster
        keeps refusing requests."""
        if not leads:
            return
        listed = {x.id for x in cluster.members}
        for member_id in set(m.alarmed(AlarmKind.CORRUPT)) - listed:
            try:
                maintenance.disarm(self.client, Alarm(member_id, AlarmKind.CORRUPT))
                log.info("corruption check: disarmed the CORRUPT alarm of member %x, which the cluster no longer "
                         "lists", member_id)
            except EtcdFailure as exc:
                log.warning("corruption check: disarming CORRUPT of member %x failed: %s", member_id, exc)
