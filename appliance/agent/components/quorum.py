"""How long this member has been running without any member seeing a leader (the quorum-loss timer).

The recovery rule (:mod:`appliance.rules.recovery`) waits ``QUORUM_LOSS_WAIT`` seconds of it
before it restarts a survivor as a one-member cluster.
"""

from __future__ import annotations

import time
from typing import Callable


class QuorumTimer:
    """Seconds since quorum was first seen lost, None while a leader is known. ``clock``: monotonic seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.since: float | None = None

    def observe(self, running: bool, leader_known: bool) -> float | None:
        """Seconds etcd has run here with no member seeing a leader; None while one does (or etcd is stopped)."""
        if not running or leader_known:
            self.since = None
            return None
        now = self.clock()
        if self.since is None:
            self.since = now
        return now - self.since

    @property
    def lost(self) -> bool:
        return self.since is not None

    def reset(self) -> None:
        """A recovery restarted the member: count afresh."""
        self.since = None
