"""The leader's security group rules of a cluster stretched across regions (:mod:`appliance.rules.peer_access`).

The groups are read only when the listed addresses or the members' hosts changed since the last
success, or every :data:`PEER_ACCESS_REFRESH` seconds (to repair a hand edit), so that a quiet
cluster costs one DescribeSecurityGroups per region every few minutes. Additions come before
revocations.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

from appliance.adapters.aws import security_groups
from appliance.adapters.aws.security_groups import SecurityGroups
from appliance.agent.components.reasons import ReasonLog
from appliance.model.observation import Observation
from appliance.rules import peer_access

log = logging.getLogger("agent")

PEER_ACCESS_REFRESH = 300.0  # seconds between reads of unchanged security groups (repairs hand edits)


class PeerAccess:
    """Keeps every region's group at exactly the other regions' instances and members.

    Args:
        groups: the active regions' security groups. clock: monotonic seconds.
    """

    def __init__(self, groups: SecurityGroups, clock: Callable[[], float] = time.monotonic):
        self.groups = groups
        self.clock = clock
        # What the rules were last brought to (listed addresses, member hosts), and when.
        self.basis: tuple | None = None
        self.synced_at = -math.inf
        self.reason = ReasonLog(log, "peer access")

    def tick(self, s: Observation) -> str:
        """On the leader, after a complete listing: bring the groups' rules to the plan; returns why."""
        if s.listing is None or not s.listing.complete or s.cluster is None:
            return self.reason.last
        hosts = frozenset(h for m in s.cluster.members for h in m.peer_hosts)
        basis = (frozenset((i.region, i.address) for i in s.listing.instances), hosts)
        if basis == self.basis and self.clock() - self.synced_at < PEER_ACCESS_REFRESH:
            return self.reason.last
        try:
            access = peer_access.plan(self.groups.observe(), s.listing, hosts)
            for change in access.changes:
                self.groups.apply(change)
            outcome = access.reason
            self.basis, self.synced_at = basis, self.clock()
        except security_groups.ERRORS as exc:
            outcome = f"security groups unchanged, retrying after the next listing: {exc}"
        self.reason.say(outcome)
        return outcome
