"""The templates hand the agent its settings through ``-e NAME=${Parameter}`` in UserData: each such parameter's
default, allowed values and range must be ones the agent's grammar accepts, so that a stack that CloudFormation
accepts never gives the agent a value it refuses at start (after the instances are already running). etcd's own
flags (``ETCD_HEARTBEAT_INTERVAL``, ``ETCD_ELECTION_TIMEOUT``) are checked by etcd when it starts: there every
combination of values the template accepts must be one etcd accepts, or the instances would start an etcd that
exits at once. The senza definitions' patterns accept exactly the templates' ranges."""

import random
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.commands.settings import SPECS
from appliance.commands.values import whole
from tests.integration.cfn_resolve import rendered_user_data
from tests.integration.test_cloudformation import MULTIREGION, TEMPLATE, load
from tests.integration.test_senza import PAIRS

# etcd checks these two itself: a whole number of milliseconds, the election timeout at most 50000 ms
# (etcd's maxElectionMs) and at least 5 x the heartbeat interval (checked below, as a pair).
ETCD_FLAGS = {"ETCD_HEARTBEAT_INTERVAL": whole(1, 50000, "milliseconds"),
              "ETCD_ELECTION_TIMEOUT": whole(1, 50000, "milliseconds")}
BY_ENV = {spec.env: spec for spec in SPECS}


def _passed_settings(template) -> dict[str, str]:
    """setting (environment variable) -> the template parameter that is its whole value, from the UserData's text
    (``${TlsDirectory}/ca.pem`` is a path built from a parameter, checked by the agent at start)."""
    text = str(template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"])
    return {env: param for env, param in re.findall(r"-e ([A-Z_]+)=\$\{([A-Za-z]+)\}(?![^\s\\\\'\"])", text)
            if param in template["Parameters"]}


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_every_parameter_given_to_the_agent_stays_inside_its_setting_s_grammar(path):
    template = load(path)
    passed = _passed_settings(template)
    assert {"GRACE_PERIOD", "HOSTED_ZONE", "SNAPSHOT_BUCKET", "ETCD_QUOTA_BACKEND_BYTES", *ETCD_FLAGS} <= set(passed)
    for env, name in passed.items():
        parse, parameter = ETCD_FLAGS[env] if env in ETCD_FLAGS else BY_ENV[env].parse, template["Parameters"][name]
        for value in [parameter.get("Default")] + list(parameter.get("AllowedValues", [])):
            if value is not None:
                parse(str(value))  # raises ValueError naming what is allowed
        if parameter["Type"] == "Number":
            # A number parameter needs both ends: CloudFormation would otherwise pass 1e9 or -5 along.
            assert "MinValue" in parameter and "MaxValue" in parameter, (path.name, name)
            low, high = parse.bounds
            assert low <= float(parameter["MinValue"]) and float(parameter["MaxValue"]) <= high, (name, env)
            parse(str(parameter["MinValue"]))
            parse(str(parameter["MaxValue"]))


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_every_heartbeat_and_election_timeout_the_template_accepts_is_a_pair_etcd_accepts(path):
    parameters, passed = load(path)["Parameters"], _passed_settings(load(path))
    heartbeat, election = parameters[passed["ETCD_HEARTBEAT_INTERVAL"]], parameters[passed["ETCD_ELECTION_TIMEOUT"]]
    # etcd refuses to start with an election timeout under 5 x the heartbeat interval, or over 50000 ms.
    assert 5 * heartbeat["MaxValue"] <= election["MinValue"] and election["MaxValue"] <= 50000
    # etcd's tuning guide: the election timeout at least 10 x the round trip, the heartbeat about one round trip.
    assert election["Default"] >= 10 * heartbeat["Default"]


def _senza_ranges():
    for template_path, definition_path in PAIRS:
        template = load(template_path)
        definition = {k: v for p in yaml.safe_load(definition_path.read_text())["SenzaInfo"]["Parameters"]
                      for k, v in p.items()}
        for name, parameter in template["Parameters"].items():
            if parameter.get("Type") == "Number" and name in definition:
                yield pytest.param(parameter["MinValue"], parameter["MaxValue"], definition[name]["AllowedPattern"],
                                   id=f"{definition_path.name}-{name}")


@pytest.mark.parametrize("low, high, pattern", list(_senza_ranges()))
def test_a_senza_pattern_accepts_exactly_its_template_s_range(low, high, pattern):
    # senza's parameters are strings: the pattern stands for CloudFormation's MinValue and MaxValue.
    rng = random.Random(low ^ high)
    numbers = {low - 1, low, low + 1, high - 1, high, high + 1, 0, 10 ** 12}
    numbers |= {rng.randrange(10 ** (d - 1), 10 ** d) for d in range(1, 13) for _ in range(300)}
    for i in range(len(str(high))):  # every branch of a digit-by-digit pattern, around both ends
        for end in (str(high), str(low).rjust(len(str(high)), "0")):
            numbers |= {int(end[:i] + str(d) + fill * (len(end) - i - 1)) for d in range(10) for fill in "09"}
    for n in numbers:
        assert bool(re.fullmatch(pattern, str(n))) == (low <= n <= high), (pattern, n)
    for text in ("", "-1", "1e3", " 100", "nan"):
        assert not re.fullmatch(pattern, text), text


# Text an operator may type into a parameter by mistake; what the agent's grammar refuses, the pattern must refuse.
SAMPLES = ["-example.org.", "example-.org.", "example..org.", "Example.org.", "exa mple.org.", "example.org",
           "etcd-", "-etcd", "etcd..svc", "etcd_svc", "a" * 64 + ".org.", "my..bucket", "-bucket", "bucket-",
           "ab", "UPPER", "bucket\n", "eu-central-1,eu-central-1", "nan", "1e400", "-1", "86401", "999999999"]


def _patterned(path):
    template = load(path)
    return [(BY_ENV[env], name, template["Parameters"][name]["AllowedPattern"])
            for env, name in _passed_settings(template).items() if "AllowedPattern" in template["Parameters"][name]]


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_no_pattern_lets_through_a_value_the_agent_would_refuse(path):
    checked = _patterned(path)
    assert len(checked) >= 3, checked
    for spec, name, pattern in checked:
        for text in SAMPLES:
            if spec.parse.refuses(text) and not (name == "ActiveRegions" and text == "eu-central-1,eu-central-1"):
                # (A region twice is beyond a pattern: the parameter's description says "each once".)
                assert re.fullmatch(pattern, text) is None, (path.name, name, text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="abcz019-._,/ \n", max_size=70))
