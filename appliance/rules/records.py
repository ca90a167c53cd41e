"""The discovery records the leader keeps in Route53, as pure functions: what should be there, and the diff.

Names and formats are those of etcd's DNS discovery (etcd docs, "Clustering
Guide", "DNS discovery"): for a domain ``D``, ``_etcd-server._tcp.D`` lists the
members' peer endpoints and ``_etcd-client._tcp.D`` their client endpoints; with
TLS, etcd and etcdctl read ``_etcd-server-ssl._tcp.D`` / ``_etcd-client-ssl._tcp.D``
instead. An SRV value is "priority weight port target" (RFC 2782), and a target
must be a host name, not an address: every published member therefore also gets
an A record ``<instance-id>.D``. ``D`` itself is an A record with every published
member's address (its private IP, or with ``ADVERTISE_ADDRESS=public`` its public
one), for clients that only speak A records.

Regional clusters linked by the mirror share a service name ``S``: each leader
also publishes its region's read record ``_etcd-client._tcp.S`` as a Route53
latency record (SetIdentifier and Region = its region), so a client's resolver
gets the nearest region's members; the write record ``_etcd-client-rw._tcp.S``
points at the active cluster: ``switchover`` moves it, and between switchovers the
leader of the cluster whose mode record says active keeps it (``MIRROR_PREFIX``).

A member is published only if it is a healthy voting member whose instance is
InService in a complete AWS listing; while the listing is incomplete or the
upgrade lock is held, the records stay as they are.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Sequence

from appliance.model.instances import Listing
from appliance.model.members import MemberHealth
from appliance.model.records import Change, PublishedMember, RecordSet, fqdn

SRV_PRIORITY = 1
SRV_WEIGHT = 1
_SRV_SERVICES = ("_etcd-server", "_etcd-client", "_etcd-server-ssl", "_etcd-client-ssl")


def domain(cluster_name: str, zone_name: str) -> str:
    """The cluster's discovery domain ``<cluster_name>.<zone>.``, e.g. ``etcd.example.org.``."""
    return fqdn(f"{cluster_name}.{fqdn(zone_name)}")


@dataclasses.dataclass(frozen=True)
class RecordsFacts:
    """Facts for one decision about the records.

    Attributes:
        domain: the discovery domain (see :func:`domain`).
        listing: the leader's latest AWS listing (None if none yet).
        members: every member with its health this cycle.
        upgrade_lock_holder: instance id holding the upgrade lock (or "unknown (…)"), None if free.
        ttl: record TTL in seconds. peer_port, client_port: the members' ports.
        tls: publish the ``-ssl`` SRV names instead of the plain ones.
        read_name: the shared read record's name (see :func:`read_record_name`), "" for none.
        region: this cluster's AWS region, the read record's Region.
        write_domain: ``S.<zone>`` on the leader of the active one of regional clusters linked by
            the mirror: the write record ``_etcd-client-rw._tcp.S.<zone>`` follows this cluster's
            client record; "" leaves the write record alone.
    """

    domain: str
    listing: Listing | None
    members: tuple[MemberHealth, ...]
    upgrade_lock_holder: str | None
    ttl: int = 60
    peer_port: int = 2380
    client_port: int = 2379
    tls: bool = False
    read_name: str = ""
    region: str = ""
    write_domain: str = ""


@dataclasses.dataclass(frozen=True)
class RecordsPlan:
    """The record sets that should exist under the domain (``desired``), or None to leave them alone, and why."""

    desired: Mapping[tuple[str, ...], RecordSet] | None
    reason: str


def owned(record: RecordSet, domain_name: str, read_name: str = "", region: str = "",
          write_name: str = "") -> bool:
    """True for the record sets this cluster's leader manages.

    Under ``domain_name``: the domain's A record, the four SRV names, and the per-member
    A records ``i-….<domain>``; with ``read_name``, the read record of ``region`` only
    (the other regions' leaders own theirs); with ``write_name`` (the active cluster's
    leader only), the write record. Anything else in the zone is someone else's and
    never touched.
    """
    if write_name and (record.name, record.type, record.region) == (write_name, "SRV", ""):
        return True
    if record.region:
        return bool(read_name) and (record.name, record.type, record.region) == (read_name, "SRV", region)
    if record.name == domain_name:
        return record.type == "A"
    if record.type == "SRV":
        return record.name in {f"{service}._tcp.{domain_name}" for service in _SRV_SERVICES}
    if record.type == "A" and record.name.endswith("." + domain_name):
        label = record.name[: -len(domain_name) - 1]
        return label.startswith("i-") and "." not in label
    return False


