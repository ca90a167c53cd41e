"""The leader's heartbeat: the time, written to one key every second while this member leads.

Readers on the other side of a mirror measure how stale their copy is from it (the
mirror's ``etcd_mirror_lag_seconds``, and later the staleness guard): the value is
Unix time in seconds, as text (e.g. ``1795000000.123``).

Only an active cluster's leader writes it: on a passive cluster the mirror writes
the active cluster's heartbeat there, as of what it has applied, so that the same
key tells readers on either side how fresh their data is.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from appliance.adapters.etcd.client import EtcdClient, compare_value, op_put
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.model.keys import HEARTBEAT_KEY, MODE_KEY
from appliance.model.modes import Mode

log = logging.getLogger(__name__)


class Heartbeat:
    """A daemon thread writing ``key`` every ``interval`` seconds while ``leading()`` is true.

    Args:
        client: a client on the local member (timeouts below ``interval``).
        leading: called each tick; only the leader writes, so one writer at a time.
        on_beat: called after each tick that wrote the key or found the cluster passive (the mirror carries the
            active cluster's heartbeat then): the agent's ``etcd_appliance_heartbeat_age_seconds``.
    """

    def __init__(self, client: EtcdClient, leading: Callable[[], bool], key: str = HEARTBEAT_KEY,
                 interval: float = 1.0, on_beat: Callable[[], object] = lambda: None):
        self.client = client
        self.on_beat = on_beat
        self.leading = leading
        self.key = key
        self.interval = interval
        self.failing = False
        self.passive = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def beat(self) -> None:
        """One tick: write the time if this member leads; a failure is logged once per failing stretch."""
        if not self.leading():
            return
        try:
            # One transaction: the mode cannot turn passive between a check and the write.
            answer = self.client.txn([compare_value(MODE_KEY, Mode.PASSIVE.value)], [],
                                     [op_put(self.key, f"{time.time():.3f}")])
            passive = bool(answer.get("succeeded"))
            if passive != self.passive:
                log.info("heartbeat %s", "paused: this cluster is passive (the mirror brings the active one's)"
                         if passive else "resumed: this cluster is active")
                self.passive = passive
            if self.failing:
                log.info("heartbeat written again")
            self.failing = False
            self.on_beat()
        except EtcdFailure as exc:
            if not self.failing:
                log.warning("heartbeat not written: %s", exc)
            self.failing = True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
