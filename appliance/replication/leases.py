"""Leases across the mirror: a source key bound to a lease is written with a destination lease of the
same remaining TTL, kept alive exactly as long as the source lease lives.

The pairing (source lease id -> destination lease id) is stored in the destination
under ``<position key>/leases/<source id hex>``, bound to the destination lease
itself, so it survives a mirror restart and vanishes with the lease.
"""

from __future__ import annotations

import logging
import threading

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.replication.keyspace import iter_prefix
from appliance.replication.position import parse_revision

log = logging.getLogger("mirror.leases")

KEEPALIVE_INTERVAL = 1.0  # seconds between rounds of keep-alives


class LeaseMap:
    """Destination leases paired with source leases.

    Args:
        source, dest: clients. prefix: where the pairing keys live in the destination (bytes).
    """

    def __init__(self, source: EtcdClient, dest: EtcdClient, prefix: bytes):
        self.source = source
        self.dest = dest
        self.prefix = prefix
        self.pairs: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pair_key(self, source_lease: int) -> str:
        return (self.prefix + format(source_lease, "x").encode()).decode()

    def dest_lease(self, source_lease: int) -> int:
        """The destination lease for ``source_lease`` (made on first use); 0 if the source lease is gone.

        Raises:
            EtcdFailure.
        """
        with self._lock:
            if source_lease in self.pairs:
                return self.pairs[source_lease]
        found = self.dest.get(self._pair_key(source_lease))
        paired = parse_revision(found[0]) if found is not None else None  # a lease id: decimal, like a revision
        if paired:
            dest_lease = paired
        else:  # none, or a pairing that is not a lease id: a new destination lease replaces it
            ttl = self.source.lease_time_to_live(source_lease)
            if ttl <= 0:
                return 0  # expired at the source: its keys' deletions follow in the watch
            dest_lease = self.dest.lease_grant(ttl)
            self.dest.put(self._pair_key(source_lease), str(dest_lease), lease=dest_lease)
        with self._lock:
            self.pairs[source_lease] = dest_lease
        return dest_lease

    def load(self) -> None:
        """Read the pairings a previous run left, so their leases are kept alive again."""
        for kv in iter_prefix(self.dest, self.prefix):
            try:
                source_lease = int(kv.key[len(self.prefix):], 16)
            except ValueError:
                continue  # not a pairing this code wrote: left alone
            dest_lease = parse_revision(kv.value)
            if dest_lease:
                with self._lock:
                    self.pairs[source_lease] = dest_lease

    def keep_alive_once(self) -> None:
        """One round: renew every destination lease whose source lease lives; forget the others."""
        with self._lock:
            pairs = dict(self.pairs)
        for source_lease, dest_lease in pairs.items():
            try:
                if self.source.lease_time_to_live(source_lease) > 0:
                    self.dest.lease_keepalive(dest_lease)
                else:
                    with self._lock:
                        self.pairs.pop(source_lease, None)  # the destination lease runs out by itself
            except EtcdFailure as exc:
                log.warning("keeping lease %x alive: %s", dest_lease, exc)

    def start(self) -> None:
        """Load the pairings and start the keep-alive thread (once)."""
        if self._thread is not None:
            return
        try:
            self.load()
        except EtcdFailure as exc:
            log.warning("reading lease pairings: %s", exc)
        self._thread = threading.Thread(target=self._run, name="lease-keepalive", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(KEEPALIVE_INTERVAL):
            self.keep_alive_once()

    def stop(self) -> None:
        self._stop.set()
