"""Building the agent from its settings: identity, AWS access checked, every component wired; nothing started.

The one place that knows how the parts fit; the agent's loop only runs them.
"""

from __future__ import annotations

import logging

import botocore.exceptions
import requests

from appliance.adapters.aws.calls import counted_session
from appliance.adapters.aws.cloudwatch import LeaderMetric
from appliance.adapters.aws.discovery import Discovery
from appliance.adapters.aws.lifecycle_actions import LifecycleActions
from appliance.adapters.aws.metadata import MetadataClient
from appliance.adapters.aws.route53 import HostedZone
from appliance.adapters.aws.s3 import SnapshotStore
from appliance.adapters.aws.security_groups import SecurityGroups
from appliance.adapters.aws.stack_signal import StackSignal
from appliance.adapters.credentials import credentials_for
from appliance.adapters.etcd import membership
from appliance.adapters.etcd import snapshot as snapshots
from appliance.adapters.etcd.binary import binary_version
from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.data_dir import read_local_data
from appliance.adapters.etcd.process import EtcdProcess, EtcdUrls, local_address
from appliance.adapters.etcd.restore_requests import spool_dir
from appliance.adapters.etcd.tls import server_context
from appliance.adapters.metrics import AgentMetrics
from appliance.adapters.mirror_process import MirrorChild
from appliance.adapters.status_endpoint import StatusServer
from appliance.agent.actuator import Actuator, EtcdStarter
from appliance.agent.components.alarms import NospaceRecovery
from appliance.agent.components.backups import Backups
from appliance.agent.components.compaction import Compaction
from appliance.agent.components.corruption import CorruptionCheck
from appliance.agent.components.defragmentation import Defragmentation
from appliance.agent.components.defragmentation import timeout_for as defrag_timeout
from appliance.agent.components.heartbeat import Heartbeat
from appliance.agent.components.housekeeping import Housekeeping
from appliance.agent.components.inbound_mirror import InboundMirror
from appliance.agent.components.leader_metric import HealthyLeaderMetric
from appliance.agent.components.listing import ListingCadence
from appliance.agent.components.maintenance import ClusterMaintenance
from appliance.agent.components.peer_access import PeerAccess
from appliance.agent.components.quorum import QuorumTimer
from appliance.agent.components.records import Records
from appliance.agent.components.recovery import Recovery
from appliance.agent.components.stack_signal import CreationSignal, marker_path
from appliance.agent.components.termination_hook import TerminationHook
from appliance.agent.components.tokens import TokenCheck
from appliance.agent.components.upgrade_lock import UpgradeLockWatch
from appliance.agent.loop import Agent, Components
from appliance.agent.observer import PROBE_TIMEOUT, Observer
from appliance.agent.status import StatusDocument
from appliance.model.errors import ConfigError, StatusPortError
from appliance.model.instances import CLUSTER_TAG
from appliance.model.settings import AgentSettings
from appliance.model.tls import scheme

log = logging.getLogger("agent")


def start(settings: AgentSettings, metadata: MetadataClient) -> tuple[Agent, StatusServer]:
    """Read the identity, check AWS access, bind the status endpoint; nothing is started yet.

    Raises:
        MetadataUnavailable, AwsPermissionError, ConfigError: exit code 2 material.
        OSError: the status port cannot be bound.
    """
    binary = binary_version(settings.etcd_binary)
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
    agent, listen, urls = build(settings, identity, metadata, discovery, binary, metrics, zone, security_groups,
                                store, tools)
    agent.c.termination, agent.c.signal, agent.c.leader_metric = aws_reports(settings, identity, discovery, metrics,
                                                                             session)
    agent.c.cadence.start_with(first)
    try:
        server = StatusServer((identity.private_ip, settings.status_port), agent.status.snapshot,
                              more=[(host, settings.status_port) for host in listen[1:]], metrics=metrics.exposition,
                              tls=server_context(settings.client_tls) if settings.client_tls else None)
    except OSError as exc:  # only the bind: another OSError (a requests error is one) must keep its own reason
        raise StatusPortError(f"cannot bind the status endpoint on port {settings.status_port}: {exc}") from None
    domain = agent.c.records.domain if agent.c.records is not None else ""
    read_name = agent.c.records.read_name if agent.c.records is not None else ""
    log.info("agent for instance %s (%s, %s) at %s; peer URL %s, client URL %s; etcd %s; records %s%s",
             identity.instance_id, identity.region, identity.availability_zone, ", ".join(listen), urls.peer,
             urls.client, ".".join(map(str, binary)), domain or "off",
             f" and {read_name} for {identity.region}" if read_name else "")
    if discovery.other_regions:
        log.info("one cluster across regions %s: the other regions' groups are found by their tag %s=%s",
                 ",".join(settings.active_regions), CLUSTER_TAG, settings.cluster_name)
    return agent, server


