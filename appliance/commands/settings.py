"""Agent settings from command-line flags and the environment, validated once.

Each setting has an environment variable (e.g. ``GRACE_PERIOD``) and a flag
(``--grace-period``); a flag wins over the variable. A bad value raises
:class:`ConfigError` naming the variable or flag, before anything is started.

``ETCD_<FLAG>`` variables are etcd's own flags: those the binary knows and the agent does not set are
passed to etcd (:attr:`AgentSettings.etcd_environment`), the others refused
(:mod:`appliance.rules.etcd_flags`). Two settings had the ``ETCD_`` prefix once (``ETCD_BINARY``,
``ETCD_CREDENTIALS_FILE``); their old names still work, with a warning (:attr:`AgentSettings.notices`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any, Mapping

from appliance.adapters.credentials import CredentialsFileError, credentials_for
from appliance.adapters.etcd.binary import binary_flags
from appliance.adapters.etcd.tls import files_from
from appliance.commands.names import (
    BUCKET,
    CLUSTER_NAME,
    DNS_SERVICE_NAME,
    HOOK_NAME,
    HOSTED_ZONE,
    KEY_PREFIX,
    LOGICAL_ID,
    NAMESPACE,
    REGIONS,
    STACK,
)
from appliance.commands.values import (
    ABSOLUTE_FILE,
    ABSOLUTE_PATH,
    EXECUTABLE,
    PORT,
    Value,
    choice,
    optional,
    seconds,
    whole,
)
from appliance.model.errors import ConfigError
from appliance.model.keys import reserved_overlap
from appliance.model.settings import AgentSettings
from appliance.rules import etcd_flags

log = logging.getLogger("agent")


def parse_mirror_prefix(text: str) -> str | None:
    """A ``MIRROR_PREFIX`` (None for ""). Raises ValueError saying what a prefix must be."""
    if text == "":
        return None
    if (not text.startswith("/") or text == "/" or reserved_overlap(text.encode()) or not text.isprintable()
            or len(text) > 1024):  # the mirror child's --source-prefix takes no more (flags.prefix)
        raise ValueError("must be a key prefix such as /config/, not / and not overlapping /__appliance/ or "
                         "/__replication/ (the clusters' own keys)")
    return text


CREDENTIALS_ALLOWED = "must be a credentials file (JSON user name to password, mode 600) with the user appliance"


def _credentials_file(text: str) -> str:
    try:
        credentials_for(text, "appliance", "APPLIANCE_CREDENTIALS_FILE")
    except CredentialsFileError as exc:
        raise ValueError(f"{CREDENTIALS_ALLOWED}; this one {exc.problem}") from None
    return text


@dataclasses.dataclass(frozen=True)
class Spec:
    """One agent setting: its :class:`AgentSettings` field, environment variable, default (as text), parser
    (:class:`~appliance.commands.values.Value`: text -> value, ValueError saying what is allowed) and help line.
    Its flag is the field with dashes."""

    field: str
    env: str
    default: str
    parse: Value
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    @property
    def old_env(self) -> str | None:
        """The variable's deprecated name (``ETCD_BINARY`` for ``APPLIANCE_ETCD_BINARY``), or None."""
        return next((old for old, new in etcd_flags.DEPRECATED.items() if new == self.env), None)


MIRROR_PREFIX = Value("must be a key prefix such as /config/, not / and not overlapping /__appliance/ or "
                      "/__replication/, or empty", parse_mirror_prefix)
CREDENTIALS_FILE = optional(Value(CREDENTIALS_ALLOWED, _credentials_file))
PEM_FILE = optional(ABSOLUTE_FILE)
TTL = whole(5, 3600, "seconds")

