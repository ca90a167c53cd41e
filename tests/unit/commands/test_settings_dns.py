"""Settings of the Route53 records and the upgrade lock: HOSTED_ZONE (normalised to lower case with the
trailing dot, empty for none), DNS_TTL (1..86400), UPGRADE_LOCK_TTL (5..3600, default 600) and
DNS_SERVICE_NAME (needs HOSTED_ZONE, differs from CLUSTER_NAME); a bad value is a ConfigError naming its
variable or flag."""

import pytest

from appliance.commands.settings import load_agent_settings
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode

GOOD = {"DATA_DIR": "/tmp/etcd-data", "APPLIANCE_ETCD_BINARY": "/bin/sh"}


def test_defaults():
    s = load_agent_settings({}, GOOD)
    assert s.hosted_zone is None and s.dns_ttl == 60 and s.upgrade_lock_ttl == 600


@pytest.mark.parametrize("raw,zone", [
    pytest.param("Example.ORG", "example.org.", id="mixed-case"),
    pytest.param("example.org.", "example.org.", id="trailing-dot"),
    pytest.param("sim.internal", "sim.internal.", id="internal"),
    pytest.param("org", "org.", id="one-label"),
    pytest.param("_srv.my-zone.example.org", "_srv.my-zone.example.org.", id="underscore-and-hyphen"),
    pytest.param("a" * 63 + ".org", "a" * 63 + ".org.", id="63-char-label"),
    pytest.param("", None, id="empty"),
])
def test_hosted_zone(raw, zone):
    assert load_agent_settings({}, {**GOOD, "HOSTED_ZONE": raw}).hosted_zone == zone


@pytest.mark.parametrize("raw", [
    pytest.param("bad zone!", id="space-and-bang"),
    pytest.param("example..org", id="empty-label"),
    pytest.param(".example.org", id="leading-dot"),
    pytest.param(".", id="root"),
    pytest.param("a" * 64 + ".org", id="64-char-label"),
    pytest.param("exa*mple.org", id="star"),
    pytest.param("example.org/", id="slash"),
])
def test_bad_hosted_zone_names_its_variable(raw):
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, "HOSTED_ZONE": raw})
    assert "HOSTED_ZONE: must be a DNS zone name" in str(caught.value)
    assert repr(raw) in str(caught.value)
    assert caught.value.exit_code == ExitCode.CONFIG


def test_hosted_zone_flag_wins_over_env():
    s = load_agent_settings({"hosted_zone": "Flag.Example.Org"}, {**GOOD, "HOSTED_ZONE": "env.example.org"})
    assert s.hosted_zone == "flag.example.org."


def test_bad_hosted_zone_flag_names_the_flag():
    with pytest.raises(ConfigError, match="--hosted-zone: must be a DNS zone name"):
        load_agent_settings({"hosted_zone": "bad zone!"}, GOOD)


@pytest.mark.parametrize("variable,field,raw,ttl", [
    pytest.param("DNS_TTL", "dns_ttl", "1", 1, id="dns-lowest"),
    pytest.param("DNS_TTL", "dns_ttl", "60", 60, id="dns-default-value"),
    pytest.param("DNS_TTL", "dns_ttl", "86400", 86400, id="dns-highest"),
    pytest.param("UPGRADE_LOCK_TTL", "upgrade_lock_ttl", "5", 5, id="lock-lowest"),
    pytest.param("UPGRADE_LOCK_TTL", "upgrade_lock_ttl", "600", 600, id="lock-default-value"),
    pytest.param("UPGRADE_LOCK_TTL", "upgrade_lock_ttl", "3600", 3600, id="lock-highest"),
])
def test_ttl(variable, field, raw, ttl):
    assert getattr(load_agent_settings({}, {**GOOD, variable: raw}), field) == ttl


DNS_RANGE = "DNS_TTL: must be a whole number of seconds from 1 to 86400"
LOCK_RANGE = "UPGRADE_LOCK_TTL: must be a whole number of seconds from 5 to 3600"


@pytest.mark.parametrize("variable,raw,words", [
    pytest.param("DNS_TTL", "0", DNS_RANGE, id="dns-zero"),
    pytest.param("DNS_TTL", "-5", DNS_RANGE, id="dns-negative"),
    pytest.param("DNS_TTL", "86401", DNS_RANGE, id="dns-too-long"),
    pytest.param("DNS_TTL", "1.5", DNS_RANGE, id="dns-fraction"),
    pytest.param("DNS_TTL", "soon", DNS_RANGE, id="dns-word"),
    pytest.param("UPGRADE_LOCK_TTL", "4", LOCK_RANGE, id="lock-too-short"),
    pytest.param("UPGRADE_LOCK_TTL", "0", LOCK_RANGE, id="lock-zero"),
    pytest.param("UPGRADE_LOCK_TTL", "3601", LOCK_RANGE, id="lock-too-long"),
    pytest.param("UPGRADE_LOCK_TTL", "ten", LOCK_RANGE, id="lock-word"),
])
def test_bad_ttl(variable, raw, words):
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, variable: raw})
    assert words in str(caught.value)


def test_ttl_flags_win_over_env():
    s = load_agent_settings({"dns_ttl": "30", "upgrade_lock_ttl": "120"},
                            {**GOOD, "DNS_TTL": "300", "UPGRADE_LOCK_TTL": "900"})
    assert s.dns_ttl == 30 and s.upgrade_lock_ttl == 120


def test_bad_ttl_flag_names_the_flag():
    with pytest.raises(ConfigError, match="--upgrade-lock-ttl: must be a whole number of seconds"):
        load_agent_settings({"upgrade_lock_ttl": "1"}, GOOD)


@pytest.mark.parametrize("environ,service", [
    pytest.param({}, None, id="unset"),
    pytest.param({"DNS_SERVICE_NAME": "Config", "HOSTED_ZONE": "example.org"}, "config", id="lower-cased"),
    pytest.param({"DNS_SERVICE_NAME": "config.eu.", "HOSTED_ZONE": "example.org"}, "config.eu", id="two-labels"),
])
def test_dns_service_name(environ, service):
    assert load_agent_settings({}, {**GOOD, **environ}).dns_service_name == service


@pytest.mark.parametrize("environ,words", [
    pytest.param({"DNS_SERVICE_NAME": "config"}, "DNS_SERVICE_NAME needs HOSTED_ZONE", id="no-zone"),
    pytest.param({"DNS_SERVICE_NAME": "etcd", "HOSTED_ZONE": "example.org"}, "must differ from CLUSTER_NAME",
                 id="same-as-the-cluster"),
    pytest.param({"DNS_SERVICE_NAME": "con fig", "HOSTED_ZONE": "example.org"},
                 "DNS_SERVICE_NAME: must be a DNS name", id="space"),
    pytest.param({"DNS_SERVICE_NAME": "-config", "HOSTED_ZONE": "example.org"},
                 "DNS_SERVICE_NAME: must be a DNS name", id="leading-hyphen"),
    pytest.param({"DNS_SERVICE_NAME": "a..b", "HOSTED_ZONE": "example.org"},
                 "DNS_SERVICE_NAME: must be a DNS name", id="empty-label"),
])
def test_bad_dns_service_name(environ, words):
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, **environ})
    assert words in str(caught.value)
