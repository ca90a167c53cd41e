"""Settings: each bad value names its variable or flag."""

import pytest

from appliance.commands.settings import load_agent_settings
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode

GOOD = {"DATA_DIR": "/tmp/etcd-data", "APPLIANCE_ETCD_BINARY": "/bin/sh"}


def test_defaults_and_env():
    s = load_agent_settings({}, {**GOOD, "GRACE_PERIOD": "7.5"})
    assert s.grace_period == 7.5 and s.status_port == 2378 and s.client_port == 2379
    assert s.etcd_binary == "/bin/sh"


def test_flag_wins_over_env():
    s = load_agent_settings({"grace_period": "9"}, {**GOOD, "GRACE_PERIOD": "7"})
    assert s.grace_period == 9


@pytest.mark.parametrize("env,words", [
    ({"GRACE_PERIOD": "soon"}, "GRACE_PERIOD: must be a number of seconds from 0 to 86400 (got 'soon')"),
    ({"GRACE_PERIOD": "-1"}, "GRACE_PERIOD: must be a number of seconds from 0 to 86400"),
    ({"STATUS_PORT": "70000"}, "STATUS_PORT: must be a TCP port"),
    ({"DATA_DIR": "relative/dir"}, "DATA_DIR: must be an absolute path"),
    ({"APPLIANCE_ETCD_BINARY": "/nonexistent/etcd"}, "APPLIANCE_ETCD_BINARY: must be an executable regular file"),
    ({"CLUSTER_NAME": "bad name!"}, "CLUSTER_NAME: must be"),
    ({"HOUSEKEEPING_TTL": "1"}, "HOUSEKEEPING_TTL: must be a whole number of seconds from 5 to 3600"),
    ({"STATUS_PORT": "2379"}, "must differ"),
    ({"SNAPSHOT_BUCKET": "Bad_Bucket"}, "SNAPSHOT_BUCKET: must be an S3 bucket name"),
    ({"SNAPSHOT_PREFIX": "/etcd/"}, "SNAPSHOT_PREFIX: must be empty or an S3 key prefix"),
    ({"SNAPSHOT_PREFIX": "etcd"}, "SNAPSHOT_PREFIX: must be empty or an S3 key prefix"),
    ({"SNAPSHOT_INTERVAL": "0"}, "SNAPSHOT_INTERVAL: must be a number of seconds from 60 to 604800"),
    ({"SNAPSHOT_KEEP": "0"}, "SNAPSHOT_KEEP: must be a whole number of snapshots from 1 to 100000"),
    ({"SNAPSHOT_KEEP_DAYS": "-1"}, "SNAPSHOT_KEEP_DAYS: must be a whole number of days from 0 to 3650"),
    ({"QUORUM_RECOVERY": "sometimes"}, "QUORUM_RECOVERY: must be auto or manual"),
    ({"QUORUM_LOSS_WAIT": "-5"}, "QUORUM_LOSS_WAIT: must be a number of seconds from 0 to 3600"),
    ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT: must be text or json (got 'yaml')"),
    ({"LOG_FORMAT": "logfmt"}, "LOG_FORMAT: must be text or json"),
])
def test_bad_values_name_their_variable(env, words):
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, **env})
    assert words in str(caught.value)
    assert caught.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize("flags,env,fmt", [
    pytest.param({}, {}, "text", id="default"),
    pytest.param({}, {"LOG_FORMAT": "json"}, "json", id="env"),
    pytest.param({}, {"LOG_FORMAT": "JSON"}, "json", id="env-any-case"),
    pytest.param({"log_format": "text"}, {"LOG_FORMAT": "json"}, "text", id="flag-wins"),
])
def test_log_format(flags, env, fmt):
    assert load_agent_settings(flags, {**GOOD, **env}).log_format == fmt


def test_bad_log_format_flag_names_the_flag():
    with pytest.raises(ConfigError, match="--log-format: must be text or json"):
        load_agent_settings({"log_format": "xml"}, GOOD)