# Every setting of the agent; docs/reference.md's settings table names each, with its parser's
# ``allowed`` text (a test checks both).
SPECS = (
    Spec("data_dir", "DATA_DIR", "/var/lib/etcd-appliance/etcd", ABSOLUTE_PATH, "etcd data directory"),
    Spec("etcd_binary", "APPLIANCE_ETCD_BINARY", "etcd", EXECUTABLE,
         "etcd executable (formerly ETCD_BINARY); etcdctl and etcdutl are taken from beside it"),
    Spec("cluster_name", "CLUSTER_NAME", "etcd", CLUSTER_NAME,
         "cluster name (the stack's name); the etcd initial cluster token"),
    Spec("status_port", "STATUS_PORT", "2378", PORT, "agent status endpoint port"),
    Spec("client_port", "CLIENT_PORT", "2379", PORT, "etcd client port"),
    Spec("peer_port", "PEER_PORT", "2380", PORT, "etcd peer port"),
    Spec("metrics_port", "METRICS_PORT", "2381", PORT, "etcd metrics port"),
    Spec("grace_period", "GRACE_PERIOD", "300", seconds(0, 86400),
         "seconds a member's instance must be gone before the leader removes it"),
    Spec("loop_interval", "LOOP_INTERVAL", "5", seconds(0.1, 300),
         "seconds between agent cycles once the member serves"),
    Spec("listing_interval", "LISTING_INTERVAL", "30", seconds(1, 3600),
         "seconds between AWS listings while the cluster is calm"),
    Spec("request_timeout", "REQUEST_TIMEOUT", "3", seconds(0.1, 60),
         "timeout in seconds of every etcd, AWS and metadata call"),
    Spec("housekeeping_ttl", "HOUSEKEEPING_TTL", "15", TTL,
         "TTL in seconds of the leader's housekeeping lease"),
    Spec("log_level", "LOG_LEVEL", "INFO", choice("DEBUG", "INFO", "WARNING", "ERROR"), "log level"),
    Spec("log_format", "LOG_FORMAT", "text", choice("text", "json"),
         "log lines as text or json (one JSON object a line: ts, level, logger, message, exception)"),
    Spec("hosted_zone", "HOSTED_ZONE", "", HOSTED_ZONE,
         "Route53 hosted zone (name) for the discovery records; empty: publish none"),
    Spec("dns_ttl", "DNS_TTL", "60", whole(1, 86400, "seconds"), "TTL in seconds of the discovery records"),
    Spec("upgrade_lock_ttl", "UPGRADE_LOCK_TTL", "600", TTL,
         "TTL in seconds of the upgrade lock's lease (a dead holder frees it after this)"),
    Spec("credentials_file", "APPLIANCE_CREDENTIALS_FILE", "", CREDENTIALS_FILE,
         "credentials file (see cluster-mode; formerly ETCD_CREDENTIALS_FILE): the agent authenticates as the "
         "user appliance; empty: no authentication"),
    Spec("dns_service_name", "DNS_SERVICE_NAME", "", DNS_SERVICE_NAME,
         "name S the regional clusters of one service share: the leader publishes its region's "
         "_etcd-client._tcp.S.<zone> (latency record); empty: none"),
    Spec("active_regions", "ACTIVE_REGIONS", "", REGIONS,
         "regions whose groups of this stack form one cluster (this instance's own among them); "
         "empty: this region only"),
    Spec("mirror_prefix", "MIRROR_PREFIX", "", MIRROR_PREFIX,
         "regional clusters linked by the mirror: while this cluster is passive, its leader mirrors this "
         "prefix from the other region's cluster (found by its DNS_SERVICE_NAME read record); empty: no mirror"),
    Spec("advertise_address", "ADVERTISE_ADDRESS", "private", choice("private", "public", fold=False),
         "the address members advertise and peers, clients and records use: private (the VPCs route to each "
         "other) or public (the instance's public IPv4, for regions reached over the internet)"),
    Spec("snapshot_bucket", "SNAPSHOT_BUCKET", "", BUCKET,
         "S3 bucket for the leader's snapshots and the cluster's marker (never created or deleted by the "
         "appliance); empty: no snapshots, and a cluster that loses every member starts empty"),
    Spec("snapshot_prefix", "SNAPSHOT_PREFIX", "", KEY_PREFIX,
         "key prefix in SNAPSHOT_BUCKET; objects go under <prefix><CLUSTER_NAME>/"),
    Spec("snapshot_interval", "SNAPSHOT_INTERVAL", "1800", seconds(60, 604800),
         "seconds between the leader's snapshots (one is also taken before every member removal)"),
    Spec("snapshot_keep", "SNAPSHOT_KEEP", "48", whole(1, 100000, "snapshots"),
         "the newest snapshots kept whatever their age"),
    Spec("snapshot_keep_days", "SNAPSHOT_KEEP_DAYS", "14", whole(0, 3650, "days"),
         "beyond SNAPSHOT_KEEP, one snapshot a day is kept for this many days"),
    Spec("quorum_recovery", "QUORUM_RECOVERY", "auto", choice("auto", "manual", fold=False),
         "after a quorum loss: auto (the survivor with the highest revision restarts as a one-member cluster) "
         "or manual (the agents wait for `etcd.py restore`)"),
    Spec("quorum_loss_wait", "QUORUM_LOSS_WAIT", "60", seconds(0, 3600),
         "seconds quorum must stay lost, with every instance's agent answering, before recovery"),
    Spec("client_ca_file", "CLIENT_CA_FILE", "", PEM_FILE,
         "CA bundle (PEM) that signs the members' and clients' certificates; with CLIENT_CERT_FILE and "
         "CLIENT_KEY_FILE: HTTPS on the client port, client certificates required; empty: plain HTTP"),
    Spec("client_cert_file", "CLIENT_CERT_FILE", "", PEM_FILE,
         "this instance's certificate (PEM) for the client port and as the agent's client certificate "
         "(serverAuth and clientAuth, the instance's addresses as IP SANs)"),
    Spec("client_key_file", "CLIENT_KEY_FILE", "", PEM_FILE, "CLIENT_CERT_FILE's private key (PEM)"),
    Spec("peer_ca_file", "PEER_CA_FILE", "", PEM_FILE,
         "CA bundle (PEM) for TLS between members; empty: the CLIENT_* files serve peers too"),
    Spec("peer_cert_file", "PEER_CERT_FILE", "", PEM_FILE, "this instance's peer certificate (PEM)"),
    Spec("peer_key_file", "PEER_KEY_FILE", "", PEM_FILE, "PEER_CERT_FILE's private key (PEM)"),
    # etcd's own default (2 GiB), stated: the maintenance rules size themselves by it, and bbolt maps the whole
    # file into memory, so a larger quota needs the memory of a larger instance type.
    Spec("quota_backend_bytes", "ETCD_QUOTA_BACKEND_BYTES", "2147483648", whole(1024 ** 2, 64 * 1024 ** 3, "bytes"),
         "etcd's backend quota in bytes (passed as --quota-backend-bytes; the agent's maintenance sizes itself "
         "by it); etcd maps the whole database into memory, so the default (etcd's, 2 GiB) suits the smallest "
         "instance types and a larger one needs the memory"),
    Spec("compaction_retention", "COMPACTION_RETENTION", "3600", seconds(60, 604800),
         "seconds of key history the leader keeps before compacting it (the mirror and watchers resume within "
         "it); under space pressure it keeps less"),
    Spec("corruption_check_interval", "CORRUPTION_CHECK_INTERVAL", "300", seconds(0, 86400),
         "seconds between the leader's comparisons of every member's key-value hash (HashKV); 0: never"),
    Spec("lifecycle_hook_name", "LIFECYCLE_HOOK_NAME", "", HOOK_NAME,
         "the group's termination lifecycle hook: once the member left, the agent completes the instance's "
         "lifecycle action (CONTINUE), with heartbeats while the leave runs; empty: none"),
    Spec("cfn_stack_name", "CFN_STACK_NAME", "", STACK,
         "with CFN_SIGNAL_RESOURCE: the stack the agent signals SUCCESS to, once per instance, when its member is "
         "a voter of a cluster with a leader (CreationPolicy, rolling UpdatePolicy); empty: no signal"),
    Spec("cfn_signal_resource", "CFN_SIGNAL_RESOURCE", "", LOGICAL_ID,
         "the logical id the signal is for (the templates' AutoScalingGroup); empty: no signal"),
    Spec("cloudwatch_namespace", "CLOUDWATCH_NAMESPACE", "", NAMESPACE,
         "the leader puts a HealthyLeader data point (dimension ClusterName=CLUSTER_NAME) in this CloudWatch "
         "namespace every minute, for an alarm on its absence; empty: none"),
)


