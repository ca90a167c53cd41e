"""Route53 record sets as the appliance reads and writes them."""

from __future__ import annotations

import dataclasses
from typing import Iterable


def fqdn(name: str) -> str:
    """``name`` as Route53 returns it: lower case, with the trailing dot."""
    name = name.lower()
    return name if name.endswith(".") else name + "."


@dataclasses.dataclass(frozen=True)
class RecordSet:
    """One Route53 record set. ``name`` is an fqdn (lower case, trailing dot); ``ttl`` in seconds;
    ``values`` sorted, in Route53's text form (an IPv4 address, or "priority weight port target")."""

    name: str
    type: str
    ttl: int
    values: tuple[str, ...]
    region: str = ""  # a latency record's Region, also its SetIdentifier; "" for a simple record

    @property
    def key(self) -> tuple[str, ...]:
        """The set's identity in the zone: (name, type), plus the region of a latency record
        (Route53 tells the latency records of one name and type apart by their SetIdentifier)."""
        return (self.name, self.type, self.region) if self.region else (self.name, self.type)

    @classmethod
    def of(cls, name: str, type_: str, ttl: int, values: Iterable[str], region: str = "") -> "RecordSet":
        return cls(fqdn(name), type_, int(ttl), tuple(sorted(set(values))), region)


@dataclasses.dataclass(frozen=True)
class Change:
    """One change of a ChangeResourceRecordSets batch: ``action`` is "UPSERT" or "DELETE"."""

    action: str
    record: RecordSet


@dataclasses.dataclass(frozen=True)
class PublishedMember:
    """A member as published: its instance id (the member's name) and the instance's address (its
    private IP, or its public one with ``ADVERTISE_ADDRESS=public``)."""

    instance_id: str
    address: str
