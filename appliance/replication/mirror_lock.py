"""The mirror lock: a lease lock in the destination, so that one mirror writes there at a time.

A mirror started with a lock holder name takes :data:`MIRROR_LOCK_KEY` in the
destination (created only if absent, bound to a lease of ``ttl`` seconds) before it
writes anything, keeps the lease alive from a thread, and fences every destination
transaction on it (:func:`fence`: the key must still be bound to *this* lease). A
holder that dies, hangs or is cut off from the destination's quorum stops renewing;
etcd expires the lease after ``ttl`` seconds, the key goes with it, and the next
holder's transactions carry the new lease, so the old holder's cannot commit any
more, whatever it still believes. The position comparison of
:mod:`appliance.replication.mirror` stays behind it as a second line.

Source of the lease rules: etcd's API guarantees ("Lease"): a lease that is not
kept alive expires after its TTL, deleting its keys; a new etcd leader extends
every lease by its TTL, so a lease outlives a leader change.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from appliance.adapters.etcd import locks
from appliance.adapters.etcd.client import EtcdClient, compare_lease
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.model.keys import MIRROR_LOCK_KEY

log = logging.getLogger("mirror")
DEFAULT_TTL = 5          # seconds; the takeover after a holder dies waits this long at most (plus an election)
ACQUIRE_POLL = 0.5       # seconds between attempts while another holder has it


class MirrorLock:
    """One process's hold on the mirror lock.

    Args:
        client: the destination cluster (as the user ``mirror`` when authentication is on).
        holder: this mirror's name, stored as the key's value (the agent uses its instance id).
        ttl: lease TTL in seconds (etcd's minimum is about 1.5 election timeouts).
        on_lost: called once, from the keepalive thread, when the lease is gone or could not be
            renewed for ``ttl`` seconds (the mirror stops; its writes are fenced anyway).
    """

    def __init__(self, client: EtcdClient, holder: str, ttl: int = DEFAULT_TTL, key: str = MIRROR_LOCK_KEY,
                 on_lost: Callable[[str], None] | None = None):
        self.client = client
        self.holder = holder
        self.ttl = ttl
        self.key = key
        self.on_lost = on_lost
        self.lease_id: int | None = None
        self.lost = ""  # why the lock was lost, "" while held (or never taken)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, stop: threading.Event) -> bool:
        """Take the lock, waiting while another holder has it; False if ``stop`` was set first.

        etcd failures while waiting are logged and retried (the destination may be electing).
        """
        said = None
        while not stop.is_set():
            try:
                current, self.lease_id = locks.take_on_lease(self.client, self.key, self.holder, self.ttl)
            except EtcdFailure as exc:
                current = f"unknown ({exc})"
            if self.lease_id is not None:
                log.info("took the mirror lock %s as %s (lease %x, TTL %d s)", self.key, self.holder,
                         self.lease_id, self.ttl)
                self._thread = threading.Thread(target=self._keep_alive, name="mirror-lock", daemon=True)
                self._thread.start()
                return True
            if current != said:
                log.info("waiting for the mirror lock %s, held by %s", self.key, current or "nobody (retrying)")
                said = current
            stop.wait(ACQUIRE_POLL)
        return False

    def fence(self) -> dict:
        """The comparison every destination transaction carries: the lock is still ours."""
        assert self.lease_id is not None, "fence() before acquire()"
        return compare_lease(self.key, self.lease_id)

    def still_ours(self) -> bool:
        """Read the lock: True if its key is bound to our lease (for explaining a failed transaction)."""
        found = self.client.get(self.key)
        return found is not None and self.lease_id is not None and found[1] == self.lease_id

    def _keep_alive(self) -> None:
        renewed = time.monotonic()
        while not self._stop.wait(self.ttl / 3):
            try:
                if self.client.lease_keepalive(self.lease_id) > 0:
                    renewed = time.monotonic()
                    continue
                self._lose(f"the lease {self.lease_id:x} of {self.key} expired")
                return
            except EtcdFailure as exc:
                if time.monotonic() - renewed >= self.ttl:
                    self._lose(f"could not renew the lease of {self.key} for {self.ttl} s ({exc})")
                    return

    def _lose(self, why: str) -> None:
        self.lost = why
        log.error("lost the mirror lock: %s", why)
        if self.on_lost is not None:
            self.on_lost(why)

    def release(self) -> None:
        """Stop renewing, then delete the key and revoke the lease (if still ours), so that the
        next holder need not wait for the TTL. Errors are logged: the lease expires by itself."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.client.timeout + 1)
        if self.lease_id is None or self.lost:
            return
        try:
            locks.release(self.client, self.key, self.holder)
            log.info("released the mirror lock %s", self.key)
        except EtcdFailure as exc:
            log.warning("releasing the mirror lock: %s (its lease expires within %d s)", exc, self.ttl)
        self.lease_id = None
