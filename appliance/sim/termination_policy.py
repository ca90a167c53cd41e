"""Which instances a scale-in takes: the part of Auto Scaling's default termination policy the simulator can play.

Source: EC2 Auto Scaling user guide, "Configure termination policies" (the default policy). AWS, for each
instance to take out: (1) picks the Availability Zone with the most instances not protected from scale-in;
(2) with a mixed instances policy, follows the allocation strategy; (3) prefers instances launched from the
oldest launch template or configuration (a launch configuration counting as older than any template);
(4) then the one closest to the next billing hour; (5) then one at random.

Emulated here: (1); (2) does not apply (the templates use no mixed instances policy); (3) as the lowest
launch template version number (a version given as ``$Latest``/``$Default`` counts as new, since the number
it stood for at launch is unknown); (4) simplified to the oldest launch time, the billing hour meaning
nothing on a loopback; (5) replaced by the instance id, so that a test knows which instance goes.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One instance of the group as the policy sees it.

    Attributes:
        instance_id: e.g. ``i-0abc…``.
        availability_zone: e.g. ``eu-central-1a``.
        launch_time: seconds since the epoch (EC2's LaunchTime).
        template_version: the launch template version it was launched from, None where it came from a
            launch configuration, or ``math.inf`` where the version is not a number.
        protected: ProtectedFromScaleIn (never chosen).
    """

    instance_id: str
    availability_zone: str
    launch_time: float
    template_version: float | None = math.inf
    protected: bool = False


def template_version(text: str | None) -> float:
    """A launch template version from an AWS answer (``"3"``, ``"$Latest"``) as a number to compare."""
    return float(text) if text and text.isdigit() else math.inf


def choose(candidates: list[Candidate], count: int) -> list[str]:
    """The ids of the ``count`` instances a scale-in terminates, in the order it picks them.

    Each pick is made on what the previous picks left, as AWS rebalances the zones one instance at a time.
    Fewer than ``count`` come back when fewer unprotected instances exist.
    """
    left = [c for c in candidates if not c.protected]
    chosen: list[str] = []
    while left and len(chosen) < count:
        per_zone = Counter(c.availability_zone for c in left)
        most = max(per_zone.values())
        # Among zones tied for the most instances AWS picks one at random; the name keeps tests exact.
        zone = min(z for z, n in per_zone.items() if n == most)
        pick = min((c for c in left if c.availability_zone == zone),
                   key=lambda c: (-1.0 if c.template_version is None else c.template_version, c.launch_time,
                                  c.instance_id))
        chosen.append(pick.instance_id)
        left.remove(pick)
    return chosen
