"""Which etcd binary may join which cluster version (pure).

etcd upgrades one minor version at a time, member by member; the cluster
version (``etcdcluster`` of ``GET /version``) is the lowest server version of
its members and rises only once every member runs the newer release; a member
older than the cluster version is refused (etcd docs, "Upgrading etcd clusters
and applications": upgrade 3.4 → 3.5 and "downgrade is not supported" before
the 3.5 downgrade feature).
"""

from __future__ import annotations


def join_verdict(binary: tuple[int, int, int], cluster: tuple[int, int, int]) -> str:
    """Compare this binary with the cluster version, by minor version.

    Returns:
        "same" (join as usual), "upgrade" (one minor newer: join under the upgrade
        lock), "older" (refuse: etcd supports no downgrade by joining) or "too-new"
        (more than one minor newer: refuse, etcd upgrades one minor at a time).
    """
    mine, theirs = binary[:2], cluster[:2]
    if mine == theirs:
        return "same"
    if mine < theirs:
        return "older"
    if mine[0] == theirs[0] and mine[1] == theirs[1] + 1:
        return "upgrade"
    return "too-new"
