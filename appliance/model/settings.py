"""The agent's settings, once validated (:mod:`appliance.commands.settings` parses them)."""

from __future__ import annotations

import dataclasses

from appliance.model.tls import TlsFiles


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """Validated settings of ``etcd.py run``.

    Durations are seconds (float); ports are TCP ports on the instance's private IP.

    ``etcd_environment``: the ``ETCD_<FLAG>`` variables etcd gets, (name, value) pairs sorted by name, checked
    against the binary's flags (see :mod:`appliance.rules.etcd_flags`); nothing else of ``ETCD_*``/``ETCDCTL_*``
    reaches etcd. ``quota_backend_bytes``: etcd's backend quota in bytes (``ETCD_QUOTA_BACKEND_BYTES``, passed as
    ``--quota-backend-bytes``; the maintenance rules size themselves by it). ``compaction_retention``: seconds of
    key history the leader keeps before compacting. ``corruption_check_interval``: seconds between the leader's
    HashKV comparisons, 0 for never. ``notices``: one-line warnings found while loading (a deprecated variable
    name), for the agent to log once its logging is set up. ``lifecycle_hook_name``: the group's termination hook
    (None: none). ``cfn_stack_name``, ``cfn_signal_resource``: the stack and logical id the ready signal goes to
    (both None: no signal). ``cloudwatch_namespace``: where the leader puts ``HealthyLeader`` (None: nowhere).
    """

    data_dir: str
    etcd_binary: str
    cluster_name: str
    status_port: int
    client_port: int
    peer_port: int
    metrics_port: int
    grace_period: float
    loop_interval: float
    listing_interval: float
    request_timeout: float
    housekeeping_ttl: int
    log_level: str
    log_format: str = "text"
    hosted_zone: str | None = None
    dns_ttl: int = 60
    upgrade_lock_ttl: int = 600
    credentials_file: str | None = None
    dns_service_name: str | None = None
    active_regions: tuple[str, ...] = ()
    mirror_prefix: str | None = None
    advertise_address: str = "private"
    snapshot_bucket: str | None = None
    snapshot_prefix: str = ""
    snapshot_interval: float = 1800.0
    snapshot_keep: int = 48
    snapshot_keep_days: int = 14
    quorum_recovery: str = "auto"
    quorum_loss_wait: float = 60.0
    client_ca_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    peer_ca_file: str | None = None
    peer_cert_file: str | None = None
    peer_key_file: str | None = None
    quota_backend_bytes: int = 2 * 1024 ** 3  # etcd's own default, stated: bbolt maps the whole file into memory
    compaction_retention: float = 3600.0
    corruption_check_interval: float = 300.0
    lifecycle_hook_name: str | None = None
    cfn_stack_name: str | None = None
    cfn_signal_resource: str | None = None
    cloudwatch_namespace: str | None = None
    etcd_environment: tuple[tuple[str, str], ...] = ()
    notices: tuple[str, ...] = ()

    @property
    def client_tls(self) -> TlsFiles | None:
        """HTTPS on the client port, and the agent's client certificate (CLIENT_*_FILE); None: plain HTTP."""
        if self.client_cert_file is None:
            return None
        return TlsFiles(self.client_ca_file, self.client_cert_file, self.client_key_file)

    @property
    def peer_tls(self) -> TlsFiles | None:
        """TLS between members (PEER_*_FILE, else the CLIENT_*_FILE ones); None: plain HTTP."""
        if self.peer_cert_file is None:
            return self.client_tls
        return TlsFiles(self.peer_ca_file, self.peer_cert_file, self.peer_key_file)

    @property
    def advertise_public(self) -> bool:
        """Members advertise the instance's public IPv4 (``ADVERTISE_ADDRESS=public``)."""
        return self.advertise_address == "public"
