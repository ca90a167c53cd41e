"""Whether this agent must keep reading the upgrade lock: while it may hold it.

It may hold it after taking it (before it joins with a newer etcd), and once after start (a
restarted agent may hold it from before); it stops reading once the lock is released or seen held
by someone else. The leader reads the lock every cycle anyway (docs/design.md, "Upgrade one minor
at a time, under the upgrade lock").
"""

from __future__ import annotations


class UpgradeLockWatch:
    """``watching``: read the lock while etcd runs here, to release it once this member is a healthy voter."""

    def __init__(self):
        self.watching = True

    def taken(self) -> None:
        """This instance (tried to) take the lock: read it until released."""
        self.watching = True

    def seen(self, running: bool, holder: str | None, me: str) -> None:
        """The lock was read: someone else (or nobody) holds it while etcd runs here, so stop reading."""
        if running and holder != me:
            self.watching = False

    def released(self) -> None:
        self.watching = False
