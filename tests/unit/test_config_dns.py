"""Settings of the Route53 records and the upgrade lock: HOSTED_ZONE (normalised to lower case with the
trailing dot, empty for none), DNS_TTL (1..86400) and UPGRADE_LOCK_TTL (5..3600, default 600); a bad value
is a ConfigError naming its variable or flag."""

import pytest

from appliance.config import load_agent_settings
from appliance.errors import EXIT_CONFIG, ConfigError

GOOD = {"DATA_DIR": "/tmp/etcd-data", "ETCD_BINARY": "/bin/sh"}


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
    assert caught.value.exit_code == EXIT_CONFIG


def test_hosted_zone_flag_wins_over_env():
    s = load_agent_settings({"hosted_zone": "Flag.Example.Org"}, {**GOOD, "HOSTED_ZONE": "env.example.org"})
    assert s.hosted_zone == "flag.example.org."


def test_bad_hosted_zone_flag_names_the_flag():
    with pytest.raises(ConfigError, match="--hosted-zone: must be a DNS zone name"):
        load_agent_settings({"hosted_zone": "bad zone!"}, GOOD)


@pytest.mark.parametrize("raw,ttl", [
    pytest.param("1", 1, id="lowest"), pytest.param("60", 60, id="default-value"),
    pytest.param("86400", 86400, id="highest"),
])
def test_dns_ttl(raw, ttl):
    assert load_agent_settings({}, {**GOOD, "DNS_TTL": raw}).dns_ttl == ttl


@pytest.mark.parametrize("raw,words", [
    pytest.param("0", "DNS_TTL: must be whole seconds between 1 and 86400", id="zero"),
    pytest.param("-5", "DNS_TTL: must be whole seconds between 1 and 86400", id="negative"),
    pytest.param("86401", "DNS_TTL: must be whole seconds between 1 and 86400", id="too-long"),
    pytest.param("1.5", "DNS_TTL: is malformed", id="fraction"),
    pytest.param("soon", "DNS_TTL: is malformed", id="word"),
])
def test_bad_dns_ttl(raw, words):
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, "DNS_TTL": raw})
    assert words in str(caught.value)


@pytest.mark.parametrize("raw,ttl", [
    pytest.param("5", 5, id="lowest"), pytest.param("600", 600, id="default-value"),
    pytest.param("3600", 3600, id="highest"),
])
def test_upgrade_lock_ttl(raw, ttl):
    assert load_agent_settings({}, {**GOOD, "UPGRADE_LOCK_TTL": raw}).upgrade_lock_ttl == ttl


@pytest.mark.parametrize("raw,words", [
    pytest.param("4", "UPGRADE_LOCK_TTL: must be whole seconds between 5 and 3600", id="too-short"),
    pytest.param("0", "UPGRADE_LOCK_TTL: must be whole seconds between 5 and 3600", id="zero"),
    pytest.param("3601", "UPGRADE_LOCK_TTL: must be whole seconds between 5 and 3600", id="too-long"),
    pytest.param("ten", "UPGRADE_LOCK_TTL: is malformed", id="word"),
])
def test_bad_upgrade_lock_ttl(raw, words):
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, "UPGRADE_LOCK_TTL": raw})
    assert words in str(caught.value)


def test_ttl_flags_win_over_env():
    s = load_agent_settings({"dns_ttl": "30", "upgrade_lock_ttl": "120"},
                            {**GOOD, "DNS_TTL": "300", "UPGRADE_LOCK_TTL": "900"})
    assert s.dns_ttl == 30 and s.upgrade_lock_ttl == 120


def test_bad_ttl_flag_names_the_flag():
    with pytest.raises(ConfigError, match="--upgrade-lock-ttl: must be whole seconds"):
        load_agent_settings({"upgrade_lock_ttl": "1"}, GOOD)
