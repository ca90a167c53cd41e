"""How often the agent lists the AWS groups: often while something changes, rarely while calm.

A listing costs two AWS calls a region (DescribeAutoScalingGroups, DescribeInstances). The leader
lists every ``BUSY_LISTING_INTERVAL`` seconds while a member is unhealthy, gone, a learner or not
yet listed, and every ``LISTING_INTERVAL`` seconds while calm; an agent without a running etcd,
or whose member lost its quorum, lists often (which instances are there decides seeding and
recovery); any other agent only asks for its own lifecycle state, once per ``LISTING_INTERVAL``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Sequence

from appliance.model.errors import AwsPermissionError
from appliance.model.instances import Listing

log = logging.getLogger("agent")

BUSY_LISTING_INTERVAL = 2.0  # seconds between AWS listings while something is changing


class ListingCadence:
    """The agent's latest listing and when to take the next.

    Args:
        discovery: :class:`~appliance.adapters.aws.discovery.Discovery` (``list``, ``own_lifecycle_state``).
        interval: ``LISTING_INTERVAL`` in seconds. clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, discovery, interval: float, clock: Callable[[], float] = time.monotonic):
        self.discovery = discovery
        self.interval = interval
        self.clock = clock
        self.listing: Listing | None = None
        self.listed_at = -math.inf
        self.own_state: str | None = None  # this instance's ASG lifecycle state, asked by non-leaders
        self.calm = False  # nothing is changing, as the leader's housekeeping last saw (the loop sets it)

    def start_with(self, listing: Listing) -> None:
        """The first listing, taken at start-up."""
        self.listing, self.listed_at = listing, self.clock()

    def observe(self, running: bool, leading: bool, quorum_lost: bool, members: Sequence[str]) -> Listing | None:
        """The listing to decide on this cycle: a new one when due, else the last.

        Args:
            running: etcd runs here. leading: its member led at the last look.
            quorum_lost: no member has been seeing a leader. members: the members' names, whose
                instances EC2 is asked about when the groups no longer list them.
        """
        now = self.clock()
        if not running:
            due = BUSY_LISTING_INTERVAL
        elif leading:
            due = self.interval if self.calm else BUSY_LISTING_INTERVAL
        elif quorum_lost:
            due = BUSY_LISTING_INTERVAL  # which instances are present decides the recovery
        else:
            # Non-leaders need only their own lifecycle state, one call per interval.
            if now - self.listed_at >= self.interval:
                self.listed_at = now
                try:
                    self.own_state = self.discovery.own_lifecycle_state()
                except AwsPermissionError as exc:
                    log.error("%s", exc)
            return self.listing
        if now - self.listed_at >= due:
            try:
                self.listing = self.discovery.list(confirm=[name for name in members if name.startswith("i-")])
            except AwsPermissionError as exc:
                # Fatal at start-up (exit 2); once etcd serves, a revoked permission must
                # not stop it: the listing is unknown, so nothing is seeded or removed.
                log.error("%s", exc)
                self.listing = Listing.unknown(str(exc))
            self.listed_at = now
            if not self.listing.complete:
                log.warning("AWS listing incomplete: %s", self.listing.problem)
        return self.listing
