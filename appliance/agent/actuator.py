"""Carrying out the decision for this instance (:func:`appliance.rules.lifecycle.decide`): seed, join, rejoin,
promote, mark or set aside the data, open this instance's rules in the other regions' security groups, take or
release the upgrade lock, recover, or leave.

etcd refuses reconfiguration while it is not ready ("unhealthy cluster", a learner not caught up,
"too many learner members"): such a refusal is logged once, and the next cycle decides again.
"""

from __future__ import annotations

import logging
from typing import Callable

from appliance.adapters.aws import security_groups
from appliance.adapters.etcd import locks, membership
from appliance.adapters.etcd.data_dir import set_aside, write_marker
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.adapters.etcd.process import EtcdProcess, EtcdUrls, etcd_command
from appliance.adapters.etcd.restore_requests import finish
from appliance.agent.components.quorum import QuorumTimer
from appliance.agent.components.reasons import ReasonLog
from appliance.agent.components.recovery import Recovery
from appliance.agent.components.tokens import TokenCheck
from appliance.agent.components.upgrade_lock import UpgradeLockWatch
from appliance.agent.status import StatusDocument
from appliance.model.decisions import Action, Decision
from appliance.model.keys import UPGRADE_KEY
from appliance.model.members import ClusterView
from appliance.model.observation import Observation
from appliance.model.settings import AgentSettings

log = logging.getLogger("agent")


class EtcdStarter:
    """Starts the local etcd (see :func:`~appliance.adapters.etcd.process.etcd_command`), saying so on the
    status endpoint first: no peer may read "not running" while it starts. Every start (seeding, joining,
    rejoining, the recoveries) goes through here, so etcd always gets the settings' quota and
    ``etcd_environment``."""

    def __init__(self, settings: AgentSettings, instance_id: str, urls: EtcdUrls, etcd: EtcdProcess,
                 status: StatusDocument):
        self.settings, self.me, self.urls, self.etcd, self.status = settings, instance_id, urls, etcd, status

    def __call__(self, initial_cluster: dict[str, str] | None, state: str, token: str | None = None,
                 force_new_cluster: bool = False) -> None:
        self.status.update(running=True)
        self.etcd.start(etcd_command(self.settings.etcd_binary, self.me, self.settings.data_dir, self.urls,
                                     initial_cluster, state, token or self.settings.cluster_name, force_new_cluster,
                                     self.settings.client_tls, self.settings.peer_tls,
                                     self.settings.quota_backend_bytes),
                        environment=self.settings.etcd_environment)


