"""Whether an agent keeps reading the upgrade lock (appliance/agent/components/upgrade_lock.py): from start,
and after taking it, until it is released or seen held by someone else (or nobody) while etcd runs here."""

from __future__ import annotations

import pytest

from appliance.agent.components.upgrade_lock import UpgradeLockWatch

ME = "i-1"


@pytest.mark.parametrize("running, holder, watching", [
    (True, "i-9", False),
    (True, None, False),
    (True, ME, True),
    (False, "i-9", True),  # a joiner reads the lock before it runs etcd: it may still take it
    (False, None, True),
], ids=["running, held by another", "running, free", "running, held by this instance", "not running, held by another",
        "not running, free"])
def test_seen(running, holder, watching):
    watch = UpgradeLockWatch()
    assert watch.watching is True  # a restarted agent may hold it from before
    watch.seen(running, holder, ME)
    assert watch.watching is watching


def test_taken_and_released():
    watch = UpgradeLockWatch()
    watch.released()
    assert watch.watching is False
    watch.taken()
    assert watch.watching is True
    watch.seen(True, ME, ME)
    assert watch.watching is True
    watch.released()
    assert watch.watching is False
