"""The instance agent: observe into a snapshot, decide with a pure function, act and log why.

One cycle (DESIGN.md, "The control loop"):
1. observe: local data and process, the instance's lifecycle, the AWS listing
   (at a bounded rate), the cluster as any member answers, and, only when
   seeding is in question, the other agents' status;
2. decide: :func:`appliance.cluster.bootstrap.decide` (and, on the leader,
   :func:`appliance.cluster.housekeeper.decide`);
3. act on the decision, logging its reason when it changes.
"""

from __future__ import annotations

import collections
import logging
import math
import signal
import threading
import time

import botocore.exceptions
import requests

from appliance.aws.calls import counted_session
from appliance.aws.discovery import CLUSTER_TAG, TERMINATING_STATES, Discovery, Listing
from appliance.aws.dns import HostedZone, RecordPublisher
from appliance.aws.metadata import Identity, MetadataClient
from appliance.aws.security_groups import GroupsUnknown, SecurityGroups
from appliance.aws.snapshots import SnapshotStore, StoreError
from appliance.cluster import bootstrap, housekeeper, locks, membership, peer_access, records, restore
from appliance.cluster.access import MODE_KEY, Mode, credentials_for, read_mode
from appliance.cluster.backup import Backups
from appliance.cluster.heartbeat import Heartbeat
from appliance.cluster.locks import HOUSEKEEPING_KEY, UPGRADE_KEY, LeaseLock, holder
from appliance.cluster.model import Action, AgentSnapshot, ClusterView, Decision, Marker, MemberHealth, PeerStatus
from appliance.config import AgentSettings
from appliance.errors import AwsPermissionError, ConfigError
from appliance.etcd import snapshot as snapshots
from appliance.etcd import tls, versions
from appliance.etcd.client import EtcdClient, EtcdError, EtcdUnavailable, Member
from appliance.etcd.process import (
    EtcdProcess,
    EtcdUrls,
    etcd_command,
    local_address,
    read_local_data,
    set_aside,
    write_marker,
)
from appliance.metrics import AgentMetrics
from appliance.replication import inbound
from appliance.replication.mirror_child import MirrorChild
from appliance.status_server import StatusServer, read_status

log = logging.getLogger("agent")