def desired(domain_name: str, members: Sequence[PublishedMember], ttl: int, peer_port: int = 2380,
            client_port: int = 2379, tls: bool = False, read_name: str = "",
            region: str = "", write_domain: str = "") -> dict[tuple[str, ...], RecordSet]:
    """The record sets for ``members`` (non-empty): two SRV, the domain's A, one A per member,
    with ``read_name`` the read record of ``region`` (the client SRV's targets), and with
    ``write_domain`` the write record (the same targets).

    Returns:
        :attr:`RecordSet.key` -> :class:`RecordSet`.
    """
    suffix = _ssl(tls)
    targets = {m.instance_id: fqdn(f"{m.instance_id}.{domain_name}") for m in members}
    client = RecordSet.of(f"_etcd-client{suffix}._tcp.{domain_name}", "SRV", ttl,
                          (f"{SRV_PRIORITY} {SRV_WEIGHT} {client_port} {t}" for t in targets.values()))
    sets = [
        RecordSet.of(f"_etcd-server{suffix}._tcp.{domain_name}", "SRV", ttl,
                     (f"{SRV_PRIORITY} {SRV_WEIGHT} {peer_port} {t}" for t in targets.values())),
        client,
        RecordSet.of(domain_name, "A", ttl, (m.address for m in members)),
    ]
    sets += [RecordSet.of(targets[m.instance_id], "A", ttl, [m.address]) for m in members]
    if read_name:
        sets.append(RecordSet(fqdn(read_name), "SRV", ttl, client.values, region))
    if write_domain:
        sets.append(write_record(write_domain, client, tls))
    return {rs.key: rs for rs in sets}


def publishable(members: Iterable[MemberHealth], listing: Listing) -> list[PublishedMember]:
    """Healthy voting members whose instance is InService (not terminating) in ``listing``, by instance id."""
    published = []
    for mh in members:
        m = mh.member
        if m.is_learner or not mh.healthy or not m.name:
            continue
        instance = listing.get(m.name)
        if instance is not None and instance.in_service and instance.address:
            published.append(PublishedMember(m.name, instance.address))
    return sorted(published, key=lambda p: p.instance_id)


def plan(s: RecordsFacts) -> RecordsPlan:
    """Decide what the records should be, or why they stay as they are."""
    if s.upgrade_lock_holder:
        return RecordsPlan(None, f"upgrade lock held by {s.upgrade_lock_holder}: records unchanged")
    if s.listing is None or not s.listing.complete:
        problem = s.listing.problem if s.listing is not None else "not taken"
        return RecordsPlan(None, f"AWS listing incomplete ({problem}): records unchanged")
    members = publishable(s.members, s.listing)
    if not members:
        # Publishing nothing would take the cluster out of DNS; no answer is better than a wrong one.
        return RecordsPlan(None, "no healthy voting member of an InService instance: records unchanged")
    names = ", ".join(m.instance_id for m in members)
    return RecordsPlan(desired(s.domain, members, s.ttl, s.peer_port, s.client_port, s.tls, s.read_name,
                               s.region, s.write_domain),
                       f"{len(members)} members published ({names})")


def diff(current: Mapping[tuple[str, ...], RecordSet],
         wanted: Mapping[tuple[str, ...], RecordSet]) -> list[Change]:
    """The changes that turn ``current`` (owned record sets as read) into ``wanted``.

    UPSERT what is missing or differs (values or TTL); DELETE, with the exact values
    read (Route53 requires them), what is no longer wanted. [] when nothing differs.
    """
    changes = [Change("UPSERT", rs) for key, rs in sorted(wanted.items()) if current.get(key) != rs]
    changes += [Change("DELETE", rs) for key, rs in sorted(current.items()) if key not in wanted]
    return changes


def _ssl(tls: bool) -> str:
    # etcd's DNS discovery marks a service spoken over TLS by "-ssl" after its name; the read and
    # write records, the appliance's own, follow the same rule.
    return "-ssl" if tls else ""


def client_srv_name(domain_name: str, tls: bool = False) -> str:
    """``_etcd-client._tcp.<domain>.`` (``_etcd-client-ssl`` with TLS): where clients of the cluster at
    ``domain_name`` look."""
    return f"_etcd-client{_ssl(tls)}._tcp.{fqdn(domain_name)}"


def read_record_name(service_name: str, zone_name: str, tls: bool = False) -> str:
    """``_etcd-client._tcp.<service_name>.<zone>.`` (``_etcd-client-ssl`` with TLS): the read record the
    regional clusters of one service share, one latency record per region (``DNS_SERVICE_NAME``)."""
    return client_srv_name(f"{service_name}.{fqdn(zone_name)}", tls)


def write_record_name(write_name: str, tls: bool = False) -> str:
    """``_etcd-client-rw._tcp.<write_name>.`` (``_etcd-client-ssl-rw`` with TLS): where clients that write
    look. The names are etcd's own for ``--discovery-srv-name rw``: etcd looks up ``_etcd-client-ssl-<name>``
    and ``_etcd-client-<name>`` (etcd's client/pkg srv package, GetClient)."""
    return f"_etcd-client{_ssl(tls)}-rw._tcp.{fqdn(write_name)}"


def write_record(write_name: str, client_srv: RecordSet, tls: bool = False) -> RecordSet:
    """The write record ``_etcd-client-rw._tcp.<write_name>.``, with the targets and TTL of the
    active cluster's ``client_srv``. Clients that write look it up; a switchover moves it, and
    between switchovers the active cluster's leader keeps it (regional clusters linked by the
    mirror, see :func:`owned`)."""
    return RecordSet(write_record_name(write_name, tls), "SRV", client_srv.ttl, client_srv.values)
