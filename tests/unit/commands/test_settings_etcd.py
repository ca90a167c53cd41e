"""etcd's own settings: ETCD_<FLAG> variables checked once against the agent's flags and the real binary's, the
quota, the compaction and corruption-check settings, and the old names of the agent's ETCD_ variables."""

import logging
import os
import pathlib

import pytest

from appliance.commands.settings import load_agent_settings, log_notices
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.sim.supervisor import etcd_binary

ETCD = etcd_binary()
ETCD_34 = str(pathlib.Path(__file__).resolve().parents[3] / ".cache" / "etcd-3.4" / "usr" / "bin" / "etcd")
GOOD = {"DATA_DIR": "/tmp/etcd-data", "APPLIANCE_ETCD_BINARY": "/bin/sh"}
needs_etcd = pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason=f"no etcd binary at {ETCD}")


def refused(env: dict, flags: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_agent_settings(flags or {}, {**GOOD, **env})
    assert caught.value.exit_code == ExitCode.CONFIG and "\n" not in str(caught.value)
    return str(caught.value)


def test_the_defaults():
    s = load_agent_settings({}, GOOD)
    assert (s.quota_backend_bytes, s.compaction_retention, s.corruption_check_interval) == (2 * 1024 ** 3, 3600, 300)
    assert s.etcd_environment == () and s.notices == ()


@pytest.mark.parametrize("variable, message", [
    ("ETCD_DATA_DIR", "ETCD_DATA_DIR is set by the agent; use DATA_DIR"),
    ("ETCD_NAME", "ETCD_NAME is set by the agent; leave it unset"),
    ("ETCD_INITIAL_CLUSTER", "ETCD_INITIAL_CLUSTER is set by the agent"),
    ("ETCD_AUTO_COMPACTION_RETENTION", "ETCD_AUTO_COMPACTION_RETENTION is set by the agent; use COMPACTION_RETENTION"),
    ("ETCD_CONFIG_FILE", "ETCD_CONFIG_FILE is set by the agent"),
])
def test_a_flag_the_agent_owns_is_refused_naming_it_without_running_the_binary(variable, message):
    # /bin/sh is no etcd: the refusal comes before any need of the binary's flags.
    assert refused({variable: "/x"}).startswith(message)


def test_an_empty_variable_counts_as_unset():
    assert load_agent_settings({}, {**GOOD, "ETCD_DATA_DIR": "", "ETCD_HEARTBEAT_INTERVAL": ""}).etcd_environment == ()


@needs_etcd
def test_the_variables_etcd_knows_are_passed_as_given_and_sorted():
    env = {**GOOD, "APPLIANCE_ETCD_BINARY": ETCD, "ETCD_HEARTBEAT_INTERVAL": "250", "ETCD_ELECTION_TIMEOUT": "2500",
           "ETCD_SNAPSHOT_COUNT": "not checked here", "ETCDCTL_API": "2", "ETCD_QUOTA_BACKEND_BYTES": "4294967296"}
    s = load_agent_settings({}, env)
    assert s.etcd_environment == (("ETCD_ELECTION_TIMEOUT", "2500"), ("ETCD_HEARTBEAT_INTERVAL", "250"),
                                  ("ETCD_SNAPSHOT_COUNT", "not checked here"))  # etcd checks its own values
    assert s.quota_backend_bytes == 4 * 1024 ** 3  # read by the agent, passed as --quota-backend-bytes


@needs_etcd
def test_a_variable_the_binary_does_not_know_is_refused_naming_it_and_the_binary():
    message = refused({"APPLIANCE_ETCD_BINARY": ETCD, "ETCD_NO_SUCH_FLAG": "1"})
    assert message == f"ETCD_NO_SUCH_FLAG: {ETCD} has no flag --no-such-flag (etcd reads ETCD_<FLAG> as --<flag>)"


@pytest.mark.skipif(not os.access(ETCD_34, os.X_OK), reason=f"no etcd 3.4 binary at {ETCD_34}")
def test_the_flags_are_the_binary_s_own():
    # 3.4 has --log-package-levels, 3.5 does not.
    env = {**GOOD, "ETCD_LOG_PACKAGE_LEVELS": "etcdserver=DEBUG"}
    assert load_agent_settings({}, {**env, "APPLIANCE_ETCD_BINARY": ETCD_34}).etcd_environment == (
        ("ETCD_LOG_PACKAGE_LEVELS", "etcdserver=DEBUG"),)
    if os.access(ETCD, os.X_OK):
        assert "has no flag --log-package-levels" in refused({**env, "APPLIANCE_ETCD_BINARY": ETCD})


def test_a_binary_that_cannot_list_its_flags_is_one_line_naming_the_setting():
    assert refused({"ETCD_HEARTBEAT_INTERVAL": "100"}).startswith("APPLIANCE_ETCD_BINARY: /bin/sh --help ")
    assert refused({"APPLIANCE_ETCD_BINARY": "/bin/true", "ETCD_HEARTBEAT_INTERVAL": "100"}) == \
        "APPLIANCE_ETCD_BINARY: /bin/true --help listed no etcd flags (exit code 0)"


@pytest.mark.parametrize("raw", ["nan", "inf", "-1", "1e400", "1e9", "2GiB", "1048575", "68719476737", "0x10"])
def test_a_quota_outside_its_grammar_is_refused(raw):
    assert refused({"ETCD_QUOTA_BACKEND_BYTES": raw}) == \
        f"ETCD_QUOTA_BACKEND_BYTES: must be a whole number of bytes from 1048576 to 68719476736 (got {raw!r})"


@pytest.mark.parametrize("raw, value", [("1048576", 1024 ** 2), ("8589934592", 8 * 1024 ** 3),
                                        ("68719476736", 64 * 1024 ** 3)])
def test_a_quota_within_its_grammar(raw, value):
    assert load_agent_settings({}, {**GOOD, "ETCD_QUOTA_BACKEND_BYTES": raw}).quota_backend_bytes == value
    assert load_agent_settings({"quota_backend_bytes": raw}, GOOD).quota_backend_bytes == value


@pytest.mark.parametrize("env, message", [
    ({"COMPACTION_RETENTION": "59"}, "COMPACTION_RETENTION: must be a number of seconds from 60 to 604800"),
    ({"COMPACTION_RETENTION": "nan"}, "COMPACTION_RETENTION: must be a number of seconds from 60 to 604800"),
    ({"CORRUPTION_CHECK_INTERVAL": "-1"}, "CORRUPTION_CHECK_INTERVAL: must be a number of seconds from 0 to 86400"),
    ({"CORRUPTION_CHECK_INTERVAL": "inf"}, "CORRUPTION_CHECK_INTERVAL: must be a number of seconds from 0 to 86400"),
])
def test_the_maintenance_settings_are_refused_outside_their_range(env, message):
    assert refused(env).startswith(message)


def test_the_maintenance_settings():
    s = load_agent_settings({}, {**GOOD, "COMPACTION_RETENTION": "600", "CORRUPTION_CHECK_INTERVAL": "0"})
    assert (s.compaction_retention, s.corruption_check_interval) == (600, 0)


def test_an_old_name_still_works_with_one_warning(caplog, tmp_path):
    s = load_agent_settings({}, {"DATA_DIR": "/tmp/etcd-data", "ETCD_BINARY": "/bin/sh"})
    assert s.etcd_binary == "/bin/sh" and s.etcd_environment == ()  # never passed, never an unknown flag
    assert s.notices == ("ETCD_BINARY is deprecated: use APPLIANCE_ETCD_BINARY",)
    with caplog.at_level(logging.WARNING):
        log_notices(s)
    assert [r.getMessage() for r in caplog.records] == ["ETCD_BINARY is deprecated: use APPLIANCE_ETCD_BINARY"]


def test_an_old_name_beside_the_new_one():
    same = load_agent_settings({}, {**GOOD, "ETCD_BINARY": "/bin/sh"})
    assert same.etcd_binary == "/bin/sh" and len(same.notices) == 1
    assert refused({"ETCD_BINARY": "/bin/true"}) == ("ETCD_BINARY and APPLIANCE_ETCD_BINARY are both set, to "
                                                      "different values: set APPLIANCE_ETCD_BINARY only (ETCD_BINARY "
                                                      "is its deprecated name)")


def test_the_old_credentials_name_still_works(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text('{"appliance": "secret"}')
    path.chmod(0o600)
    s = load_agent_settings({}, {**GOOD, "ETCD_CREDENTIALS_FILE": str(path)})
    assert s.credentials_file == str(path)
    assert s.notices == ("ETCD_CREDENTIALS_FILE is deprecated: use APPLIANCE_CREDENTIALS_FILE",)
    assert "ETCD_CREDENTIALS_FILE: must be a credentials file" in refused({"ETCD_CREDENTIALS_FILE": "/nonexistent"})


@needs_etcd
@pytest.mark.parametrize("env, message", [
    ({"ETCD_HEARTBEAT_INTERVAL": "300"}, "ETCD_ELECTION_TIMEOUT (1000 ms) must be at least 5 times "
                                         "ETCD_HEARTBEAT_INTERVAL (300 ms)"),
    ({"ETCD_HEARTBEAT_INTERVAL": "250", "ETCD_ELECTION_TIMEOUT": "1000"}, "must be at least 5 times"),
    ({"ETCD_ELECTION_TIMEOUT": "60000"}, "ETCD_ELECTION_TIMEOUT: must be whole milliseconds from 1 to 50000"),
    ({"ETCD_HEARTBEAT_INTERVAL": "nan"}, "ETCD_HEARTBEAT_INTERVAL: must be whole milliseconds"),
    ({"ETCD_HEARTBEAT_INTERVAL": "0"}, "ETCD_HEARTBEAT_INTERVAL: must be whole milliseconds"),
    ({"ETCD_ELECTION_TIMEOUT": "1e3"}, "ETCD_ELECTION_TIMEOUT: must be whole milliseconds"),
], ids=["heartbeat alone too long", "election too short", "election too long", "nan", "zero", "exponent"])
def test_a_heartbeat_and_election_timeout_etcd_would_refuse_are_refused_first(env, message):
    # etcd exits at once on these, and the agent would restart it for ever.
    assert message in refused({"APPLIANCE_ETCD_BINARY": ETCD, **env})
