"""The agent's observer: one cycle's facts gathered into an :class:`~appliance.model.observation.Observation`.

Observing only reads (docs/design.md, "The control loop"): the data directory, the local etcd
process, the instance's lifecycle, the AWS listing (at the pace of :mod:`.components.listing`), the
cluster as any member answers, and only where a decision needs them the other agents' status,
the S3 marker, the upgrade lock, the other regions' security groups, the members' health and the
cluster's mode. What the observer remembers between cycles (the members' URLs, the listing, the
quorum-loss timer) is its own bookkeeping, not a change to the world.
"""

from __future__ import annotations

import logging
from typing import Callable

import requests

from appliance.adapters.aws import security_groups
from appliance.adapters.aws.s3 import StoreError
from appliance.adapters.etcd import restore_requests
from appliance.adapters.etcd.auth import read_mode
from appliance.adapters.etcd.data_dir import read_local_data
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.adapters.etcd.locks import holder
from appliance.adapters.status_endpoint import fetch_status
from appliance.agent import maintenance_view
from appliance.agent.components.listing import ListingCadence
from appliance.agent.components.quorum import QuorumTimer
from appliance.agent.components.upgrade_lock import UpgradeLockWatch
from appliance.model import versions
from appliance.model.errors import ConfigError
from appliance.model.instances import TERMINATING_STATES, Listing
from appliance.model.keys import UPGRADE_KEY
from appliance.model.maintenance import Maintenance
from appliance.model.members import ClusterView, Member, MemberHealth
from appliance.model.modes import Mode
from appliance.model.observation import MalformedStatus, Marker, Observation, PeerStatus, peer_status
from appliance.model.settings import AgentSettings
from appliance.model.tls import scheme
from appliance.rules import peer_access

log = logging.getLogger("agent")

PROBE_TIMEOUT = 1.0  # seconds for probing peers' agents and members while bootstrapping