def test_bad_flag_names_the_flag():
    with pytest.raises(ConfigError, match="--loop-interval: must be a number of seconds from 0.1 to 300"):
        load_agent_settings({"loop_interval": "0"}, GOOD)


@pytest.mark.parametrize("raw,regions", [
    pytest.param("", (), id="unset"),
    pytest.param("eu-central-1", ("eu-central-1",), id="one"),
    pytest.param("eu-central-1, eu-west-1,us-gov-west-1", ("eu-central-1", "eu-west-1", "us-gov-west-1"),
                 id="several-with-spaces"),
])
def test_active_regions(raw, regions):
    assert load_agent_settings({}, {**GOOD, "ACTIVE_REGIONS": raw}).active_regions == regions


@pytest.mark.parametrize("raw", [
    pytest.param("eu-central-1,eu-central-1", id="twice"),
    pytest.param("Frankfurt", id="not-a-region"),
    pytest.param("eu-central", id="no-number"),
    pytest.param("eu-central-1;eu-west-1", id="semicolon"),
])
def test_bad_active_regions(raw):
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, "ACTIVE_REGIONS": raw})
    assert "ACTIVE_REGIONS: must be AWS regions separated by commas" in str(caught.value)


@pytest.fixture
def credentials_file(tmp_path):
    from appliance.adapters.credentials import create_credentials
    path = str(tmp_path / "credentials.json")
    create_credentials(path)
    return path


def test_mirror_prefix_with_what_it_needs(credentials_file):
    s = load_agent_settings({}, {**GOOD, "MIRROR_PREFIX": "/config/", "HOSTED_ZONE": "example.org",
                                 "DNS_SERVICE_NAME": "etcd", "CLUSTER_NAME": "etcd-eu-central-1",
                                 "APPLIANCE_CREDENTIALS_FILE": credentials_file})
    assert s.mirror_prefix == "/config/"
    assert load_agent_settings({}, GOOD).mirror_prefix is None


@pytest.mark.parametrize("env,words", [
    pytest.param({"MIRROR_PREFIX": "config/"}, "MIRROR_PREFIX: must be a key prefix", id="relative"),
    pytest.param({"MIRROR_PREFIX": "/"}, "MIRROR_PREFIX: must be a key prefix", id="everything"),
    pytest.param({"MIRROR_PREFIX": "/__appliance/x/"}, "not overlapping /__appliance/", id="bookkeeping"),
    pytest.param({"MIRROR_PREFIX": "/config/"}, "MIRROR_PREFIX needs HOSTED_ZONE, DNS_SERVICE_NAME, "
                 "APPLIANCE_CREDENTIALS_FILE", id="alone"),
    pytest.param({"MIRROR_PREFIX": "/config/", "HOSTED_ZONE": "example.org", "DNS_SERVICE_NAME": "etcd-svc"},
                 "MIRROR_PREFIX needs APPLIANCE_CREDENTIALS_FILE", id="no-credentials"),
    pytest.param({"MIRROR_PREFIX": "/config/", "HOSTED_ZONE": "example.org", "DNS_SERVICE_NAME": "etcd-svc",
                  "APPLIANCE_CREDENTIALS_FILE": "{credentials}", "ACTIVE_REGIONS": "eu-central-1,eu-west-1"},
                 "MIRROR_PREFIX and ACTIVE_REGIONS exclude each other", id="stretched"),
])
def test_bad_mirror_prefix(env, words, credentials_file):
    env = {k: v.format(credentials=credentials_file) for k, v in env.items()}
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, **env})
    assert words in str(caught.value) and caught.value.exit_code == ExitCode.CONFIG


def test_advertise_address():
    assert not load_agent_settings({}, GOOD).advertise_public
    s = load_agent_settings({}, {**GOOD, "ADVERTISE_ADDRESS": "public", "ACTIVE_REGIONS": "eu-central-1,eu-west-1"})
    assert s.advertise_public


