"""A client that writes continuously to the simulator's cluster, for rotation tests and benchmarks.

It plays a service with retries: each write goes to the next client URL of the
instances the simulator runs now (re-read every ``refresh`` seconds, so it
follows a rotation), and a write that fails is retried on the next URL. A write
counts as acknowledged only when etcd answered it with a revision.
"""

from __future__ import annotations

import itertools
import threading
import time

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.sim import state

CLIENT_PORT = 2379


class ContinuousWriter(threading.Thread):
    """Writes ``<prefix><n>`` = ``n`` one after another until :meth:`stop`.

    Args:
        state_dir: the simulator's state directory (its instances' IPs).
        prefix: key prefix. timeout: seconds per write attempt.
        refresh: seconds between re-reads of the instances.

    Attributes:
        acknowledged: keys etcd acknowledged, in order.
        ack_times: monotonic time of each acknowledgement.
        attempts: writes tried, failed ones included.
    """

    def __init__(self, state_dir: str, prefix: str = "/writer/", timeout: float = 1.0, refresh: float = 0.5):
        super().__init__(name="continuous-writer", daemon=True)
        self.state_dir = state_dir
        self.prefix = prefix
        self.timeout = timeout
        self.refresh = refresh
        self.acknowledged: list[str] = []
        self.ack_times: list[float] = []
        self.attempts = 0
        self.started_at = 0.0
        self.stopped_at = 0.0
        self._stop_event = threading.Event()
        self._clients: dict[str, EtcdClient] = {}
        self.tls = None  # the operator's certificate where the simulator runs TLS (read with the endpoints)

    def _endpoints(self) -> list[str]:
        current = state.load(self.state_dir) or {}
        self.tls = state.tls_files(current)
        return [state.client_url(current, i["private_ip"], CLIENT_PORT) for i in current.get("instances", {}).values()
                if i.get("private_ip")]

    def run(self) -> None:
        self.started_at = time.monotonic()
        endpoints, refreshed, turn, n = self._endpoints(), time.monotonic(), 0, 0
        while not self._stop_event.is_set():
            if time.monotonic() - refreshed > self.refresh:
                endpoints, refreshed = self._endpoints() or endpoints, time.monotonic()
            if not endpoints:
                self._stop_event.wait(0.1)
                continue
            endpoint = endpoints[turn % len(endpoints)]
            turn += 1
            key = f"{self.prefix}{n:08d}"
            client = self._clients.setdefault(endpoint, EtcdClient([endpoint], timeout=self.timeout, tls=self.tls))
            self.attempts += 1
            try:
                revision = client.put(key, str(n))
            except EtcdFailure:
                self._stop_event.wait(0.02)  # a learner, a leaving member, a dead one: try the next
                continue
            if revision:
                self.acknowledged.append(key)
                self.ack_times.append(time.monotonic())
                n += 1
        self.stopped_at = time.monotonic()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop writing and wait (at most ``timeout`` seconds) for the thread."""
        self._stop_event.set()
        self.join(timeout)

    def longest_gap(self) -> float:
        """The longest stretch in seconds with no acknowledged write, start and stop included."""
        if not self.ack_times:
            return (self.stopped_at or time.monotonic()) - self.started_at
        times = [self.started_at, *self.ack_times, self.stopped_at or time.monotonic()]
        return max(b - a for a, b in itertools.pairwise(times))