class Actuator:
    """Acts for one instance.

    Args:
        settings: the agent's. instance_id: this instance. urls: its member's URLs. etcd: its process.
        start: starts etcd (an :class:`EtcdStarter`).
        voting_client: a client on a cluster's voting members (``voting_client(cluster)``).
        local_client: a client on the local member. recovery, quorum, upgrade_lock, tokens: the
            components the actions change. status: the status document (``running``, ``seeding``).
        security_groups: the regions' groups (OPEN_PEER_ACCESS), None in one region.
    """

    def __init__(self, settings: AgentSettings, instance_id: str, urls: EtcdUrls, etcd: EtcdProcess,
                 start: Callable[..., None], voting_client: Callable[[ClusterView | None], object], local_client,
                 recovery: Recovery, quorum: QuorumTimer, upgrade_lock: UpgradeLockWatch, tokens: TokenCheck,
                 status: StatusDocument, security_groups=None):
        self.settings, self.me, self.urls, self.etcd, self.start = settings, instance_id, urls, etcd, start
        self.voting_client, self.local = voting_client, local_client
        self.recovery, self.quorum, self.upgrade_lock, self.tokens = recovery, quorum, upgrade_lock, tokens
        self.status, self.security_groups = status, security_groups
        self.failure = ReasonLog(log)  # one line per new refusal, not one a second

    def act(self, decision: Decision, s: Observation) -> bool:
        """Carry out ``decision``; True when the agent should exit (it left the cluster)."""
        announce = decision.action in (Action.ANNOUNCE_SEED, Action.SEED)
        if announce != self.status.seeding:  # withdrawn as soon as the facts no longer allow seeding
            self.status.update(seeding=announce)
        try:
            if decision.action is Action.LEAVE:
                self.leave(s)
                return True
            self._act(decision, s)
        except (EtcdFailure, *security_groups.ERRORS) as exc:
            if not isinstance(exc, EtcdFailure) and decision.action is not Action.OPEN_PEER_ACCESS:
                raise  # an AWS error elsewhere is not a refusal to wait out: a failed cycle, with its traceback
            # etcd refuses while not ready, EC2 may throttle a rule change: the next cycle decides again.
            self.failure.say(f"{decision.action.value} not done yet: {exc}")
            return False
        self.failure.clear()
        return False

    def _act(self, decision: Decision, s: Observation) -> None:
        action = decision.action
        if action is Action.SEED:
            # A token unique to this seeding, so a later cluster of the same name (same
            # IPs, even) never gets the same cluster id as this one.
            self.start({self.me: self.urls.peer}, "new", token=f"{self.settings.cluster_name}-{self.me}")
        elif action is Action.JOIN:
            new, initial = membership.add_learner(self.voting_client(s.cluster), self.me, self.urls.peer)
            log.info("added as learner member %s through the cluster", new.hex_id)
            write_marker(self.settings.data_dir, new.id, s.cluster.cluster_id if s.cluster else None)
            self.start(initial, "existing")
        elif action is Action.REJOIN:
            self.start(None, "existing")
        elif action is Action.REMOVE_STALE:
            self.voting_client(s.cluster).member_remove(decision.member_id)
            log.info("removed stale member %x", decision.member_id)
            self._set_aside()
        elif action is Action.SET_ASIDE:
            self.etcd.stop()  # it may run with the data of a removed member
            self._set_aside()
        elif action is Action.MARK_DATA:
            write_marker(self.settings.data_dir, decision.member_id, s.cluster.cluster_id if s.cluster else None)
            log.info("recorded member %x as the owner of the data in %s", decision.member_id, self.settings.data_dir)
        elif action is Action.OPEN_PEER_ACCESS:
            for change in s.missing_access:
                self.security_groups.apply(change)
                log.info("peer access: %s (this instance, before it seeds or joins)", change)
        elif action is Action.RESTORE_SNAPSHOT:
            self.recovery.restore_snapshot(decision, s)
        elif action is Action.FORCE_NEW_CLUSTER:
            self.recovery.force_new_cluster(s)
            self.quorum.reset()
        elif action is Action.REFUSE_RESTORE:
            finish(self.settings.data_dir, False, decision.reason)
        elif action is Action.PROMOTE:
            self.voting_client(s.cluster).member_promote(decision.member_id)
            log.info("promoted member %x to a voting member", decision.member_id)
            self.tokens.tick()  # at once: clients reach it from now on
        elif action is Action.TAKE_UPGRADE_LOCK:
            self.upgrade_lock.taken()
            now_held_by = locks.take(self.voting_client(s.cluster), UPGRADE_KEY, self.me,
                                     self.settings.upgrade_lock_ttl)
            log.info("upgrade lock: %s", "taken" if now_held_by == self.me
                     else f"held by {now_held_by or 'nobody (try again)'}")
        elif action is Action.RELEASE_UPGRADE_LOCK:
            released = locks.release(self.local, UPGRADE_KEY, self.me)
            self.upgrade_lock.released()
            log.info("upgrade lock %s", "released" if released else "was no longer ours (expired)")

    def _set_aside(self) -> None:
        moved = set_aside(self.settings.data_dir)
        if moved:
            log.info("moved the old data directory to %s", moved)

    def leave(self, s: Observation) -> None:
        """MemberRemove this instance's member (moving leadership away first), free the upgrade lock if it
        may hold it, then stop etcd.

        If etcd refuses (e.g. removal would break quorum), the member stays and the leader's
        housekeeping removes it once that is safe.
        """
        cluster = s.cluster
        mine = None
        if cluster is not None:
            mine = cluster.by_id(s.local.member_id) or cluster.by_name_or_peer(self.me, self.urls.peer)
        if mine is not None and s.etcd_running:
            membership.leave(cluster, mine, self.urls.client, self.settings.request_timeout,
                             credentials=self.local.credentials, tls=self.settings.client_tls)
        if self.upgrade_lock.watching and cluster is not None:
            try:  # an instance taken out mid-upgrade frees the lock now, not after its TTL
                if locks.release(self.voting_client(cluster), UPGRADE_KEY, self.me):
                    log.info("released the upgrade lock on leaving")
            except EtcdFailure as exc:
                log.warning("could not release the upgrade lock (%s); it expires by itself", exc)
        self.etcd.stop()
