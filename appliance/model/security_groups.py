"""The peer rules of the regions' security groups of one cluster stretched across regions."""

from __future__ import annotations

import dataclasses

# Only rules with this description are the appliance's; any other rule is an operator's, left alone.
RULE_DESCRIPTION = "etcd-appliance peer"
DIRECTIONS = ("ingress", "egress")


@dataclasses.dataclass(frozen=True)
class GroupRules:
    """One region's security group of the cluster and its appliance-managed rules.

    Attributes:
        region: AWS region. group_id: the security group's id (``sg-…``).
        ingress, egress: CIDRs (``a.b.c.d/32``) of the managed rules in each direction.
    """

    region: str
    group_id: str
    ingress: frozenset[str] = frozenset()
    egress: frozenset[str] = frozenset()

    def cidrs(self, direction: str) -> frozenset[str]:
        return self.ingress if direction == "ingress" else self.egress


@dataclasses.dataclass(frozen=True)
class RuleChange:
    """Authorize (``add``) or revoke one /32 rule in one region's group, in one direction."""

    region: str
    group_id: str
    direction: str
    cidr: str
    add: bool

    def __str__(self) -> str:
        verb = "open" if self.add else "close"
        way = "from" if self.direction == "ingress" else "to"
        return f"{verb} {self.region} {self.direction} {way} {self.cidr}"