class Observer:
    """Gathers one cycle's :class:`Observation`.

    Args:
        settings: the agent's. identity: this instance (:class:`~appliance.adapters.aws.metadata.Identity`).
        address: where peers, clients and the records reach this member (ADVERTISE_ADDRESS).
        urls: this member's :class:`~appliance.adapters.etcd.process.EtcdUrls`. binary_version: e.g. (3, 5, 1).
        etcd: the local :class:`~appliance.adapters.etcd.process.EtcdProcess`. metadata: for the target
            lifecycle state. cadence, quorum, upgrade_lock: the components whose state the observer reads.
        clients: factory ``clients(kind)`` of :class:`~appliance.adapters.etcd.client.EtcdClient` for
            "probe", "anonymous", "serving" and "local" (see :func:`appliance.agent.start.build`).
        voting_client: a client on a cluster's voting members. store: S3 marker (None without).
        security_groups: the regions' groups before seeding or joining (None in one region).
        seed_announced: whether this agent's intent to seed is published. http: a requests session.
    """

    def __init__(self, settings: AgentSettings, identity, address: str, urls, binary_version: tuple[int, int, int],
                 etcd, metadata, cadence: ListingCadence, quorum: QuorumTimer, upgrade_lock: UpgradeLockWatch,
                 clients: Callable[[str], object], voting_client: Callable[[ClusterView | None], object],
                 store=None, security_groups=None, seed_announced: Callable[[], bool] = lambda: False,
                 http: requests.Session | None = None):
        self.settings, self.me, self.address, self.urls = settings, identity, address, urls
        self.binary_version = binary_version
        self.etcd, self.metadata = etcd, metadata
        self.cadence, self.quorum, self.upgrade_lock = cadence, quorum, upgrade_lock
        self.probe, self.anonymous = clients("probe"), clients("anonymous")
        self.serving, self.local = clients("serving"), clients("local")
        self.voting_client = voting_client
        self.store, self.security_groups = store, security_groups
        self.seed_announced = seed_announced
        self.http = http or requests.Session()
        self.tls = settings.client_tls
        self.known_client_urls: list[str] = []
        self.last_members: tuple[Member, ...] = ()
        self.leading = False  # the member led at the last look (the listing's pace follows it)
        self.own_access_open = security_groups is None
        self.bad_status: dict[str, str] = {}  # host -> the last problem warned of in its agent's status

    def observe(self) -> Observation:
        """One cycle's facts; nothing outside this process changes."""
        self.etcd.reap()
        running = self.etcd.running
        local = read_local_data(self.settings.data_dir)
        listing = self.cadence.observe(running, self.leading, self.quorum.lost, [m.name for m in self.last_members])
        cluster, is_leader = self._cluster(running, listing)
        self.leading = is_leader
        lost_for = self.quorum.observe(running, cluster is not None and cluster.leader_id is not None)
        revision = self._revision() if lost_for is not None else None
        seeding = not running and not local.has_data and cluster is None
        peers = {}
        if (seeding or lost_for is not None) and listing is not None and listing.complete:
            peers = self._peers(listing)
        marker, marker_problem = self._marker(listing, peers) if seeding else (Marker.OFF, "")
        lock_holder, local_healthy = self._upgrade_lock(running, local.has_data, cluster, is_leader)
        access_problem, missing = ("", ()) if running or local.has_data else self._own_access()
        unaware = () if running or local.has_data or cluster is None else self._unaware_members(cluster)
        serving_leader = is_leader and lost_for is None and cluster is not None
        return Observation(
            instance_id=self.me.instance_id, peer_url=self.urls.peer, local=local,
            etcd_running=running, may_start=self.etcd.may_start(), terminating=self._terminating(listing),
            listing=listing, cluster=cluster, is_leader=is_leader, peers=peers,
            # Published by the previous cycle's act, so before this cycle asked the peers.
            seed_announced=self.seed_announced(), binary_version=self.binary_version,
            upgrade_lock_holder=lock_holder, local_healthy=local_healthy, peer_access_problem=access_problem,
            missing_access=missing, unaware_members=unaware, marker=marker, marker_problem=marker_problem,
            quorum_lost_for=lost_for, revision=revision, quorum_recovery=self.settings.quorum_recovery,
            quorum_loss_wait=self.settings.quorum_loss_wait,
            restore_request=restore_requests.read_request(self.settings.data_dir),
            member_health=self._health(cluster) if serving_leader else (),
            mode=self._mode() if serving_leader else None,
            maintenance=self._maintenance(cluster, local.member_id, serving_leader)
            if running and lost_for is None and cluster is not None and cluster.leader_id is not None else None)

    # --- this instance --------------------------------------------------------
    def terminated_by_metadata(self) -> bool:
        """The metadata's target lifecycle state is Terminated (unknown is not: never leave on a hiccup)."""
        try:
            return self.metadata.target_lifecycle_state() == "Terminated"
        except requests.RequestException:
            return False

    def _terminating(self, listing: Listing | None) -> bool:
        if self.terminated_by_metadata():
            return True
        if self.cadence.own_state in TERMINATING_STATES:
            return True
        mine = listing.get(self.me.instance_id) if listing is not None else None
        return mine is not None and mine.terminating

    def _revision(self) -> int | None:
        """This member's store revision while quorum is lost: it decides which survivor recovers. Read
        without credentials: authenticating goes through raft, which a member without quorum cannot do,
        while Maintenance Status needs no user (etcd's auth gates only the admin maintenance calls)."""
        try:
            return self.anonymous.status(self.urls.local_client).revision or None
        except EtcdFailure:
            return None

    # --- the cluster ------------------------------------------------------------
    def _candidate_endpoints(self, running: bool, listing: Listing | None) -> list[str]:
        endpoints = [self.urls.local_client] if running else []
        endpoints += self.known_client_urls
        if listing is not None:
            endpoints += [f"{scheme(self.tls)}://{i.address}:{self.settings.client_port}" for i in listing.instances
                          if i.address and i.instance_id != self.me.instance_id and not i.terminating]
        return list(dict.fromkeys(e for e in endpoints if running or e not in (self.urls.client,
                                                                               self.urls.local_client)))

    def _cluster(self, running: bool, listing: Listing | None) -> tuple[ClusterView | None, bool]:
        """The cluster as the first member with a leader answers it (else as the first that answered), and
        whether this member is its leader."""
        probe = self.serving if running else self.probe
        leaderless = None
        for endpoint in self._candidate_endpoints(running, listing):
            try:
                answer = probe.member_list(endpoint)
                leader = probe.status(endpoint).leader_id or None
            except EtcdFailure:
                continue
            if leader is None:
                # A member cut off from its quorum still answers; another may see a leader (after a
                # recovery, say): asking on costs a probe per listed instance, only while this lasts.
                leaderless = leaderless or ClusterView(answer.cluster_id, answer.members, None)
                continue
            self.last_members = answer.members
            self.known_client_urls = [u for m in answer.members for u in m.client_urls[:1]]
            mine = next((m for m in answer.members if m.name == self.me.instance_id), None)
            version = None
            if not running:  # only a joiner compares its binary with the cluster version
                try:
                    version = versions.parse(probe.version(endpoint)[1])
                except EtcdFailure:
                    pass
            return ClusterView(answer.cluster_id, answer.members, leader, version), \
                running and mine is not None and leader == mine.id
        return leaderless, False

    def _health(self, cluster: ClusterView) -> tuple[MemberHealth, ...]:
        return tuple(MemberHealth(m, bool(m.client_urls) and self.local.healthy(m.client_urls[0]))
                     for m in cluster.members)

    def _maintenance(self, cluster: ClusterView, member_id: int | None, leader: bool) -> Maintenance:
        own = cluster.by_id(member_id) or cluster.by_name_or_peer(self.me.instance_id, self.urls.peer)
        return maintenance_view.read(self.local, cluster, own, leader)

    def _mode(self) -> tuple[Mode, int] | None:
        """On the leader of a cluster linked by the mirror: (mode, revision of its record), None if unknown."""
        if not self.settings.mirror_prefix:
            return None
        try:
            return read_mode(self.local)
        except (EtcdFailure, ConfigError) as exc:
            log.warning("cannot read this cluster's mode: %s", exc)
            return None

    def _upgrade_lock(self, running: bool, has_data: bool, cluster: ClusterView | None,
                      is_leader: bool) -> tuple[str | None, bool]:
        """(upgrade lock holder, local member healthy), read only where a decision needs them: a joiner
        (whether it may join), the leader (removals and records wait while it is held), and an agent that
        may hold it (to release it)."""
        joining = not running and not has_data and cluster is not None
        if cluster is None or not (joining or (running and (self.upgrade_lock.watching or is_leader))):
            return None, False
        client = self.voting_client(cluster) if joining else self.local
        try:
            current = holder(client, UPGRADE_KEY)
        except EtcdFailure as exc:
            return f"unknown ({exc})", False  # an unreadable lock counts as held
        self.upgrade_lock.seen(running, current, self.me.instance_id)
        return current, current == self.me.instance_id and self.local.healthy(self.urls.local_client)

    # --- the other agents -------------------------------------------------------------
    def _peer(self, name: str, host: str) -> PeerStatus | None:
        """What the agent on ``host`` (of the instance or member ``name``) says, None if it does not answer
        or answers something that is not a status document (then once per problem: a warning)."""
        try:
            body = fetch_status(host, self.settings.status_port, PROBE_TIMEOUT,
                                self.tls.ca_file if self.tls else None, self.http)
            status = None if body is None else peer_status(name, body)
        except MalformedStatus as exc:
            if self.bad_status.get(host) != str(exc):
                if len(self.bad_status) >= 256:  # hosts come and go with instances: forget the oldest
                    self.bad_status.pop(next(iter(self.bad_status)))
                self.bad_status[host] = str(exc)
                log.warning("the agent of %s at %s answered its status with something else (%s): counted as "
                            "not answering", name or "?", host, exc)
            return None
        if status is not None:
            self.bad_status.pop(host, None)  # understood again: the next problem is said anew
        return status

    def _peers(self, listing: Listing) -> dict[str, PeerStatus | None]:
        return {inst.instance_id: self._peer(inst.instance_id, inst.address) for inst in listing.in_service()
                if inst.instance_id != self.me.instance_id and inst.address}

    def _unaware_members(self, cluster: ClusterView) -> tuple[str, ...]:
        """For a joiner across regions: the members whose agents answer with ACTIVE_REGIONS that leave
        out this instance's region (those that do not answer, or answer something that is not a status,
        are not counted: a dead member's agent never answers, and its removal must not wait for it)."""
        if not self.settings.active_regions:
            return ()
        unaware = []
        for member in cluster.members:
            for host in sorted(member.peer_hosts):
                status = self._peer(member.name or member.hex_id, host)
                if status is not None and self.me.region not in status.regions:
                    unaware.append(member.name or member.hex_id)
        return tuple(unaware)

    def _marker(self, listing: Listing | None, peers: dict[str, PeerStatus | None]) -> tuple[Marker, str]:
        """The cluster's marker, read only when this instance may be the seeder (the lowest InService
        instance id, every other agent answering without data): one S3 read a cycle then. Otherwise
        it is UNKNOWN, never OFF: with a bucket, nothing may seed without having read it."""
        if self.store is None:
            return Marker.OFF, ""
        if listing is None or not listing.complete or any(
                p is None or p.running or p.has_data for p in peers.values()) or \
                min((i.instance_id for i in listing.in_service()), default="") != self.me.instance_id:
            return Marker.UNKNOWN, "not read: this instance may not seed now"
        try:
            return (Marker.PRESENT if self.store.read_marker() is not None else Marker.ABSENT), ""
        except StoreError as exc:
            return Marker.UNKNOWN, str(exc)

    def _own_access(self) -> tuple[str, tuple]:
        """Before seeding or joining, across regions: (why the groups could not be read, the rules the
        other regions' groups still lack for this instance). Read each cycle until none is missing."""
        if self.own_access_open:
            return "", ()
        try:
            missing = peer_access.missing_for(self.security_groups.observe(), self.me.region, self.address,
                                              self.settings.advertise_public)
        except security_groups.ERRORS as exc:
            return str(exc), ()
        self.own_access_open = not missing
        return "", missing
