"""How far behind the destination is, in seconds, from the source's heartbeat key.

The source's leader writes the time to the heartbeat key every second. This
watches that key on the source (whether or not it lies under the mirrored
prefix) and remembers (revision, time) pairs; once the mirror's position passes
a heartbeat's revision, the destination reflects the source as of at least that
time, so the lag is now minus the newest such time.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Sequence

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.adapters.etcd.watch import WatchStream
from appliance.model.tls import TlsFiles
from appliance.rules.freshness import heartbeat_time

log = logging.getLogger("mirror.heartbeat")

RETRY_DELAY = 1.0  # seconds before re-opening a broken watch


class HeartbeatWatch:
    """A daemon thread following the heartbeat key; :meth:`lag` answers in seconds (None: no heartbeat yet).

    Args:
        endpoints: source client URLs. key: the heartbeat key (bytes).
        depth: heartbeats remembered at most (one a second: ten minutes by default).
        auth: a client whose credentials open the watch, where authentication is on.
        tls: CA and client certificate for ``https`` endpoints, None for plain HTTP.
    """

    def __init__(self, endpoints: Sequence[str], key: bytes, timeout: float = 5.0, depth: int = 600,
                 auth: EtcdClient | None = None, tls: TlsFiles | None = None):
        self.endpoints = list(endpoints)
        self.key = key
        self.timeout = timeout
        self.auth = auth
        self.tls = tls
        self.beats: collections.deque[tuple[int, float]] = collections.deque(maxlen=depth)
        self.applied: float | None = None  # the newest heartbeat time at or before the position
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat-watch", daemon=True)

    def start(self) -> "HeartbeatWatch":
        """Start following the key (once; later calls do nothing)."""
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()
        return self

    def record(self, revision: int, value: bytes) -> None:
        """Remember one heartbeat write (ignored if the value holds no plausible time: see
        :func:`~appliance.rules.freshness.heartbeat_time`)."""
        stamp = heartbeat_time(value, time.time())
        if stamp is None:
            return
        with self._lock:
            self.beats.append((revision, stamp))

    def applied_time(self, position: int) -> float | None:
        """The newest heartbeat time (Unix seconds) written at or before source revision ``position``."""
        with self._lock:
            while self.beats and self.beats[0][0] <= position:
                self.applied = self.beats.popleft()[1]
            return self.applied

    def lag(self, position: int, now: float | None = None) -> float | None:
        """Seconds the destination, at source revision ``position``, is behind; None before any heartbeat."""
        applied = self.applied_time(position)
        if applied is None:
            return None
        return max(0.0, (time.time() if now is None else now) - applied)

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            endpoint = self.endpoints[turn % len(self.endpoints)]
            turn += 1
            try:
                headers = self.auth.auth_headers(endpoint) if self.auth is not None else None
                stream = WatchStream(endpoint, self.key, self.key + b"\0", progress_notify=False,
                                     connect_timeout=self.timeout, idle_timeout=30, headers=headers,
                                     tls=self.tls)
                try:
                    for response in stream:
                        for event in response.events:
                            if event.type != "DELETE":
                                self.record(event.revision, event.kv.value)
                        if self._stop.is_set():
                            return
                finally:
                    stream.close()
            except EtcdFailure as exc:
                log.debug("heartbeat watch: %s", exc)  # a quiet heartbeat key times out too
            self._stop.wait(RETRY_DELAY)

    def stop(self) -> None:
        self._stop.set()
