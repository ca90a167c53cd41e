"""``sim up --hook-timeout``: AWS's bounds for a lifecycle hook's HeartbeatTimeout, 30 to 7200 whole seconds."""

import pytest

from appliance.model.errors import ConfigError
from appliance.sim.up import hook_timeout


@pytest.mark.parametrize("seconds", [30, 300, 7200, 60.0])
def test_accepted(seconds):
    assert hook_timeout(seconds) == int(seconds)


@pytest.mark.parametrize("seconds", [29, 0, -30, 7201, 30.5])
def test_refused_in_one_line_naming_the_flag(seconds):
    with pytest.raises(ConfigError, match=r"^--hook-timeout: must be 30 to 7200 seconds, as AWS allows \(got "):
        hook_timeout(seconds)
