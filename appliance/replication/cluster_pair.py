"""Which clusters a mirror copies between, known by their ids rather than by their URLs.

Two URLs can reach one cluster (a member's address and a load balancer, a DNS name and an IP),
so comparing URL strings cannot tell a mirror that it would copy its own writes back. etcd answers
every request with a header holding the cluster id, and MemberList names the members: one cluster
id, or one member id on both sides, is one cluster. The pair is checked when the mirror starts and
after every reconnect, since a URL may answer for another cluster after a restore or a replacement.
"""

from __future__ import annotations

import dataclasses
import logging

from appliance.adapters.etcd.client import EtcdClient
from appliance.model.exit_codes import ExitCode
from appliance.model.keys import prefixes_overlap
from appliance.replication.mirror_settings import MirrorStopped

log = logging.getLogger("mirror")


@dataclasses.dataclass(frozen=True)
class Identity:
    """One side of the pair: its cluster id and member ids (etcd's uint64 ids)."""

    cluster_id: int
    member_ids: frozenset[int]


def identify(client: EtcdClient) -> Identity:
    """The cluster ``client`` reaches (one MemberList).

    Raises:
        EtcdFailure: no endpoint answered, or it answered something that is not etcd's.
    """
    answer = client.member_list()
    return Identity(answer.cluster_id, frozenset(m.id for m in answer.members))


class ClusterPair:
    """The mirror's source and destination clusters, as first seen.

    Args:
        source_prefix, dest_prefix: the mirrored prefixes (bytes), refused when they overlap on one cluster.
    """

    def __init__(self, source_prefix: bytes, dest_prefix: bytes):
        self.source_prefix = source_prefix
        self.dest_prefix = dest_prefix
        self.source: Identity | None = None
        self.dest: Identity | None = None

    @property
    def same_cluster(self) -> bool:
        """True when source and destination are one cluster (known after :meth:`check`)."""
        return self.source is not None and self.dest is not None and _same(self.source, self.dest)

    def check(self, source: EtcdClient, dest: EtcdClient) -> None:
        """Identify both sides; the first call remembers them, later calls compare.

        Raises:
            MirrorStopped: one cluster with overlapping prefixes (exit code 2), or a side that is now
                another cluster than first seen (exit code 16).
            EtcdFailure: a side did not answer (the caller reconnects later).
        """
        now = (identify(source), identify(dest))
        for side, first, seen in (("source", self.source, now[0]), ("destination", self.dest, now[1])):
            if first is not None and first.cluster_id and seen.cluster_id and first.cluster_id != seen.cluster_id:
                raise MirrorStopped(f"the {side} is now cluster {seen.cluster_id:x}, not {first.cluster_id:x} as "
                                    "when the mirror started: another cluster answers at its URLs; stopping rather "
                                    "than copying between clusters never checked", ExitCode.MIRROR_CLUSTER_CHANGED)
        if _same(*now) and prefixes_overlap(self.source_prefix, self.dest_prefix):
            raise MirrorStopped(f"the source and the destination are one cluster ({now[0].cluster_id:x}) and "
                                f"{self.source_prefix.decode(errors='replace')!r} and "
                                f"{self.dest_prefix.decode(errors='replace')!r} overlap: the mirror would copy "
                                "its own writes without end", ExitCode.CONFIG)
        if self.source is None and _same(*now):
            log.info("the source and the destination are one cluster (%x): the prefixes do not overlap, and the "
                     "heartbeat is not copied", now[0].cluster_id)
        self.source, self.dest = now


def _same(a: Identity, b: Identity) -> bool:
    # Cluster id 0 is no id (an answer without one): only the member ids can tell then.
    return bool(a.cluster_id) and a.cluster_id == b.cluster_id or bool(a.member_ids & b.member_ids)