def _shown(raw: str) -> str:
    """``raw`` quoted for an error line: shortened, so that a whole file pasted by mistake stays one line."""
    return repr(raw) if len(raw) <= 80 else repr(raw[:77]) + "…"


def add_agent_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per agent setting to ``parser`` (default: unset, so env applies)."""
    for spec in SPECS:
        parser.add_argument(spec.flag, dest=spec.field, default=None,
                            help=f"{spec.help}; {spec.parse.allowed} (env {spec.env}, default {spec.default!r})")


def load_agent_settings(flags: Mapping[str, Any], environ: Mapping[str, str]) -> AgentSettings:
    """Build :class:`AgentSettings` from parsed flags (field -> str|None) and an environment.

    Raises:
        ConfigError: a value does not parse or validate; the message names the flag
            or environment variable it came from, and the offending value.
    """
    values: dict[str, Any] = {}
    notices = []
    for spec in SPECS:
        old, flag_value = spec.old_env, flags.get(spec.field)
        if old is not None and environ.get(old, "") != "":
            if environ.get(spec.env, "") not in ("", environ[old]):
                raise ConfigError(f"{old} and {spec.env} are both set, to different values: set {spec.env} only "
                                  f"({old} is its deprecated name)")
            notices.append(f"{old} is deprecated: use {spec.env}")
        if flag_value is not None:
            source, raw = spec.flag, str(flag_value)
        elif environ.get(spec.env, "") != "":
            source, raw = spec.env, environ[spec.env]
        elif old is not None and environ.get(old, "") != "":
            source, raw = old, environ[old]
        else:
            source, raw = f"{spec.env} (default)", spec.default
        try:
            values[spec.field] = spec.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc} (got {_shown(raw)})") from None
    ports = [values[f] for f in ("status_port", "client_port", "peer_port", "metrics_port")]
    if len(set(ports)) != len(ports):
        raise ConfigError(f"STATUS_PORT, CLIENT_PORT, PEER_PORT, METRICS_PORT must differ (got {ports})")
    if values["housekeeping_ttl"] <= 2 * values["loop_interval"]:
        # The leader renews the housekeeping lease once a cycle; a shorter TTL would lapse between two.
        raise ConfigError(f"HOUSEKEEPING_TTL ({values['housekeeping_ttl']} s) must exceed twice LOOP_INTERVAL "
                          f"({values['loop_interval']:g} s): the leader renews its lease once a cycle")
    service = values["dns_service_name"]
    if service is not None and values["hosted_zone"] is None:
        raise ConfigError("DNS_SERVICE_NAME needs HOSTED_ZONE (the zone its read record goes in)")
    if service is not None and service == values["cluster_name"].lower():
        # Route53 refuses a latency record and a simple record of the same name and type.
        raise ConfigError(f"DNS_SERVICE_NAME must differ from CLUSTER_NAME (both {service!r}): the read record "
                          "would collide with the cluster's own _etcd-client record")
    client_tls = files_from(values["client_ca_file"], values["client_cert_file"], values["client_key_file"],
                                ("CLIENT_CA_FILE", "CLIENT_CERT_FILE", "CLIENT_KEY_FILE"))
    peer_tls = files_from(values["peer_ca_file"], values["peer_cert_file"], values["peer_key_file"],
                              ("PEER_CA_FILE", "PEER_CERT_FILE", "PEER_KEY_FILE"))
    if peer_tls is not None and client_tls is None:
        # The agent reaches members on their client port; TLS between members only would still send
        # the credentials and the keys in clear on the client port.
        raise ConfigError("PEER_CA_FILE, PEER_CERT_FILE and PEER_KEY_FILE need CLIENT_CA_FILE, CLIENT_CERT_FILE and "
                          "CLIENT_KEY_FILE (TLS between members only would leave the client port in clear)")
    if values["advertise_address"] == "public" and len(values["active_regions"]) < 2:
        # Within one region the private addresses route; public ones would only add NAT and rules.
        raise ConfigError("ADVERTISE_ADDRESS=public needs ACTIVE_REGIONS with two regions or more (a cluster "
                          "across regions whose VPCs do not route to each other)")
    if values["mirror_prefix"] is not None:
        needs = [name for name, field in (("HOSTED_ZONE", "hosted_zone"), ("DNS_SERVICE_NAME", "dns_service_name"),
                                          ("APPLIANCE_CREDENTIALS_FILE", "credentials_file")) if values[field] is None]
        if needs:
            # The source is found through the read records; the modes need authentication.
            raise ConfigError(f"MIRROR_PREFIX needs {', '.join(needs)} (the other region's cluster is found by "
                              "its read record, and the modes need the users)")
        if values["active_regions"]:
            raise ConfigError("MIRROR_PREFIX and ACTIVE_REGIONS exclude each other: a cluster across regions "
                              "is one cluster, regional clusters are linked by the mirror")
    if (values["cfn_stack_name"] is None) != (values["cfn_signal_resource"] is None):
        raise ConfigError("CFN_STACK_NAME and CFN_SIGNAL_RESOURCE go together: set both for a CloudFormation "
                          "signal, or neither")
    values["etcd_environment"] = etcd_environment(environ, values["etcd_binary"])
    return AgentSettings(**values, notices=tuple(notices))


def etcd_environment(environ: Mapping[str, str], binary: str) -> tuple[tuple[str, str], ...]:
    """The ``ETCD_*`` variables of ``environ`` that etcd gets: (name, value) pairs, sorted by name. Empty ones
    count as unset (etcd ignores them too); the agent's own settings and their deprecated names are not passed.
    ``binary --help`` is run only when a variable needs checking against its flags.

    Raises:
        ConfigError: a variable names a flag the agent sets (saying what to use instead), or one the binary does
            not know, or the binary cannot list its flags (naming APPLIANCE_ETCD_BINARY).
    """
    settings = {spec.env for spec in SPECS}
    names = sorted(name for name, value in environ.items() if name.startswith(etcd_flags.PREFIX) and value != "")
    verdicts = [etcd_flags.classify(name, settings=settings) for name in names]
    refused = next((v for v in verdicts if v.kind is etcd_flags.Kind.OWNED), None)
    if refused is not None:
        raise ConfigError(refused.message())
    unchecked = [v.variable for v in verdicts if v.kind is etcd_flags.Kind.UNKNOWN]
    known = binary_flags(binary) if unchecked else frozenset()
    for name in unchecked:
        verdict = etcd_flags.classify(name, known, settings)
        if verdict.kind is etcd_flags.Kind.UNKNOWN:
            raise ConfigError(verdict.message(binary))
    passed = tuple((v.variable, environ[v.variable]) for v in
                   (etcd_flags.classify(name, known, settings) for name in names) if v.kind is etcd_flags.Kind.PASSED)
    _check_timing(dict(passed))
    return passed


def _check_timing(passed: Mapping[str, str]) -> None:
    """etcd refuses to start (and would restart for ever) unless both are whole milliseconds, the election timeout
    at most 50000 and at least 5 heartbeats (etcd's ``embed.Config.Validate``): refused here in one line instead.

    Raises:
        ConfigError: naming the variable.
    """
    values = {}
    for name, default in (("ETCD_HEARTBEAT_INTERVAL", "100"), ("ETCD_ELECTION_TIMEOUT", "1000")):
        text = passed.get(name, default).strip()
        if not (text.isascii() and text.isdigit() and 0 < int(text) <= 50000):
            raise ConfigError(f"{name}: must be whole milliseconds from 1 to 50000 (got {_shown(text)})")
        values[name] = int(text)
    heartbeat, election = values["ETCD_HEARTBEAT_INTERVAL"], values["ETCD_ELECTION_TIMEOUT"]
    if election < 5 * heartbeat:
        raise ConfigError(f"ETCD_ELECTION_TIMEOUT ({election} ms) must be at least 5 times ETCD_HEARTBEAT_INTERVAL "
                          f"({heartbeat} ms): etcd refuses to start otherwise")


def log_notices(settings: AgentSettings) -> None:
    """Log the settings' notices (a deprecated variable name), each once, as warnings."""
    for notice in settings.notices:
        log.warning("%s", notice)
