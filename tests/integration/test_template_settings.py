"""The templates hand the agent its settings through ``-e NAME=${Parameter}`` in UserData: each such parameter's
default, allowed values and range must be ones the agent's grammar accepts, so that a stack that CloudFormation
accepts never gives the agent a value it refuses at start (after the instances are already running)."""

import re

import pytest

from appliance.commands.settings import SPECS
from tests.integration.test_cloudformation import MULTIREGION, TEMPLATE, load

BY_ENV = {spec.env: spec for spec in SPECS}


def _passed_settings(template) -> dict[str, str]:
    """setting (environment variable) -> the template parameter it is given, from the UserData's text."""
    text = str(template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"])
    return {env: param for env, param in re.findall(r"-e ([A-Z_]+)=\$\{([A-Za-z]+)\}", text)
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
