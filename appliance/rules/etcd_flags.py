"""Which ``ETCD_*`` variables of the agent's environment reach etcd (pure).

etcd reads ``ETCD_<FLAG>`` (the flag's name upper-cased, ``-`` as ``_``) as its flag ``--<flag>``. The
agent passes such a variable on unchanged when the binary knows the flag and the agent does not set it
itself; etcd checks the value. Everything else is refused at start, so an operator never tunes a flag
that is silently overridden or ignored.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Collection, Mapping

PREFIX = "ETCD_"

# The flags the agent sets or forbids, by group, each with what to do instead. An entry ending in "*"
# covers every flag that starts with it.
OWNED: tuple[tuple[str, str], ...] = (
    # Who the member is and where its data lives: the agent names the member after its instance and
    # sets the data directory aside as a whole when the member is replaced (a separate WAL
    # directory would be left behind, holding another member's log).
    ("name", "leave it unset: the member is named after its instance"),
    ("data-dir", "use DATA_DIR"),
    ("wal-dir", "leave it unset: the WAL stays in DATA_DIR, which the agent sets aside as a whole"),
    # Addresses: the agent derives every URL from the instance's addresses and its ports.
    ("listen-metrics-urls", "use METRICS_PORT"),
    ("listen-*", "use CLIENT_PORT, PEER_PORT and ADVERTISE_ADDRESS"),
    ("advertise-*", "use CLIENT_PORT and ADVERTISE_ADDRESS"),
    ("initial-advertise-*", "use PEER_PORT and ADVERTISE_ADDRESS"),
    # Forming and repairing the cluster: the agent seeds, joins and recovers from the AWS listing;
    # another way of finding members would form a second cluster.
    ("initial-cluster-token", "use CLUSTER_NAME"),
    ("initial-cluster*", "leave it unset: the agent forms the cluster from the AWS listing"),
    ("force-new-cluster", "use QUORUM_RECOVERY (or etcd.py restore --own-data)"),
    ("strict-reconfig-check", "leave it unset: the agent relies on etcd refusing changes that break quorum"),
    ("discovery", "leave it unset: the agent finds the members in the AWS listing"),
    ("discovery-*", "leave it unset: the agent finds the members in the AWS listing"),
    # The inbound mirror's position relies on progress notifications every second.
    ("experimental-watch-progress-notify-interval", "leave it unset: the mirror relies on 1 s"),
    # TLS: the agent checks the files at start and uses the same ones as a client.
    ("cert-file", "use CLIENT_CERT_FILE"),
    ("key-file", "use CLIENT_KEY_FILE"),
    ("trusted-ca-file", "use CLIENT_CA_FILE"),
    ("client-cert-auth", "use CLIENT_CA_FILE (certificates are required whenever TLS is on)"),
    ("auto-tls", "use CLIENT_CA_FILE, CLIENT_CERT_FILE and CLIENT_KEY_FILE"),
    ("peer-cert-file", "use PEER_CERT_FILE"),
    ("peer-key-file", "use PEER_KEY_FILE"),
    ("peer-trusted-ca-file", "use PEER_CA_FILE"),
    ("peer-client-cert-auth", "use PEER_CA_FILE (certificates are required whenever TLS is on)"),
    ("peer-auto-tls", "use PEER_CA_FILE, PEER_CERT_FILE and PEER_KEY_FILE"),
    # Nothing turns TLS verification off (docs/design.md, "Nothing turns TLS verification off").
    ("experimental-peer-skip-client-san-verification", "leave it unset: nothing turns TLS verification off"),
    # A configuration file replaces every flag, the agent's too.
    ("config-file", "set ETCD_<FLAG> variables instead"),
    # The appliance runs members, never proxies.
    ("proxy*", "leave it unset: the appliance runs members, not proxies"),
    # The agent speaks to etcd through its JSON gateway only.
    ("enable-grpc-gateway", "leave it unset: the agent speaks to etcd through the gateway"),
    # The agent's leader compares the members' hashes by majority and replaces the odd one; etcd's own checks
    # raise CORRUPT, which stops the whole cluster until a human disarms it (docs/design.md, "Corrupt members").
    ("experimental-corrupt-check-time", "use CORRUPTION_CHECK_INTERVAL"),
    ("experimental-initial-corrupt-check", "use CORRUPTION_CHECK_INTERVAL"),
    ("experimental-compact-hash-check-*", "use CORRUPTION_CHECK_INTERVAL"),
    # A member that may lose acknowledged writes on a crash breaks every recovery rule (the survivor with the
    # highest revision is trusted to hold what it acknowledged).
    ("unsafe-no-fsync", "leave it unset: members must keep what they acknowledged"),
    # The agent's leader compacts (it keeps the history the mirror and watchers resume within).
    ("auto-compaction-mode", "use COMPACTION_RETENTION"),
    ("auto-compaction-retention", "use COMPACTION_RETENTION"),
    # Not settings: etcd would print and exit.
    ("help", "leave it unset: etcd would print its help and exit"),
    ("version", "leave it unset: etcd would print its version and exit"),
)

# The agent's own variables that once had the ETCD_ prefix: old name -> new name. The old ones still
# work (with a warning) and never reach etcd.
DEPRECATED: Mapping[str, str] = {
    "ETCD_BINARY": "APPLIANCE_ETCD_BINARY",
    "ETCD_CREDENTIALS_FILE": "APPLIANCE_CREDENTIALS_FILE",
}

# Variables etcd reads that are not flags (so its --help does not list them): etcd refuses to start
# on arm64 unless ETCD_UNSUPPORTED_ARCH names the architecture.
NOT_FLAGS = frozenset({"ETCD_UNSUPPORTED_ARCH"})

_NAME = re.compile(r"[A-Z0-9]+(_[A-Z0-9]+)*")


class Kind(enum.Enum):
    """What becomes of an ``ETCD_*`` variable."""

    PASSED = "passed"          # etcd gets it unchanged
    SETTING = "setting"        # the agent reads it as one of its settings (ETCD_QUOTA_BACKEND_BYTES)
    DEPRECATED = "deprecated"  # an old name of an agent setting (ETCD_BINARY): read by the agent, with a warning
    OWNED = "owned"            # the agent sets the flag itself, or forbids it: refused
    UNKNOWN = "unknown"        # the binary has no such flag: refused


@dataclasses.dataclass(frozen=True)
class Verdict:
    """``variable``'s :class:`Kind`; ``flag``: the etcd flag it stands for ("" if none); ``instead``: for OWNED,
    what to do instead, for DEPRECATED, the new name."""

    variable: str
    kind: Kind
    flag: str = ""
    instead: str = ""

    def message(self, binary: str = "the etcd binary") -> str:
        """One line saying what becomes of the variable and why; ``binary`` names the binary (for UNKNOWN)."""
        if self.kind is Kind.OWNED:
            return f"{self.variable} is set by the agent; {self.instead}"
        if self.kind is Kind.DEPRECATED:
            return f"{self.variable} is deprecated: use {self.instead}"
        if self.kind is Kind.UNKNOWN:
            if not self.flag:
                return f"{self.variable}: not an etcd flag (etcd reads ETCD_<FLAG>, the flag upper-cased, - as _)"
            return f"{self.variable}: {binary} has no flag --{self.flag} (etcd reads ETCD_<FLAG> as --<flag>)"
        if self.kind is Kind.SETTING:
            return f"{self.variable} is a setting of the agent"
        return f"{self.variable} is passed to etcd"


def flag_of(variable: str) -> str:
    """The etcd flag ``variable`` stands for (``ETCD_HEARTBEAT_INTERVAL`` -> ``heartbeat-interval``); "" when it
    is not of the form ``ETCD_<FLAG>`` with an upper-case flag (etcd reads no other)."""
    rest = variable[len(PREFIX):] if variable.startswith(PREFIX) else ""
    return rest.lower().replace("_", "-") if _NAME.fullmatch(rest) else ""


def owned(flag: str) -> str | None:
    """What to do instead of setting ``flag`` (see :data:`OWNED`), or None when the agent leaves it to etcd."""
    for pattern, instead in OWNED:
        if flag == pattern or pattern.endswith("*") and flag.startswith(pattern[:-1]):
            return instead
    return None


def classify(variable: str, known: Collection[str] = (), settings: Collection[str] = ()) -> Verdict:
    """What becomes of ``variable`` (an ``ETCD_*`` name).

    Args:
        known: the flags the etcd binary knows (names without ``--``); with none given, every variable that
            would depend on them is UNKNOWN, so a caller learns whether it needs them at all.
        settings: the agent's own variables (they are read as settings, never passed).
    """
    if variable in settings:
        return Verdict(variable, Kind.SETTING)
    if variable in DEPRECATED:
        return Verdict(variable, Kind.DEPRECATED, instead=DEPRECATED[variable])
    if variable in NOT_FLAGS:
        return Verdict(variable, Kind.PASSED)
    flag = flag_of(variable)
    instead = owned(flag) if flag else None
    if instead is not None:
        return Verdict(variable, Kind.OWNED, flag, instead)
    if flag and flag in known:
        return Verdict(variable, Kind.PASSED, flag)
    return Verdict(variable, Kind.UNKNOWN, flag)