def test_what_a_pattern_accepts_the_agent_accepts(text):
    for path in (TEMPLATE, MULTIREGION):
        for spec, name, pattern in _PATTERNS[path]:
            if re.fullmatch(pattern, text) and not (name == "ActiveRegions"):
                assert not spec.parse.refuses(text), (path.name, name, text)


_PATTERNS = {path: _patterned(path) for path in (TEMPLATE, MULTIREGION)}


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_every_setting_the_rendered_user_data_passes_is_one_the_agent_accepts(path):
    """The settings written as literals or pseudo parameters (the hook's name, the signal's stack and resource, the
    CloudWatch namespace), rendered as CloudFormation would, each parsed by the agent's own grammar."""
    template = load(path)
    parameters = {"HostedZone": "example.org.", "DockerImage": "registry.example.org/etcd-appliance:3.5.21-abc1234",
                  "ActiveRegions": "eu-central-1,eu-west-1", "TlsDirectory": "/etc/etcd-tls",
                  "AlarmTopicArn": "arn:aws:sns:eu-central-1:123456789012:etcd-alarms"}
    passed = dict(re.findall(r"-e ([A-Z_]+)=(\S*)", rendered_user_data(template, parameters)))
    assert {"LIFECYCLE_HOOK_NAME", "CFN_STACK_NAME", "CFN_SIGNAL_RESOURCE"} <= set(passed)
    assert passed["CLOUDWATCH_NAMESPACE"] == "EtcdAppliance"  # with AlarmTopicArn, in both templates
    for env, value in passed.items():
        if env.startswith("CLIENT_") and env.endswith("_FILE"):
            continue  # files on the instance, which the agent checks at start
        (ETCD_FLAGS[env] if env in ETCD_FLAGS else BY_ENV[env].parse)(value)  # raises ValueError naming the rule