def aws_reports(settings: AgentSettings, identity, discovery: Discovery, metrics: AgentMetrics, session) -> tuple[
        TerminationHook, CreationSignal | None, HealthyLeaderMetric | None]:
    """What the agent tells AWS beside the listing: the termination hook's answer, the CloudFormation signal and the
    CloudWatch data point, each off where its setting is empty. Nothing is asked."""
    timeout = settings.request_timeout
    actions = None
    if settings.lifecycle_hook_name:
        actions = LifecycleActions(identity.instance_id, identity.region, settings.lifecycle_hook_name,
                                   discovery.group_name, timeout=timeout, session=session)
    signal = None
    if settings.cfn_stack_name and settings.cfn_signal_resource:
        signal = CreationSignal(StackSignal(settings.cfn_stack_name, settings.cfn_signal_resource, identity.region,
                                            timeout=timeout, session=session),
                                marker_path(settings.data_dir), identity.instance_id, metrics)
    leader_metric = None
    if settings.cloudwatch_namespace:
        leader_metric = HealthyLeaderMetric(LeaderMetric(settings.cloudwatch_namespace, settings.cluster_name,
                                                         settings.active_regions or (identity.region,),
                                                         timeout=timeout, session=session))
    return TerminationHook(actions, settings.lifecycle_hook_name, metrics), signal, leader_metric


