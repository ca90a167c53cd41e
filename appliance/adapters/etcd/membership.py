"""Membership changes an agent makes for its own instance: join as a learner, and leave.

etcd refuses reconfiguration while the cluster is not ready ("etcdserver: unhealthy
cluster" for about 5 s after a join or a leader change; docs/design.md, "One joiner at a
time, as a learner"), allows one learner
at a time, and refuses most RPCs on a learner; these functions respect that.
"""

from __future__ import annotations

import logging

import tenacity

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.model.keys import Credentials
from appliance.model.members import ClusterView, Member
from appliance.model.tls import TlsFiles

log = logging.getLogger(__name__)

LEAVE_TIMEOUT = 30.0  # seconds a leaving member retries its MemberRemove


def voting_client(cluster: ClusterView | None, fallback_url: str, timeout: float,
                  credentials: Credentials | None = None, tls: TlsFiles | None = None) -> EtcdClient:
    """A client on the voting members' client URLs (learners answer "rpc not supported for learner")."""
    urls = [u for m in (cluster.members if cluster else ()) if not m.is_learner for u in m.client_urls[:1]]
    return EtcdClient(urls or [fallback_url], timeout=timeout, credentials=credentials, tls=tls)


def add_learner(client: EtcdClient, name: str, peer_url: str) -> tuple[Member, dict[str, str]]:
    """MemberAdd ``peer_url`` as a learner.

    Returns:
        (the new member, the ``--initial-cluster`` map name -> peer URL to start it with).

    Raises:
        EtcdError: etcd refused ("too many learner members", "unhealthy cluster", …).
        EtcdUnavailable: no voting member answered.
    """
    new, members = client.member_add([peer_url], learner=True)
    initial = {m.name: m.peer_urls[0] for m in members if m.name and m.peer_urls}
    initial[name] = peer_url
    return new, initial


def leave(cluster: ClusterView, mine: Member, my_client_url: str, timeout: float,
          retry_for: float = LEAVE_TIMEOUT, credentials: Credentials | None = None,
          tls: TlsFiles | None = None) -> bool:
    """Move leadership away if ``mine`` leads, then MemberRemove ``mine``, retrying up to ``retry_for`` s.

    Returns:
        True if the member was removed; False if etcd kept refusing (e.g. the removal
        would break quorum): the leader's housekeeping removes it later, when safe.
    """
    others = [m for m in cluster.members if m.id != mine.id and not m.is_learner and m.client_urls]
    other_urls = [m.client_urls[0] for m in others]
    client = EtcdClient(other_urls or [my_client_url], timeout=timeout, credentials=credentials, tls=tls)
    try:
        if cluster.leader_id == mine.id and others:
            client.move_leader(my_client_url, others[0].id)
            log.info("moved leadership to member %s before leaving", others[0].hex_id)
        for attempt in tenacity.Retrying(
                stop=tenacity.stop_after_delay(retry_for),
                wait=tenacity.wait_random_exponential(multiplier=0.5, max=3),
                retry=tenacity.retry_if_exception_type(EtcdFailure), reraise=True):
            with attempt:
                client.member_remove(mine.id)
    except EtcdFailure as exc:
        log.warning("could not leave the cluster (%s); the leader removes this member after the grace period", exc)
        return False
    log.info("removed this instance's member %s from the cluster", mine.hex_id)
    return True
