"""Which ETCD_* variables reach etcd: passed when the binary knows the flag and the agent leaves it alone; the
agent's own flags refused, saying what to use instead; unknown ones refused; the agent's settings and the old
names of its variables never passed."""

import pytest

from appliance.rules import etcd_flags
from appliance.rules.etcd_flags import Kind, classify, flag_of

KNOWN = frozenset({"heartbeat-interval", "election-timeout", "snapshot-count", "data-dir", "name", "wal-dir",
                   "auto-compaction-mode", "quota-backend-bytes", "listen-client-urls", "peer-cert-allowed-cn",
                   "experimental-corrupt-check-time", "discovery-srv", "proxy-dial-timeout", "config-file"})
SETTINGS = frozenset({"ETCD_QUOTA_BACKEND_BYTES", "APPLIANCE_ETCD_BINARY", "DATA_DIR"})

CASES = [
    # variable, kind, what the one line says
    ("ETCD_HEARTBEAT_INTERVAL", Kind.PASSED, ""),
    ("ETCD_ELECTION_TIMEOUT", Kind.PASSED, ""),
    ("ETCD_SNAPSHOT_COUNT", Kind.PASSED, ""),
    ("ETCD_PEER_CERT_ALLOWED_CN", Kind.PASSED, ""),  # a peer-* flag the agent does not set
    ("ETCD_EXPERIMENTAL_CORRUPT_CHECK_TIME", Kind.OWNED, "use CORRUPTION_CHECK_INTERVAL"),
    ("ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK", Kind.OWNED, "use CORRUPTION_CHECK_INTERVAL"),
    ("ETCD_EXPERIMENTAL_COMPACT_HASH_CHECK_ENABLED", Kind.OWNED, "use CORRUPTION_CHECK_INTERVAL"),
    ("ETCD_ENABLE_GRPC_GATEWAY", Kind.OWNED, "through the gateway"),
    ("ETCD_UNSAFE_NO_FSYNC", Kind.OWNED, "keep what they acknowledged"),
    ("ETCD_UNSUPPORTED_ARCH", Kind.PASSED, ""),  # read by etcd, not a flag
    ("ETCD_QUOTA_BACKEND_BYTES", Kind.SETTING, "is a setting of the agent"),
    ("ETCD_BINARY", Kind.DEPRECATED, "ETCD_BINARY is deprecated: use APPLIANCE_ETCD_BINARY"),
    ("ETCD_CREDENTIALS_FILE", Kind.DEPRECATED, "ETCD_CREDENTIALS_FILE is deprecated: use APPLIANCE_CREDENTIALS_FILE"),
    ("ETCD_DATA_DIR", Kind.OWNED, "ETCD_DATA_DIR is set by the agent; use DATA_DIR"),
    ("ETCD_NAME", Kind.OWNED, "ETCD_NAME is set by the agent; leave it unset"),
    ("ETCD_WAL_DIR", Kind.OWNED, "sets aside as a whole"),
    ("ETCD_LISTEN_CLIENT_URLS", Kind.OWNED, "use CLIENT_PORT"),
    ("ETCD_LISTEN_METRICS_URLS", Kind.OWNED, "use METRICS_PORT"),
    ("ETCD_ADVERTISE_CLIENT_URLS", Kind.OWNED, "use CLIENT_PORT"),
    ("ETCD_INITIAL_ADVERTISE_PEER_URLS", Kind.OWNED, "use PEER_PORT"),
    ("ETCD_INITIAL_CLUSTER", Kind.OWNED, "AWS listing"),
    ("ETCD_INITIAL_CLUSTER_STATE", Kind.OWNED, "AWS listing"),
    ("ETCD_INITIAL_CLUSTER_TOKEN", Kind.OWNED, "use CLUSTER_NAME"),
    ("ETCD_FORCE_NEW_CLUSTER", Kind.OWNED, "use QUORUM_RECOVERY"),
    ("ETCD_STRICT_RECONFIG_CHECK", Kind.OWNED, "leave it unset"),
    ("ETCD_DISCOVERY", Kind.OWNED, "AWS listing"),
    ("ETCD_DISCOVERY_SRV", Kind.OWNED, "AWS listing"),
    ("ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL", Kind.OWNED, "the mirror relies on 1 s"),
    ("ETCD_CERT_FILE", Kind.OWNED, "use CLIENT_CERT_FILE"),
    ("ETCD_KEY_FILE", Kind.OWNED, "use CLIENT_KEY_FILE"),
    ("ETCD_TRUSTED_CA_FILE", Kind.OWNED, "use CLIENT_CA_FILE"),
    ("ETCD_CLIENT_CERT_AUTH", Kind.OWNED, "use CLIENT_CA_FILE"),
    ("ETCD_AUTO_TLS", Kind.OWNED, "use CLIENT_CA_FILE"),
    ("ETCD_PEER_CERT_FILE", Kind.OWNED, "use PEER_CERT_FILE"),
    ("ETCD_PEER_KEY_FILE", Kind.OWNED, "use PEER_KEY_FILE"),
    ("ETCD_PEER_TRUSTED_CA_FILE", Kind.OWNED, "use PEER_CA_FILE"),
    ("ETCD_PEER_CLIENT_CERT_AUTH", Kind.OWNED, "use PEER_CA_FILE"),
    ("ETCD_PEER_AUTO_TLS", Kind.OWNED, "use PEER_CA_FILE"),
    ("ETCD_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION", Kind.OWNED, "nothing turns TLS verification off"),
    ("ETCD_CONFIG_FILE", Kind.OWNED, "set ETCD_<FLAG> variables instead"),
    ("ETCD_PROXY", Kind.OWNED, "not proxies"),
    ("ETCD_PROXY_DIAL_TIMEOUT", Kind.OWNED, "not proxies"),
    ("ETCD_AUTO_COMPACTION_MODE", Kind.OWNED, "use COMPACTION_RETENTION"),
    ("ETCD_AUTO_COMPACTION_RETENTION", Kind.OWNED, "use COMPACTION_RETENTION"),
    ("ETCD_VERSION", Kind.OWNED, "print its version and exit"),
    ("ETCD_NO_SUCH_FLAG", Kind.UNKNOWN, "ETCD_NO_SUCH_FLAG: etcd has no flag --no-such-flag"),
    ("ETCD_heartbeat_interval", Kind.UNKNOWN, "not an etcd flag"),  # etcd reads upper-case names only
    ("ETCD_", Kind.UNKNOWN, "not an etcd flag"),
    ("ETCD__X", Kind.UNKNOWN, "not an etcd flag"),
]


