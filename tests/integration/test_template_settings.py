"""The templates hand the agent its settings through ``-e NAME=${Parameter}`` in UserData: each such parameter's
default, allowed values and range must be ones the agent's grammar accepts, so that a stack that CloudFormation
accepts never gives the agent a value it refuses at start (after the instances are already running)."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.commands.settings import SPECS
from tests.integration.test_cloudformation import MULTIREGION, TEMPLATE, load

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
    assert {"GRACE_PERIOD", "HOSTED_ZONE", "SNAPSHOT_BUCKET"} <= set(passed), passed
    for env, name in passed.items():
        spec, parameter = BY_ENV[env], template["Parameters"][name]
        for value in [parameter.get("Default")] + list(parameter.get("AllowedValues", [])):
            if value is not None:
                spec.parse(str(value))  # raises ValueError naming what is allowed
        if parameter["Type"] == "Number":
            # A number parameter needs both ends: CloudFormation would otherwise pass 1e9 or -5 along.
            assert "MinValue" in parameter and "MaxValue" in parameter, (path.name, name)
            low, high = spec.parse.bounds
            assert low <= float(parameter["MinValue"]) and float(parameter["MaxValue"]) <= high, (name, spec.env)
            spec.parse(str(parameter["MinValue"]))
            spec.parse(str(parameter["MaxValue"]))


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