@pytest.mark.parametrize("env,words", [
    pytest.param({"ADVERTISE_ADDRESS": "elastic"}, "ADVERTISE_ADDRESS: must be private or public", id="unknown"),
    pytest.param({"ADVERTISE_ADDRESS": "public"}, "ADVERTISE_ADDRESS=public needs ACTIVE_REGIONS", id="one-region"),
])
def test_bad_advertise_address(env, words):
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, {**GOOD, **env})
    assert words in str(caught.value) and caught.value.exit_code == ExitCode.CONFIG


def test_snapshot_settings():
    settings = load_agent_settings({}, {**GOOD, "SNAPSHOT_BUCKET": "ops-etcd-backups", "SNAPSHOT_PREFIX": "prod/",
                                        "SNAPSHOT_INTERVAL": "600", "SNAPSHOT_KEEP": "10", "QUORUM_RECOVERY": "manual"})
    assert (settings.snapshot_bucket, settings.snapshot_prefix, settings.snapshot_interval, settings.snapshot_keep,
            settings.snapshot_keep_days, settings.quorum_recovery, settings.quorum_loss_wait) == \
        ("ops-etcd-backups", "prod/", 600.0, 10, 14, "manual", 60.0)
    assert load_agent_settings({}, GOOD).snapshot_bucket is None  # off unless asked for


def test_what_the_agent_tells_aws_is_off_by_default_and_on_with_its_names():
    assert (load_agent_settings({}, GOOD).lifecycle_hook_name, load_agent_settings({}, GOOD).cfn_stack_name,
            load_agent_settings({}, GOOD).cloudwatch_namespace) == (None, None, None)
    stack_id = "arn:aws:cloudformation:eu-central-1:123456789012:stack/etcd/0f3c0d70-8f27-11ef-b3c5-0a1b2c3d4e5f"
    s = load_agent_settings({}, {**GOOD, "LIFECYCLE_HOOK_NAME": "etcd-appliance-leave", "CFN_STACK_NAME": stack_id,
                                 "CFN_SIGNAL_RESOURCE": "AutoScalingGroup", "CLOUDWATCH_NAMESPACE": "EtcdAppliance"})
    assert (s.lifecycle_hook_name, s.cfn_stack_name, s.cfn_signal_resource, s.cloudwatch_namespace) == (
        "etcd-appliance-leave", stack_id, "AutoScalingGroup", "EtcdAppliance")


@pytest.mark.parametrize("env,words", [
    ({"CLOUDWATCH_NAMESPACE": "AWS/EC2"}, "CLOUDWATCH_NAMESPACE: must be a CloudWatch namespace"),
    ({"CLOUDWATCH_NAMESPACE": "x" * 256}, "not beginning with AWS/"),
    ({"LIFECYCLE_HOOK_NAME": "leave now"}, "LIFECYCLE_HOOK_NAME: must be a lifecycle hook name"),
    ({"LIFECYCLE_HOOK_NAME": "h" * 256}, "LIFECYCLE_HOOK_NAME: must be"),
    ({"CFN_STACK_NAME": "1stack", "CFN_SIGNAL_RESOURCE": "AutoScalingGroup"}, "CFN_STACK_NAME: must be"),
    ({"CFN_STACK_NAME": "etcd", "CFN_SIGNAL_RESOURCE": "Auto-Scaling"}, "CFN_SIGNAL_RESOURCE: must be"),
    ({"CFN_STACK_NAME": "etcd"}, "CFN_STACK_NAME and CFN_SIGNAL_RESOURCE go together"),
    ({"CFN_SIGNAL_RESOURCE": "AutoScalingGroup"}, "CFN_STACK_NAME and CFN_SIGNAL_RESOURCE go together"),
])
def test_bad_aws_names_name_their_variable(env, words):
    with pytest.raises(ConfigError) as failure:
        load_agent_settings({}, {**GOOD, **env})
    assert words in str(failure.value) and failure.value.exit_code == ExitCode.CONFIG
