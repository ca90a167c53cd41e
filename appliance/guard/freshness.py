"""Is the cluster's data fresh? A linearizable read of the heartbeat key, compared with the clock.

The active cluster's leader writes the time (Unix seconds) to the heartbeat key
every second; on a passive cluster the mirror writes the active cluster's time as of
what it has applied (:mod:`appliance.agent.components.heartbeat`). A linearizable read needs
a quorum, so a reader cut off from the majority, a cluster without quorum, a stopped
heartbeat and a lagging mirror all show up the same way: the newest heartbeat it can
read grows old. Staleness = now - that heartbeat. It assumes the clocks agree (NTP, as
on every EC2 instance); a skew adds to or takes from the staleness.

For programs that check before each dangerous step::

    check = FreshnessCheck(["http://10.0.1.4:2379"], max_staleness=10)
    check.require_fresh()   # raises StaleData
"""

from __future__ import annotations

import time

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.model.errors import ApplianceError
from appliance.model.keys import HEARTBEAT_KEY, Credentials
from appliance.model.tls import TlsFiles
from appliance.rules.freshness import Freshness, heartbeat_time, judge


class StaleData(ApplianceError):
    """The data is older than allowed (or its age cannot be learned); the message says why."""


class FreshnessCheck:
    """Checks the heartbeat on ``endpoints``; remembers the newest heartbeat across checks.

    Args:
        endpoints: client URLs of one cluster. max_staleness: seconds.
        key: the heartbeat key. credentials: where authentication is on (e.g. the user client).
        timeout: seconds per read attempt (keep it at or below the check interval).
        tls: CA and client certificate for ``https`` endpoints.
    """

    def __init__(self, endpoints: list[str] | tuple[str, ...], max_staleness: float, key: str = HEARTBEAT_KEY,
                 credentials: Credentials | None = None, timeout: float = 1.0, tls: TlsFiles | None = None):
        self.client = EtcdClient(endpoints, timeout=timeout, credentials=credentials, tls=tls)
        self.max_staleness = max_staleness
        self.key = key
        self.newest: float | None = None

    def check(self) -> Freshness:
        """Read the heartbeat (linearizable: needs a quorum) and judge. Never raises for etcd's failures."""
        error = ""
        try:
            found = self.client.get(self.key)
            if found is None:
                error = f"{self.key} does not exist"
            else:
                beat = heartbeat_time(found[0], time.time())
                if beat is None:
                    error = f"{self.key} holds {found[0][:40]!r}, not a plausible time"
                else:
                    self.newest = beat if self.newest is None else max(self.newest, beat)
        except EtcdFailure as exc:
            error = str(exc)
        return judge(self.newest, time.time(), self.max_staleness, error)

    def require_fresh(self) -> Freshness:
        """:meth:`check`, raising :class:`StaleData` when not fresh."""
        verdict = self.check()
        if not verdict.fresh:
            raise StaleData(verdict.reason)
        return verdict