def build(settings: AgentSettings, identity, metadata, discovery, binary: tuple[int, int, int],
          metrics: AgentMetrics, zone: HostedZone | None = None, security_groups: SecurityGroups | None = None,
          store: SnapshotStore | None = None, tools=None) -> tuple[Agent, tuple[str, ...], EtcdUrls]:
    """Wire the agent's parts around the given adapters; returns (the agent, the addresses it listens on, its
    member's URLs). Nothing is asked or started."""
    # Where peers, clients and the records reach this member (ADVERTISE_ADDRESS); etcd and the
    # status endpoint listen on the private IP, and on the advertised one where this host has it.
    address = identity.public_ip if settings.advertise_public and identity.public_ip else identity.private_ip
    listen = (identity.private_ip,) + ((address,) if address != identity.private_ip and local_address(address) else ())
    tls = settings.client_tls
    urls = EtcdUrls.for_ip(address, settings.peer_port, settings.client_port, settings.metrics_port, listen=listen,
                           client_scheme=scheme(tls), peer_scheme=scheme(settings.peer_tls))
    # Membership, locks and the heartbeat need the user appliance once authentication is on.
    credentials = credentials_for(settings.credentials_file, "appliance") if settings.credentials_file else None
    timeout = settings.request_timeout
    # Built once, so that their HTTP sessions keep connections alive between cycles.
    clients = {"probe": EtcdClient([], timeout=PROBE_TIMEOUT, credentials=credentials, tls=tls),
               "anonymous": EtcdClient([], timeout=PROBE_TIMEOUT, tls=tls),
               "serving": EtcdClient([], timeout=timeout, credentials=credentials, tls=tls),
               "local": EtcdClient([urls.local_client], timeout=timeout, credentials=credentials, tls=tls)}
    local = clients["local"]

    def voting_client(cluster):
        return membership.voting_client(cluster, urls.client, timeout, credentials, tls)

    etcd = EtcdProcess()
    metrics.set_etcd_version(".".join(map(str, binary)))
    if settings.snapshot_bucket:
        metrics.snapshot_interval.set(settings.snapshot_interval)
    status = StatusDocument(identity.instance_id, identity.region, settings.active_regions or (identity.region,),
                            read_local_data(settings.data_dir).has_data, ".".join(map(str, binary)), metrics)
    cadence, quorum, upgrade_lock = ListingCadence(discovery, settings.listing_interval), QuorumTimer(), \
        UpgradeLockWatch()
    observer = Observer(settings, identity, address, urls, binary, etcd, metadata, cadence, quorum, upgrade_lock,
                        clients.__getitem__, voting_client, store, security_groups,
                        seed_announced=lambda: status.seeding, http=requests.Session())
    tokens = TokenCheck(etcd, (lambda: EtcdClient([urls.local_client], timeout=timeout, credentials=credentials,
                                                  tls=tls)) if credentials is not None else None)
    start_etcd = EtcdStarter(settings, identity.instance_id, urls, etcd, status)
    recovery = Recovery(etcd, start_etcd, settings.data_dir, identity.instance_id, urls.peer, settings.cluster_name,
                        store, tools, metrics)
    actuator = Actuator(settings, identity.instance_id, urls, etcd, start_etcd, voting_client, local, recovery, quorum,
                        upgrade_lock, tokens, status, security_groups)
    backups = Backups(store, tools, spool_dir(settings.data_dir), credentials, metrics, settings.snapshot_interval,
                      settings.snapshot_keep, settings.snapshot_keep_days, identity.instance_id, tls,
                      fallback_endpoint=urls.local_client) if store is not None else None
    housekeeping = Housekeeping(local, identity.instance_id, settings.housekeeping_ttl, settings.grace_period,
                                (lambda: backups.done_at) if backups is not None else (lambda: None), metrics)
    records = Records(zone, settings, identity.region) if zone is not None else None
    inbound = None
    if settings.mirror_prefix:
        child = MirrorChild((urls.local_client,), settings.mirror_prefix, settings.credentials_file,
                            identity.instance_id, tls)
        metrics.mirror_lag_seconds.set_function(lambda: child.lag()[0])
        metrics.mirror_lag_revisions.set_function(lambda: child.lag()[1])
        inbound = InboundMirror(child, zone, records.read_name if records is not None else "", identity.region,
                                scheme(tls))
    # Written while this member leads, for readers of a mirrored copy (lag, staleness).
    heartbeat = Heartbeat(EtcdClient([urls.local_client], timeout=0.9, credentials=credentials, tls=tls),
                          lambda: observer.leading, on_beat=metrics.heartbeat_last.set_to_current_time)
    quota = settings.quota_backend_bytes
    # A client of its own: a defragmentation, or a physical compaction of a full quota, takes far longer than any
    # other call.
    patient = EtcdClient([urls.local_client], timeout=defrag_timeout(quota), credentials=credentials, tls=tls)
    upkeep = ClusterMaintenance(
        Compaction(local, settings.compaction_retention, quota,
                   (lambda: backups.in_progress) if backups is not None else (lambda: False), metrics,
                   long_client=patient),
        Defragmentation(local, patient, quota, metrics),
        NospaceRecovery(local, quota, metrics),
        # Hashing a store at the quota reads all of it: about 100 MB/s here.
        CorruptionCheck(local, settings.corruption_check_interval, max(10.0, quota / 100e6), settings.peer_tls,
                        metrics),
        quota, metrics)
    components = Components(cadence, housekeeping, tokens, heartbeat, backups, records,
                            PeerAccess(security_groups) if security_groups is not None else None, inbound, upkeep)
    return Agent(observer, actuator, status, components, identity.instance_id, settings.loop_interval), listen, urls
