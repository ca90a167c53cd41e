"""A workaround for etcd 3.5.1: restart a member that rejects the authentication tokens it issues.

etcd 3.5.1 bug (etcd-io/etcd#13134, fixed by #13172 in later releases): a member that caught
up from the leader's snapshot (as every joiner of a restored cluster does, and any joiner once
the leader has compacted its log) answers "invalid auth token" to every request until it is
restarted. Checked once per etcd start, with authentication; at most one restart per
:data:`TOKEN_RESTART_INTERVAL` seconds.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.model.keys import MODE_KEY

log = logging.getLogger("agent")

TOKEN_RESTART_INTERVAL = 600.0  # seconds: at most one restart of etcd for rejected tokens in this time


class TokenCheck:
    """One check per etcd start (by its pid).

    Args:
        etcd: the :class:`~appliance.adapters.etcd.process.EtcdProcess` (``proc``, ``stop()``).
        fresh_client: makes a new client on the local member (a fresh token is the point), or None
            without authentication (then nothing is checked). clock: monotonic seconds.
    """

    def __init__(self, etcd, fresh_client: Callable[[], object] | None, clock: Callable[[], float] = time.monotonic):
        self.etcd = etcd
        self.fresh_client = fresh_client
        self.clock = clock
        self.checked_pid: int | None = None
        self.restarted_at = -math.inf

    def tick(self) -> str:
        """Check the running etcd once; restart it if it rejects its own tokens. Returns what happened."""
        proc = self.etcd.proc
        if self.fresh_client is None or proc is None or self.checked_pid == proc.pid:
            return ""
        self.checked_pid = proc.pid
        try:
            self.fresh_client().get(MODE_KEY)
        except EtcdUnavailable:
            self.checked_pid = None  # not answering yet: look again next cycle
            return "etcd does not answer yet"
        except EtcdError as exc:
            if "invalid auth token" not in exc.message:
                return ""
            if self.clock() - self.restarted_at < TOKEN_RESTART_INTERVAL:
                log.error("etcd still rejects the tokens it issues after a restart; leaving it running")
                return "etcd rejects its own tokens; restarted recently, left running"
            log.warning("etcd rejects the tokens it issues (etcd 3.5.1 bug etcd-io/etcd#13134, after catching up "
                        "from a snapshot): restarting it with its data")
            self.restarted_at = self.clock()
            self.etcd.stop()
            return "etcd rejected its own tokens: restarted"
        return "tokens accepted"