BOOTSTRAP_INTERVAL = 1.0   # seconds between cycles until the member serves
BUSY_LISTING_INTERVAL = 2.0  # seconds between AWS listings while something is changing
PROBE_TIMEOUT = 1.0        # seconds for probing peers' agents and members while bootstrapping
PEER_ACCESS_REFRESH = 300.0  # seconds between reads of unchanged security groups (repairs hand edits)
# Seconds between reads of the other region's read record while the inbound mirror runs (it follows
# replacements there), and while it waits for one.
SOURCE_REFRESH, SOURCE_RETRY = 60.0, 5.0
RESTORE_RETRY = 60.0  # seconds between a seeder's attempts to restore when no snapshot could be restored
TOKEN_RESTART_INTERVAL = 600.0  # seconds: at most one restart of etcd for rejected tokens in this time
HOUSEKEEPING_HISTORY = 10  # the leader's last housekeeping decisions kept for the status endpoint
# What reading or changing the regions' security groups may fail with: the groups stay as they are.
_GROUP_ERRORS = (GroupsUnknown, AwsPermissionError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class Agent:
    """Runs one instance's member of the cluster until SIGTERM or the instance's termination.

    Args:
        settings: validated settings. identity: this instance (from metadata).
        metadata: for the target lifecycle state. discovery: the AWS listing.
        binary_version: the local etcd binary's version, e.g. (3, 5, 1).
        zone: the hosted zone for the discovery records, None to publish none.
        security_groups: the active regions' security groups of a cluster stretched across
            regions (their /32 peer rules), None in a single region.
        store: the cluster's snapshots and marker in S3 (SNAPSHOT_BUCKET), None without.
        snapshot_tools: etcdctl and etcdutl beside the etcd binary (needed with ``store``).
        metrics: the agent's metrics (default: new ones), given where AWS clients made before the
            agent count into them.
    """

    def __init__(self, settings: AgentSettings, identity: Identity, metadata: MetadataClient,
                 discovery: Discovery, binary_version: tuple[int, int, int] = (3, 5, 0),
                 zone: HostedZone | None = None, security_groups: SecurityGroups | None = None,
                 store: SnapshotStore | None = None, snapshot_tools: snapshots.Tools | None = None,
                 metrics: AgentMetrics | None = None):
        self.settings = settings
        self.metrics = metrics if metrics is not None else AgentMetrics()
        self.store = store
        self.snapshot_tools = snapshot_tools
        self.no_quorum_since: float | None = None  # monotonic; while etcd runs and no member sees a leader
        self.restore_failed_at = -math.inf
        self.tokens_checked_pid: int | None = None
        self.tokens_restarted_at = -math.inf
        self.security_groups = security_groups
        self.own_access_open = security_groups is None
        # What the peer rules were last brought to (listed addresses, member hosts), and when.
        self.access_basis: tuple | None = None
        self.access_synced_at = -math.inf
        self.last_access = ""
        self.binary_version = binary_version
        self.zone = zone
        self.publisher = RecordPublisher(zone) if zone is not None else None
        self.domain = records.domain(settings.cluster_name, zone.name) if zone is not None else ""
        self.tls = settings.client_tls
        self.read_name = records.read_record_name(settings.dns_service_name, zone.name, self.tls is not None) \
            if zone is not None and settings.dns_service_name else ""
        self.last_records = ""
        # Read the upgrade lock while this instance may hold it: after taking it, and once
        # after start (a restarted agent may hold it from before).
        self.watch_upgrade_lock = True
        self.me = identity
        self.metadata = metadata
        self.discovery = discovery
        # Where peers, clients and the records reach this member (ADVERTISE_ADDRESS); etcd and the
        # status endpoint listen on the private IP, and on the advertised one where this host has it.
        self.address = identity.public_ip if settings.advertise_public and identity.public_ip else identity.private_ip
        self.listen = (identity.private_ip,) + ((self.address,) if self.address != identity.private_ip
                                                and local_address(self.address) else ())
        self.urls = EtcdUrls.for_ip(self.address, settings.peer_port, settings.client_port,
                                    settings.metrics_port, listen=self.listen, client_scheme=tls.scheme(self.tls),
                                    peer_scheme=tls.scheme(settings.peer_tls))
        self.etcd = EtcdProcess()
        self.stop_requested = threading.Event()
        self.listing: Listing | None = None
        self.listed_at = -math.inf
        self.known_client_urls: list[str] = []
        self._own_state: str | None = None  # own ASG lifecycle state, read by non-leaders
        self._last_members: tuple[Member, ...] = ()
        self.is_leader = False
        self.calm = False
        self.gone_since: dict[int, float] = {}
        self.lock: LeaseLock | None = None
        self.last_logged: tuple[str, str] | None = None
        self.last_housekeeping = ""
        # The last decisions of this agent's housekeeping, each when it changed more than its durations
        # (housekeeper.gist): time (epoch seconds), action, reason, and the member concerned (hex id, name) or None.
        self.housekeeping_decisions: collections.deque[dict] = collections.deque(maxlen=HOUSEKEEPING_HISTORY)
        self.last_failure = ""
        self.seed_intent = False
        # Served from the first moment: peers deciding whether to seed read it.
        self.status: dict = {"instance_id": identity.instance_id, "region": identity.region,
                             "active_regions": list(settings.active_regions or (identity.region,)), "state": "starting",
                             "reason": "", "running": False, "seeding": False, "member_id": None, "healthy": False,
                             "leader": False, "has_data": read_local_data(settings.data_dir).has_data,
                             "etcd_version": ".".join(map(str, binary_version))}
        self._http = requests.Session()
        # Built once, so their HTTP sessions keep connections alive between cycles.
        # Membership, locks and the heartbeat need the user appliance once authentication is on.
        self.credentials = credentials_for(settings.credentials_file, "appliance") if settings.credentials_file \
            else None
        self._probe = EtcdClient([], timeout=PROBE_TIMEOUT, credentials=self.credentials, tls=self.tls)
        self._anonymous = EtcdClient([], timeout=PROBE_TIMEOUT, tls=self.tls)
        self._serving = EtcdClient([], timeout=settings.request_timeout, credentials=self.credentials, tls=self.tls)
        self._local = EtcdClient([self.urls.local_client], timeout=settings.request_timeout,
                                 credentials=self.credentials, tls=self.tls)
        # Written while this member leads, for readers of a mirrored copy (lag, staleness).
        self.heartbeat = Heartbeat(EtcdClient([self.urls.local_client], timeout=0.9, credentials=self.credentials,
                                              tls=self.tls),
                                   lambda: self.is_leader)
        # Regional clusters linked by the mirror: the passive cluster's leader runs the inbound mirror.
        self.inbound = MirrorChild((self.urls.local_client,), settings.mirror_prefix, settings.credentials_file,
                                   identity.instance_id, self.tls) if settings.mirror_prefix else None
        self.inbound_sources: dict[str, tuple[str, ...]] | None = None
        self.target_addresses: dict[str, str] = {}  # read record target -> IP (fixed for an instance's life)
        # This cluster's mode and its record's revision (0: no record), read each cycle by the leader of a
        # cluster linked by the mirror; None when not known.
        self.own_mode: tuple[Mode, int] | None = None
        self.write_domain = records.fqdn(f"{settings.dns_service_name}.{zone.name}") \
            if settings.mirror_prefix and zone is not None and settings.dns_service_name else ""
        self.sources_read_at = -math.inf
        self.last_inbound = ""
        self.backups = Backups(store, snapshot_tools, restore.spool_dir(settings.data_dir), self.credentials,
                               self.metrics, settings.snapshot_interval, settings.snapshot_keep,
                               settings.snapshot_keep_days, identity.instance_id, self.tls) \
            if store is not None else None

    # --- the loop -----------------------------------------------------------
    def run(self, status_server: StatusServer | None = None) -> int:
        """Cycle until stopped; returns the process exit code (0 after a clean stop or leave)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_requested.set())
        self.heartbeat.start()
        try:
            while not self.stop_requested.is_set():
                try:
                    snapshot = self.observe()
                    decision = bootstrap.decide(snapshot)
                    self.report(decision, snapshot)
                    if self.act(decision, snapshot):
                        return 0
                    pause = self.interval(decision)
                except Exception:  # noqa: BLE001 - a bug in one cycle must not take etcd down with the agent
                    log.exception("agent cycle failed; etcd keeps running, next cycle in %.0f s",
                                  self.settings.loop_interval)
                    pause = self.settings.loop_interval
                self.stop_requested.wait(pause)
            return self.shutdown()
        finally:
            self.heartbeat.stop()
            if self.inbound is not None:
                self.inbound.stop()
            if status_server is not None:
                status_server.close()

    def interval(self, decision: Decision) -> float:
        if decision.action is not Action.SERVE:
            return BOOTSTRAP_INTERVAL
        if self.is_leader and not self.calm:
            return min(self.settings.loop_interval, BUSY_LISTING_INTERVAL)
        return self.settings.loop_interval

    def shutdown(self) -> int:
        """SIGTERM: leave the cluster if the instance is being terminated, else just stop etcd
        (the inbound mirror first, so that it releases its lock)."""
        if self.inbound is not None:
            self.inbound.stop()
        if self._metadata_says_terminated():
            log.info("SIGTERM and the instance's target lifecycle state is Terminated: leaving the cluster")
            self.leave(self.observe())
        else:
            log.info("SIGTERM: stopping etcd; this member stays in the cluster")
            self.etcd.stop()
        return 0

    def report(self, decision: Decision, snapshot: AgentSnapshot) -> None:
        """Log the decision when it changes, and publish it on the status endpoint."""
        key = (decision.action.value, decision.reason)
        if key != self.last_logged:
            log.info("%s: %s", decision.action.value, decision.reason)
            self.last_logged = key
        self.metrics.decisions.labels(decider="bootstrap", action=decision.action.value).inc()
        if snapshot.cluster is not None:
            learners = sum(1 for m in snapshot.cluster.members if m.is_learner)
            self.metrics.members.labels(role="voting").set(len(snapshot.cluster.members) - learners)
            self.metrics.members.labels(role="learner").set(learners)
        self.status.update(
            state=decision.action.value, reason=decision.reason, running=snapshot.etcd_running,
            has_data=snapshot.local.has_data,
            member_id=format(snapshot.local.member_id, "x") if snapshot.local.member_id else None,
            healthy=decision.action is Action.SERVE and snapshot.etcd_running and snapshot.cluster is not None,
            leader=self.is_leader, housekeeping=self.last_housekeeping, records=self.last_records,
            housekeeping_decisions=list(self.housekeeping_decisions),
            upgrade_lock_holder=snapshot.upgrade_lock_holder,
            peer_access=self.last_access, quorum=snapshot.etcd_running and snapshot.quorum_lost_for is None
            and snapshot.cluster is not None and snapshot.cluster.leader_id is not None, revision=snapshot.revision,
            snapshots=self._snapshots_status(),
            aws_api_calls=self.discovery.calls + (self.zone.calls if self.zone else 0)
            + (self.security_groups.calls if self.security_groups else 0), updated=time.time())

    # --- observe ------------------------------------------------------------
    def observe(self) -> AgentSnapshot:
        self.etcd.reap()
        running = self.etcd.running
        local = read_local_data(self.settings.data_dir)
        listing = self._maybe_list(running)
        cluster = self._observe_cluster(running, listing)
        if running and cluster is not None and local.has_data and local.member_id is None:
            local = self._mark_data(cluster) or local
        peers = {}
        lost_for, revision = self._observe_quorum(running, cluster)
        seeding = not running and not local.has_data and cluster is None
        if (seeding or lost_for is not None) and listing is not None and listing.complete:
            peers = self._observe_peers(listing)
        marker, marker_problem = self._observe_marker(listing, peers) if seeding else (Marker.OFF, "")
        lock_holder, local_healthy = self._observe_upgrade_lock(running, local.has_data, cluster)
        access_problem = "" if running or local.has_data else self._open_own_access()
        unaware = () if running or local.has_data or cluster is None else self._unaware_members(cluster)
        return AgentSnapshot(
            instance_id=self.me.instance_id, peer_url=self.urls.peer, local=local,
            etcd_running=running, may_start=self.etcd.may_start(),
            terminating=self._terminating(listing), listing=listing, cluster=cluster, peers=peers,
            # Published by the previous cycle's act, so before this cycle asked the peers.
            seed_announced=self.seed_intent, binary_version=self.binary_version,
            upgrade_lock_holder=lock_holder, local_healthy=local_healthy, peer_access_problem=access_problem,
            unaware_members=unaware, marker=marker, marker_problem=marker_problem, quorum_lost_for=lost_for,
            revision=revision, quorum_recovery=self.settings.quorum_recovery,
            quorum_loss_wait=self.settings.quorum_loss_wait,
            restore_request=restore.read_request(self.settings.data_dir))

    def _observe_quorum(self, running: bool, cluster: ClusterView | None) -> tuple[float | None, int | None]:
        """(seconds etcd has run here with no member seeing a leader, this member's revision); (None, None)
        while one does. The revision is read only then: it decides which survivor recovers."""
        if not running or (cluster is not None and cluster.leader_id is not None):
            self.no_quorum_since = None
            return None, None
        now = time.monotonic()
        if self.no_quorum_since is None:
            self.no_quorum_since = now
        try:
            # Without credentials: authenticating goes through raft, which a member without quorum cannot
            # do, while Maintenance Status needs no user (etcd's auth gates only the admin maintenance calls).
            revision = self._anonymous.status(self.urls.local_client).revision or None
        except (EtcdError, EtcdUnavailable):
            revision = None
        return now - self.no_quorum_since, revision

    def _observe_marker(self, listing: Listing | None, peers: dict[str, PeerStatus | None]) -> tuple[Marker, str]:
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

    def _unaware_members(self, cluster: ClusterView) -> tuple[str, ...]:
        """For a joiner across regions: the members whose agents answer with ACTIVE_REGIONS that leave
        out this instance's region (those that do not answer are not counted: a dead member's agent
        never answers, and its removal must not wait for it)."""
        if not self.settings.active_regions:
            return ()
        unaware = []
        for member in cluster.members:
            for host in sorted(member.peer_hosts):
                body = self._agent_status(host)
                if body is not None and self.me.region not in (body.get("active_regions") or [body.get("region")]):
                    unaware.append(member.name or member.hex_id)
        return tuple(unaware)

    def _agent_status(self, host: str) -> dict | None:
        """Another instance's agent status (``GET /status`` on ``host``), None if it does not answer."""
        return read_status(host, self.settings.status_port, PROBE_TIMEOUT, self.tls.ca_file if self.tls else None,
                           self._http)

    def _open_own_access(self) -> str:
        """Before seeding or joining: open the other regions' groups to this instance; "" once open.

        Each cycle until done (one DescribeSecurityGroups per region, then the missing rules);
        afterwards the leader keeps the rules.
        """
        if self.own_access_open:
            return ""
        try:
            missing = peer_access.missing_for(self.security_groups.observe(), self.me.region, self.address,
                                              self.settings.advertise_public)
            for change in missing:
                self.security_groups.apply(change)
                log.info("peer access: %s (this instance, before it seeds or joins)", change)
        except _GROUP_ERRORS as exc:
            return str(exc)
        self.own_access_open = True
        return ""

    def _maybe_list(self, running: bool) -> Listing | None:
        now = time.monotonic()
        if not running:
            due = BUSY_LISTING_INTERVAL
        elif self.is_leader:
            due = self.settings.listing_interval if self.calm else BUSY_LISTING_INTERVAL
        elif self.no_quorum_since is not None:
            due = BUSY_LISTING_INTERVAL  # which instances are present decides the recovery
        else:
            # Non-leaders need only their own lifecycle state, one call per interval.
            if now - self.listed_at >= self.settings.listing_interval:
                self.listed_at = now
                try:
                    self._own_state = self.discovery.own_lifecycle_state()
                except AwsPermissionError as exc:
                    log.error("%s", exc)
            return self.listing
        if now - self.listed_at >= due:
            confirm = [m.name for m in self._last_members if m.name.startswith("i-")]
            try:
                self.listing = self.discovery.list(confirm=confirm)
            except AwsPermissionError as exc:
                # Fatal at start-up (exit 2); once etcd serves, a revoked permission must
                # not stop it: the listing is unknown, so nothing is seeded or removed.
                log.error("%s", exc)
                self.listing = Listing.unknown(str(exc))
            self.listed_at = now
            if not self.listing.complete:
                log.warning("AWS listing incomplete: %s", self.listing.problem)
        return self.listing

    def _terminating(self, listing: Listing | None) -> bool:
        if self._metadata_says_terminated():
            return True
        if self._own_state in TERMINATING_STATES:
            return True
        mine = listing.get(self.me.instance_id) if listing is not None else None
        return mine is not None and mine.terminating

    def _metadata_says_terminated(self) -> bool:
        try:
            return self.metadata.target_lifecycle_state() == "Terminated"
        except requests.RequestException:
            return False  # unknown is not "terminated": never leave on a metadata hiccup

    def _candidate_endpoints(self, running: bool, listing: Listing | None) -> list[str]:
        endpoints = [self.urls.local_client] if running else []
        endpoints += self.known_client_urls
        if listing is not None:
            endpoints += [f"{tls.scheme(self.tls)}://{i.address}:{self.settings.client_port}" for i in listing.instances
                          if i.address and i.instance_id != self.me.instance_id and not i.terminating]
        return list(dict.fromkeys(e for e in endpoints if running or e not in (self.urls.client,
                                                                               self.urls.local_client)))

    def _observe_cluster(self, running: bool, listing: Listing | None) -> ClusterView | None:
        """The cluster as the first member with a leader answers it (else as the first that answered)."""
        probe = self._serving if running else self._probe
        leaderless = None
        for endpoint in self._candidate_endpoints(running, listing):
            try:
                answer = probe.member_list(endpoint)
                leader = probe.status(endpoint).leader_id or None
            except (EtcdError, EtcdUnavailable):
                continue
            if leader is None:
                # A member cut off from its quorum still answers; another may see a leader (after a
                # recovery, say): asking on costs a probe per listed instance, only while this lasts.
                leaderless = leaderless or ClusterView(answer.cluster_id, answer.members, None)
                continue
            self._last_members = answer.members
            self.known_client_urls = [u for m in answer.members for u in m.client_urls[:1]]
            mine = next((m for m in answer.members if m.name == self.me.instance_id), None)
            self.is_leader = running and mine is not None and leader == mine.id
            version = None
            if not running:  # only a joiner compares its binary with the cluster version
                try:
                    version = versions.parse(probe.version(endpoint)[1])
                except (EtcdError, EtcdUnavailable):
                    pass
            return ClusterView(answer.cluster_id, answer.members, leader, version)
        self.is_leader = False
        return leaderless

    def _observe_upgrade_lock(self, running: bool, has_data: bool,
                              cluster: ClusterView | None) -> tuple[str | None, bool]:
        """(upgrade lock holder, local member healthy), read only where a decision needs them."""
        joining = not running and not has_data and cluster is not None
        if cluster is None or not (joining or (running and self.watch_upgrade_lock)):
            return None, False
        client = self._cluster_client(cluster) if joining else self._local
        try:
            current = holder(client, UPGRADE_KEY)
        except (EtcdError, EtcdUnavailable) as exc:
            return f"unknown ({exc})", False
        if running and current != self.me.instance_id:
            self.watch_upgrade_lock = False
        return current, current == self.me.instance_id and self._local.healthy(self.urls.local_client)

    def _mark_data(self, cluster: ClusterView):
        mine = cluster.by_name_or_peer(self.me.instance_id, self.urls.peer)
        if mine is None:
            return None
        write_marker(self.settings.data_dir, mine.id, cluster.cluster_id)
        return read_local_data(self.settings.data_dir)

    def _observe_peers(self, listing: Listing) -> dict[str, PeerStatus | None]:
        peers: dict[str, PeerStatus | None] = {}
        for inst in listing.in_service():
            if inst.instance_id == self.me.instance_id or not inst.address:
                continue
            body = self._agent_status(inst.address)
            peers[inst.instance_id] = None if body is None else PeerStatus(
                inst.instance_id, bool(body.get("running")), bool(body.get("has_data")), bool(body.get("seeding")),
                bool(body.get("quorum")), body.get("revision") if isinstance(body.get("revision"), int) else None)
        return peers

    # --- act ----------------------------------------------------------------
    def act(self, decision: Decision, s: AgentSnapshot) -> bool:
        """Carry out ``decision``; True when the agent should exit (it left the cluster)."""
        announce = decision.action in (Action.ANNOUNCE_SEED, Action.SEED)
        if announce != self.seed_intent:  # withdrawn as soon as the facts no longer allow seeding
            self.seed_intent = announce
            self.status["seeding"] = announce
        try:
            if decision.action is Action.SEED:
                # A token unique to this seeding, so a later cluster of the same name (same
                # IPs, even) never gets the same cluster id as this one.
                self._start({self.me.instance_id: self.urls.peer}, "new",
                            token=f"{self.settings.cluster_name}-{self.me.instance_id}")
            elif decision.action is Action.JOIN:
                self._join(s.cluster)
            elif decision.action is Action.REJOIN:
                self._start(None, "existing")
            elif decision.action is Action.REMOVE_STALE:
                self._cluster_client(s.cluster).member_remove(decision.member_id)
                log.info("removed stale member %x", decision.member_id)
                self._set_aside()
            elif decision.action is Action.SET_ASIDE:
                self.etcd.stop()  # it may run with the data of a removed member
                self._set_aside()
            elif decision.action is Action.RESTORE_SNAPSHOT:
                self._restore_snapshot(decision, s)
            elif decision.action is Action.FORCE_NEW_CLUSTER:
                self._force_new_cluster(decision, s)
            elif decision.action is Action.REFUSE_RESTORE:
                restore.finish(self.settings.data_dir, False, decision.reason)
            elif decision.action is Action.PROMOTE:
                self._cluster_client(s.cluster).member_promote(decision.member_id)
                log.info("promoted member %x to a voting member", decision.member_id)
                self._check_local_tokens()  # at once: clients reach it from now on
            elif decision.action is Action.TAKE_UPGRADE_LOCK:
                self.watch_upgrade_lock = True
                now_held_by = locks.take(self._cluster_client(s.cluster), UPGRADE_KEY, self.me.instance_id,
                                         self.settings.upgrade_lock_ttl)
                log.info("upgrade lock: %s", "taken" if now_held_by == self.me.instance_id
                         else f"held by {now_held_by or 'nobody (try again)'}")
            elif decision.action is Action.RELEASE_UPGRADE_LOCK:
                released = locks.release(self._local, UPGRADE_KEY, self.me.instance_id)
                self.watch_upgrade_lock = False
                log.info("upgrade lock %s", "released" if released else "was no longer ours (expired)")
            elif decision.action is Action.LEAVE:
                self.leave(s)
                return True
            elif decision.action is Action.SERVE and self.is_leader:
                self.own_mode = self._observe_mode()
                self.housekeep(s)
            elif decision.action is Action.SERVE and self.lock is not None and self.lock.lease_id:
                self.lock.release()
            if not self.is_leader and self.backups is not None:
                self.backups.lost_leadership()
            if decision.action is Action.SERVE:
                self._check_local_tokens()
                self.keep_inbound_mirror()
            elif self.inbound is not None and self.inbound.source is not None:
                # etcd here is not serving (restarting, rejoining): this member leads nothing.
                log.info("inbound mirror: stopped, this member does not serve (%s)", decision.action.value)
                self.inbound.stop()
        except (EtcdError, EtcdUnavailable) as exc:
            # etcd refuses reconfiguration while not ready ("unhealthy cluster", learner
            # not caught up, "too many learner members"): the next cycle tries again.
            failure = f"{decision.action.value} not done yet: {exc}"
            if failure != self.last_failure:  # one line per new refusal, not one a second
                log.info("%s", failure)
                self.last_failure = failure
            return False
        self.last_failure = ""
        return False

    def _restore_snapshot(self, decision: Decision, s: AgentSnapshot) -> None:
        """Restore a snapshot (the newest good one in S3, or the operator's) into a one-member cluster and
        start it. Whatever fails leaves the data directory as it was, is said in one line, and is tried
        again after :data:`RESTORE_RETRY` seconds (an operator's request is answered at once)."""
        if s.restore_request is None and time.monotonic() - self.restore_failed_at < RESTORE_RETRY:
            return
        self.etcd.stop()
        try:
            if self.snapshot_tools is None:
                raise ValueError("no etcdctl/etcdutl beside ETCD_BINARY: cannot restore a snapshot")
            snapshot, source = restore.fetch(decision.source, self.store, self.snapshot_tools,
                                             restore.spool_dir(self.settings.data_dir))
            moved = restore.into_data_dir(snapshot, self.snapshot_tools, self.settings.data_dir,
                                          self.me.instance_id, self.urls.peer,
                                          f"{self.settings.cluster_name}-{self.me.instance_id}-r{snapshot.revision}")
        except (snapshots.SnapshotError, StoreError, ValueError, OSError) as exc:
            log.error("restore failed, nothing changed (next try in %.0f s): %s", RESTORE_RETRY, exc)
            self.restore_failed_at = time.monotonic()
            if s.restore_request is not None:
                restore.finish(self.settings.data_dir, False, f"restore failed, nothing changed: {exc}")
            return
        self.metrics.recoveries.labels(kind="snapshot", may_lose_writes="true").inc()
        log.warning("RECOVERY THAT MAY LOSE WRITES: restored %s (revision %d) into a one-member cluster; writes made "
                    "after that snapshot are lost%s", source, snapshot.revision,
                    f"; the old data is at {moved}" if moved else "")
        self._start(None, "existing")
        if s.restore_request is not None:
            restore.finish(self.settings.data_dir, True, f"restored {source} (revision {snapshot.revision}); "
                           "the other instances set their data aside and join")
        if self.store is not None:
            try:
                marker = self.store.read_marker() or {}
                self.store.write_marker({**marker, "restored_from": source, "restored_revision": snapshot.revision,
                                         "restored_by": self.me.instance_id, "restored_at": time.time()})
            except StoreError as exc:
                log.warning("could not note the restore in the marker: %s", exc)

    def _force_new_cluster(self, decision: Decision, s: AgentSnapshot) -> None:
        """Restart etcd on its own data as a one-member cluster (etcd's --force-new-cluster, this start only:
        a later restart must not drop the members that joined since)."""
        self.etcd.stop()
        self.metrics.recoveries.labels(kind="force-new-cluster", may_lose_writes="true").inc()
        log.warning("RECOVERY THAT MAY LOSE WRITES: restarting member %s with its data (revision %s) as a "
                    "one-member cluster; writes only the lost members had acknowledged are gone",
                    format(s.local.member_id, "x") if s.local.member_id else "?", s.revision)
        self._start(None, "existing", force_new_cluster=True)
        self.no_quorum_since = None
        if s.restore_request is not None:
            restore.finish(self.settings.data_dir, True, "restarted this member's data as a one-member cluster; "
                           "the other instances set their data aside and join")

    def _check_local_tokens(self) -> None:
        """Once per etcd start, with authentication: restart etcd if it rejects the tokens it issues.

        etcd 3.5.1 bug (etcd-io/etcd#13134, fixed by #13172 in later releases): a member that caught
        up from the leader's snapshot (as every joiner of a restored cluster does, and any joiner once
        the leader has compacted its log) answers "invalid auth token" to every request until it is
        restarted. At most one restart per :data:`TOKEN_RESTART_INTERVAL` seconds.
        """
        proc = self.etcd.proc
        if self.credentials is None or proc is None or self.tokens_checked_pid == proc.pid:
            return
        self.tokens_checked_pid = proc.pid
        try:  # a client of its own: a fresh token from this member
            EtcdClient([self.urls.local_client], timeout=self.settings.request_timeout,
                       credentials=self.credentials, tls=self.tls).get(MODE_KEY)
        except EtcdUnavailable:
            self.tokens_checked_pid = None  # not answering yet: look again next cycle
        except EtcdError as exc:
            if "invalid auth token" not in exc.message:
                return
            if time.monotonic() - self.tokens_restarted_at < TOKEN_RESTART_INTERVAL:
                log.error("etcd still rejects the tokens it issues after a restart; leaving it running")
                return
            log.warning("etcd rejects the tokens it issues (etcd 3.5.1 bug etcd-io/etcd#13134, after catching up "
                        "from a snapshot): restarting it with its data")
            self.tokens_restarted_at = time.monotonic()
            self.etcd.stop()

    def _snapshots_status(self) -> dict | None:
        if self.backups is None:
            return None
        return {"location": self.store.location, "last": self.backups.last_outcome,
                "next": self.backups.last_reason if self.is_leader else "not the leader"}

    def _cluster_client(self, cluster: ClusterView | None) -> EtcdClient:
        return membership.voting_client(cluster, self.urls.client, self.settings.request_timeout, self.credentials,
                                        self.tls)

    def _start(self, initial_cluster: dict[str, str] | None, state: str, token: str | None = None,
               force_new_cluster: bool = False) -> None:
        self.status["running"] = True  # before etcd starts: no peer may read "not running" meanwhile
        self.etcd.start(etcd_command(self.settings.etcd_binary, self.me.instance_id, self.settings.data_dir,
                                     self.urls, initial_cluster, state, token or self.settings.cluster_name,
                                     force_new_cluster, self.tls, self.settings.peer_tls))

    def _join(self, cluster: ClusterView | None) -> None:
        new, initial = membership.add_learner(self._cluster_client(cluster), self.me.instance_id, self.urls.peer)
        log.info("added as learner member %s through the cluster", new.hex_id)
        write_marker(self.settings.data_dir, new.id, cluster.cluster_id if cluster else None)
        self._start(initial, "existing")

    def _set_aside(self) -> None:
        moved = set_aside(self.settings.data_dir)
        if moved:
            log.info("moved the old data directory to %s", moved)

    def leave(self, s: AgentSnapshot) -> None:
        """MemberRemove this instance's member (moving leadership away first), then stop etcd.

        If etcd refuses (e.g. removal would break quorum), the member stays and the
        leader's housekeeping removes it once that is safe.
        """
        cluster = s.cluster
        mine = None
        if cluster is not None:
            mine = cluster.by_id(s.local.member_id) or cluster.by_name_or_peer(self.me.instance_id,
                                                                              self.urls.peer)
        if mine is not None and s.etcd_running:
            membership.leave(cluster, mine, self.urls.client, self.settings.request_timeout,
                             credentials=self.credentials, tls=self.tls)
        if self.lock is not None:
            self.lock.release()
        if self.watch_upgrade_lock and cluster is not None:
            try:  # an instance taken out mid-upgrade frees the lock now, not after its TTL
                if locks.release(self._cluster_client(cluster), UPGRADE_KEY, self.me.instance_id):
                    log.info("released the upgrade lock on leaving")
            except (EtcdError, EtcdUnavailable) as exc:
                log.warning("could not release the upgrade lock (%s); it expires by itself", exc)
        self.etcd.stop()

    def housekeep(self, s: AgentSnapshot) -> None:
        """On the leader: keep the housekeeping lease and remove at most one vanished member."""
        assert s.cluster is not None
        local = self._local
        if self.lock is None:
            self.lock = LeaseLock(local, HOUSEKEEPING_KEY, self.me.instance_id, self.settings.housekeeping_ttl)
        lease_holder = self.lock.acquire_or_renew()
        try:
            upgrade = holder(local, UPGRADE_KEY)
        except (EtcdError, EtcdUnavailable) as exc:
            upgrade = f"unknown ({exc})"  # an unreadable lock counts as held
        health = tuple(MemberHealth(m, bool(m.client_urls) and local.healthy(m.client_urls[0]))
                       for m in s.cluster.members)
        now = time.monotonic()
        self.gone_since = housekeeper.track_gone(self.gone_since, s.cluster.members, s.listing, now)
        verdict = housekeeper.decide(housekeeper.HousekeepingSnapshot(
            now=now, is_leader=self.is_leader, lease_holder=lease_holder, me=self.me.instance_id,
            listing=s.listing, members=health, gone_since=self.gone_since,
            grace_period=self.settings.grace_period, upgrade_lock_holder=upgrade,
            snapshot_done_at=self.backups.done_at if self.backups is not None else None))
        if self.backups is not None and lease_holder == self.me.instance_id:
            # From a healthy follower where there is one: the leader's etcd need not send the snapshot.
            source = next((h.member.client_urls[0] for h in health if h.healthy and h.member.name != self.me.instance_id
                           and not h.member.is_learner and h.member.client_urls), self.urls.local_client)
            self.backups.tick(source, s.cluster.cluster_id, verdict.snapshot_first,
                              must_cover=self.own_mode[1] if self.own_mode is not None else 0)
        # A member the listing does not show yet (it joined since) keeps the leader busy, so
        # the next listing soon shows its instance and the records can publish it.
        listed = s.listing is None or not s.listing.complete or all(
            housekeeper.fate(m, s.listing) is housekeeper.InstanceFate.PRESENT for m in s.cluster.members)
        self.calm = (all(h.healthy for h in health) and not self.gone_since and listed
                     and not any(m.is_learner for m in s.cluster.members))
        self.metrics.decisions.labels(decider="housekeeping", action=verdict.action).inc()
        if verdict.reason != self.last_housekeeping:
            log.info("housekeeping: %s", verdict.reason)
            self.last_housekeeping = verdict.reason
        previous = self.housekeeping_decisions[-1]["reason"] if self.housekeeping_decisions else None
        if previous is None or housekeeper.gist(previous) != housekeeper.gist(verdict.reason):
            concerned = verdict.member
            self.housekeeping_decisions.append({
                "time": time.time(), "action": verdict.action, "reason": verdict.reason,
                "member": concerned.hex_id if concerned is not None else None,
                "instance": (concerned.name or None) if concerned is not None else None})
        if verdict.member is not None:
            local.member_remove(verdict.member.id)
            log.info("housekeeping: removed member %s (%s)", verdict.member.hex_id,
                     verdict.member.name or "never started")
            self.gone_since.pop(verdict.member.id, None)
            self._housekept(lease_holder)
            return  # the member list changed: the records follow next cycle, from a fresh look
        self.publish_records(s.listing, health, upgrade)
        self.keep_peer_access(s.listing, s.cluster)
        self._housekept(lease_holder)

    def _housekept(self, lease_holder: str | None) -> None:
        """A housekeeping cycle ran to its end: the time counts as a success only for the lease holder."""
        if lease_holder == self.me.instance_id:
            self.metrics.housekeeping_last_success.set_to_current_time()

    def keep_peer_access(self, listing: Listing | None, cluster: ClusterView) -> None:
        """On the leader of a cluster across regions: bring every region's security group to exactly
        the other regions' instances and members (additions first).

        The groups are read only when the listed addresses or the members' hosts changed since the
        last success, or every :data:`PEER_ACCESS_REFRESH` seconds (to repair a hand edit), so a
        quiet cluster costs one DescribeSecurityGroups per region every few minutes.
        """
        if self.security_groups is None or listing is None or not listing.complete:
            return
        hosts = frozenset(h for m in cluster.members for h in m.peer_hosts)
        basis = (frozenset((i.region, i.address) for i in listing.instances), hosts)
        if basis == self.access_basis and time.monotonic() - self.access_synced_at < PEER_ACCESS_REFRESH:
            return
        try:
            access = peer_access.plan(self.security_groups.observe(), listing, hosts)
            for change in access.changes:
                self.security_groups.apply(change)
            outcome = access.reason
            self.access_basis, self.access_synced_at = basis, time.monotonic()
        except _GROUP_ERRORS as exc:
            outcome = f"security groups unchanged, retrying after the next listing: {exc}"
        if outcome != self.last_access:
            log.info("peer access: %s", outcome)
            self.last_access = outcome

    def _observe_mode(self) -> tuple[Mode, int] | None:
        """On the leader of a cluster linked by the mirror: (mode, revision of its record), None if
        unknown (or not linked)."""
        if self.inbound is None:
            return None
        try:
            return read_mode(self._local)
        except (EtcdError, EtcdUnavailable, ConfigError) as exc:
            log.warning("cannot read this cluster's mode: %s", exc)
            return None

    def keep_inbound_mirror(self) -> None:
        """Run the inbound mirror while this member leads a passive cluster (see :mod:`.inbound`)."""
        if self.inbound is None:
            return
        running = self.inbound.running_source()
        mode = self.own_mode[0] if self.is_leader and self.own_mode is not None else None
        sources = self._inbound_sources(running is not None) if mode is Mode.PASSIVE else None
        decision = inbound.decide(inbound.InboundSnapshot(self.is_leader, mode, sources, running,
                                                          self.inbound.hold_off(), self.inbound.last_exit))
        if decision.act in (inbound.Act.STOP, inbound.Act.RESTART):
            self.inbound.stop()
        if decision.act in (inbound.Act.START, inbound.Act.RESTART):
            self.inbound.start(decision.source)
        if decision.reason != self.last_inbound:
            log.info("inbound mirror: %s", decision.reason)
            self.last_inbound = decision.reason
        self.status.update(inbound_mirror=decision.reason,
                           mirroring_from=decision.region if self.inbound.source is not None else None)

    def _inbound_sources(self, running: bool) -> dict[str, tuple[str, ...]] | None:
        """The other regions' client URLs from their read records, read again after
        :data:`SOURCE_REFRESH` seconds (:data:`SOURCE_RETRY` while no mirror runs); the last
        answer while Route53 fails, None if there never was one."""
        if time.monotonic() - self.sources_read_at < (SOURCE_REFRESH if running else SOURCE_RETRY):
            return self.inbound_sources
        self.sources_read_at = time.monotonic()
        try:
            sets = self.zone.latency_sets(self.read_name)
            targets = {value.split()[-1] for region, values in sets.items() if region != self.me.region
                       for value in values}
            # A target names an instance, whose address never changes: only new targets are looked up.
            known = {t: ip for t, ip in self.target_addresses.items() if t in targets}
            self.target_addresses = {**known, **self.zone.addresses(targets - set(known))}
            self.inbound_sources = inbound.source_urls(sets, self.target_addresses, self.me.region,
                                                       tls.scheme(self.tls))
        except (AwsPermissionError, ConfigError, botocore.exceptions.BotoCoreError,
                botocore.exceptions.ClientError) as exc:
            log.warning("inbound mirror: the read records could not be read (%s)", exc)
        return self.inbound_sources

    def publish_records(self, listing: Listing | None, health: tuple[MemberHealth, ...],
                        upgrade_lock_holder: str | None) -> None:
        """On the leader: bring the Route53 discovery records one step closer to the healthy members."""
        if self.publisher is None:
            return
        # Only an explicit active record counts: before cluster-mode, both linked clusters count as
        # active, and two leaders would take the write record from each other.
        active = self.own_mode is not None and self.own_mode[0] is Mode.ACTIVE and self.own_mode[1] > 0
        write_domain = self.write_domain if active else ""
        plan = records.plan(records.RecordsSnapshot(
            domain=self.domain, listing=listing, members=health, upgrade_lock_holder=upgrade_lock_holder,
            ttl=self.settings.dns_ttl, peer_port=self.settings.peer_port, client_port=self.settings.client_port,
            read_name=self.read_name, region=self.me.region, write_domain=write_domain, tls=self.tls is not None))
        outcome = plan.reason
        if plan.desired is not None:
            try:
                outcome = f"{plan.reason}; " + self.publisher.sync(
                    self.domain, plan.desired, read_name=self.read_name, region=self.me.region,
                    write_name=records.write_record_name(write_domain, self.tls is not None) if write_domain else "")
            except (AwsPermissionError, ConfigError) as exc:
                outcome = f"Route53: {exc}"
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                outcome = f"Route53 failed, retrying next cycle: {exc}"
        if outcome != self.last_records:
            log.info("records: %s", outcome)
            self.last_records = outcome


def start(settings: AgentSettings, metadata: MetadataClient) -> tuple[Agent, StatusServer]:
    """Read the identity, check AWS access, bind the status endpoint; nothing is started yet.

    Raises:
        MetadataUnavailable, AwsPermissionError, ConfigError: exit code 2 material.
        OSError: the status port cannot be bound.
    """
    binary = versions.binary_version(settings.etcd_binary)
    identity = metadata.identity(public=settings.advertise_public)
    if settings.advertise_public and not identity.public_ip:
        raise ConfigError("ADVERTISE_ADDRESS=public, but the instance has no public IPv4 address (metadata "
                          "public-ipv4): give its subnet public addresses, or advertise private ones")
    if settings.active_regions and identity.region not in settings.active_regions:
        raise ConfigError(f"ACTIVE_REGIONS ({','.join(settings.active_regions)}) leaves out this instance's "
                          f"region {identity.region}")
    metrics = AgentMetrics()
    # Every AWS client below comes from this session, so each of their calls is counted.
    session = counted_session(metrics.aws_call)
    discovery = Discovery(identity.instance_id, identity.region, timeout=settings.request_timeout,
                          cluster_name=settings.cluster_name, other_regions=settings.active_regions,
                          advertise_public=settings.advertise_public, session=session)
    first = discovery.list()  # AccessDenied surfaces here, before anything starts
    if not first.complete:
        log.warning("first AWS listing incomplete: %s (will retry)", first.problem)
    zone = None
    if settings.hosted_zone:
        zone = HostedZone(settings.hosted_zone, timeout=settings.request_timeout, session=session)
        try:
            zone.resolve()  # a wrong zone name or a missing permission: exit 2 now
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            log.warning("Route53 did not answer (%s); the leader retries", exc)
    security_groups = None
    if discovery.other_regions:
        security_groups = SecurityGroups(settings.cluster_name, settings.active_regions,
                                         timeout=settings.request_timeout, session=session)
    store, tools = None, None
    try:
        tools = snapshots.tools_for(settings.etcd_binary)  # restore requests need them without a bucket too
    except snapshots.SnapshotError as exc:
        if settings.snapshot_bucket:
            raise ConfigError(f"SNAPSHOT_BUCKET is set, but {exc}") from None
    if settings.snapshot_bucket:
        # S3 is not asked now: a bucket that does not answer must not keep etcd from starting.
        store = SnapshotStore(settings.snapshot_bucket, settings.snapshot_prefix, settings.cluster_name,
                              identity.region, timeout=max(settings.request_timeout, 10.0), session=session)
    agent = Agent(settings, identity, metadata, discovery, binary, zone, security_groups, store, tools, metrics)
    agent.listing, agent.listed_at = first, time.monotonic()
    server = StatusServer((identity.private_ip, settings.status_port), lambda: dict(agent.status),
                          more=[(host, settings.status_port) for host in agent.listen[1:]],
                          metrics=agent.metrics.exposition,
                          tls=settings.client_tls.server_context() if settings.client_tls else None)
    log.info("agent for instance %s (%s, %s) at %s; peer URL %s, client URL %s; etcd %s; records %s%s",
             identity.instance_id, identity.region, identity.availability_zone, ", ".join(agent.listen),
             agent.urls.peer, agent.urls.client, ".".join(map(str, binary)), agent.domain or "off",
             f" and {agent.read_name} for {identity.region}" if agent.read_name else "")
    if discovery.other_regions:
        log.info("one cluster across regions %s: the other regions' groups are found by their tag %s=%s",
                 ",".join(settings.active_regions), CLUSTER_TAG, settings.cluster_name)
    return agent, server

