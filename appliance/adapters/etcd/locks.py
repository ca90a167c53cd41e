"""Locks as etcd leases: a key bound to a lease, value = the owner's instance id.

Taking a lock creates the key only if absent (a txn on create_revision == 0);
releasing is compare-and-delete on the owner's value, so an owner never deletes
a lock that expired and was taken by another (docs/design.md, "Locks are leases; release is
compare-and-delete"). The lock keys are :mod:`appliance.model.keys`'.
"""

from __future__ import annotations

import logging

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdError, EtcdFailure

log = logging.getLogger(__name__)


def holder(client: EtcdClient, key: str) -> str | None:
    """The owner of the lock at ``key``, or None if free.

    Raises:
        EtcdFailure: etcd did not answer or refused.
    """
    found = client.get(key)
    return found[0].decode() if found else None


def take(client: EtcdClient, key: str, owner: str, ttl: int) -> str | None:
    """Try once to take the lock at ``key`` for ``owner``, bound to a new lease of ``ttl`` seconds.

    The lease is not kept alive: the lock ends by :func:`release` or, if the holder
    dies, by lease expiry after ``ttl`` seconds.

    Returns:
        The holder after the attempt: ``owner`` if taken (or already held by it),
        another owner's id, or None if the key vanished in between (try again).

    Raises:
        EtcdFailure: etcd did not answer or refused.
    """
    return take_on_lease(client, key, owner, ttl)[0]


def take_on_lease(client: EtcdClient, key: str, owner: str, ttl: int) -> tuple[str | None, int | None]:
    """Create ``key`` = ``owner`` on a new lease of ``ttl`` seconds if absent.

    Returns:
        (holder after the attempt, our lease id or None when not taken).

    Raises:
        EtcdFailure: etcd did not answer or refused.
    """
    lease = client.lease_grant(ttl)
    created, current = client.create_if_absent(key, owner, lease)
    if created:
        return owner, lease
    client.lease_revoke(lease)  # not ours: leave no lease behind
    return (current.decode() if current is not None else None), None


def release(client: EtcdClient, key: str, owner: str) -> bool:
    """Release ``owner``'s lock at ``key``: compare-and-delete, then revoke its lease.

    Works from a new process too (after an agent restart): the lease id is read
    from the key. Returns True if the lock was ``owner``'s and is now deleted.

    Raises:
        EtcdFailure: etcd did not answer or refused.
    """
    found = client.get(key)
    if found is None or found[0].decode() != owner:
        return False
    deleted = client.delete_if_value(key, owner)
    if deleted and found[1]:
        try:
            client.lease_revoke(found[1])
        except EtcdError as exc:  # already expired: nothing left to revoke
            log.debug("revoking the lease of %s: %s", key, exc)
    return deleted


class LeaseLock:
    """A lock held as long as this process keeps its lease alive.

    Args:
        key: the lock's key. owner: this process's identity (instance id).
        ttl: lease TTL in seconds; a holder that stops renewing loses the lock after it.
    """

    def __init__(self, client: EtcdClient, key: str, owner: str, ttl: int):
        self.client = client
        self.key = key
        self.owner = owner
        self.ttl = ttl
        self.lease_id: int | None = None
        self.problem = ""  # the last failure warned of: a refusal that lasts (NOSPACE) is logged once

    def acquire_or_renew(self) -> str | None:
        """Renew our lease, or try to take the lock; returns the current holder (None if unknown).

        Never raises for etcd errors: an etcd that does not answer means "unknown holder".
        """
        try:
            if self.lease_id is not None:
                if self.client.lease_keepalive(self.lease_id) > 0:
                    return self.owner
                log.warning("lost the lease of %s", self.key)
                self.lease_id = None
            current, self.lease_id = take_on_lease(self.client, self.key, self.owner, self.ttl)
            self.problem = ""
            return current
        except EtcdFailure as exc:
            if str(exc) != self.problem:
                log.warning("lock %s: %s", self.key, exc)
            self.problem = str(exc)
            return None

    def release(self) -> None:
        """Compare-and-delete the key, then revoke the lease. Errors are logged, not raised."""
        if self.lease_id is None:
            return
        try:
            self.client.delete_if_value(self.key, self.owner)
            self.client.lease_revoke(self.lease_id)
        except EtcdFailure as exc:
            log.warning("releasing %s: %s (the lease expires by itself)", self.key, exc)
        self.lease_id = None
