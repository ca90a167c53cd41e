"""Which instances a simulated scale-in takes (appliance/sim/termination_policy.py): the zone with the most
instances, then the oldest launch template version (a launch configuration first), then the oldest launch."""

import math

import pytest

from appliance.sim.termination_policy import Candidate, choose, template_version


def c(instance_id, zone="a", launched=0.0, version=1.0, protected=False):
    return Candidate(instance_id, zone, launched, version, protected)


@pytest.mark.parametrize("candidates,count,expected", [
    pytest.param([c("i-1", launched=3), c("i-2", launched=1), c("i-3", launched=2)], 1, ["i-2"],
                 id="oldest-launch"),
    pytest.param([c("i-1", launched=1, version=2), c("i-2", launched=2, version=1)], 1, ["i-2"],
                 id="oldest-template-version-before-oldest-launch"),
    pytest.param([c("i-1", version=1), c("i-2", version=None, launched=5)], 1, ["i-2"],
                 id="launch-configuration-first"),
    pytest.param([c("i-1", version=math.inf), c("i-2", version=3, launched=9)], 1, ["i-2"],
                 id="unknown-version-counts-as-new"),
    pytest.param([c("i-1", "a", launched=0), c("i-2", "b", launched=5), c("i-3", "b", launched=6)], 1, ["i-2"],
                 id="zone-with-most-instances-first"),
    pytest.param([c("i-1", "a", launched=0), c("i-2", "b", launched=5), c("i-3", "b", launched=6)], 2,
                 ["i-2", "i-1"], id="zones-rebalanced-pick-by-pick"),
    pytest.param([c("i-1", launched=0, protected=True), c("i-2", launched=5)], 1, ["i-2"],
                 id="protected-from-scale-in-never-chosen"),
    pytest.param([c("i-1", protected=True)], 1, [], id="nothing-to-choose"),
    pytest.param([c("i-2"), c("i-1")], 1, ["i-1"], id="ties-by-instance-id"),
    pytest.param([c("i-1"), c("i-2")], 0, [], id="none-asked"),
])
def test_choose(candidates, count, expected):
    assert choose(candidates, count) == expected


@pytest.mark.parametrize("text,number", [("3", 3.0), ("12", 12.0), ("$Latest", math.inf), ("$Default", math.inf),
                                         (None, math.inf)])
def test_template_version(text, number):
    assert template_version(text) == number