@pytest.mark.parametrize("variable, kind, says", CASES, ids=[c[0] for c in CASES])
def test_what_becomes_of_an_etcd_variable(variable, kind, says):
    verdict = classify(variable, KNOWN, SETTINGS)
    assert verdict.kind is kind, verdict
    assert says in verdict.message("etcd") and "\n" not in verdict.message("etcd")


def test_without_the_binary_s_flags_every_variable_that_depends_on_them_is_unknown():
    # The caller runs `etcd --help` only when one of these remains.
    assert classify("ETCD_HEARTBEAT_INTERVAL").kind is Kind.UNKNOWN
    assert classify("ETCD_DATA_DIR").kind is Kind.OWNED
    assert classify("ETCD_BINARY").kind is Kind.DEPRECATED
    assert classify("ETCD_QUOTA_BACKEND_BYTES", settings=SETTINGS).kind is Kind.SETTING


@pytest.mark.parametrize("variable, flag", [
    ("ETCD_HEARTBEAT_INTERVAL", "heartbeat-interval"), ("ETCD_MAX_TXN_OPS", "max-txn-ops"),
    ("ETCD_V2_DEPRECATION", "v2-deprecation"), ("ETCD_lower", ""), ("HEARTBEAT_INTERVAL", ""), ("ETCD_A__B", ""),
])
def test_the_flag_a_variable_stands_for(variable, flag):
    assert flag_of(variable) == flag


def test_every_owned_entry_says_what_to_do_instead():
    for pattern, instead in etcd_flags.OWNED:
        assert pattern == pattern.lower() and instead.startswith(("use ", "leave it unset", "set ")), pattern


def test_the_old_names_are_never_etcd_flags_and_point_at_new_ones_without_the_prefix():
    for old, new in etcd_flags.DEPRECATED.items():
        assert old.startswith("ETCD_") and new.startswith("APPLIANCE_")
        assert classify(old, KNOWN | {flag_of(old)}).kind is Kind.DEPRECATED
