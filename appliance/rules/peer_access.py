"""Which security group rules let the members of one cluster stretched across regions reach each other.

A security group cannot name a group of another region as a source (AWS VPC user
guide, "Security group rules": referencing a group works in the same region, or
through a peering connection in the same region only), so each region's group
needs one /32 rule per member address in the other regions: ingress from it and
egress to it, on the agent status, client and peer ports (2378-2380; seeding asks
every agent, so the status port crosses regions too).

Two parts keep those rules:
- every instance, before it seeds or joins, opens the way to itself in the other
  regions' groups (:func:`missing_for`), so a member never starts unreachable;
- the leader, after each complete listing, adds what is missing for every listed
  instance and revokes rules of addresses that are neither listed nor a member's
  peer address (:func:`plan`), so a rule outlives its member's removal, never the
  member.

With public addresses (``ADVERTISE_ADDRESS=public``) every member is reached at its
public IPv4, from which its traffic also comes, even inside its own region; a
group-to-group rule matches private addresses only, so every region's group gets a
rule for every member, its own region's included.

Only rules whose description is :data:`~appliance.model.security_groups.RULE_DESCRIPTION`
are the appliance's; any other rule an operator adds is left alone.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

from appliance.model.instances import Listing
from appliance.model.security_groups import DIRECTIONS, GroupRules, RuleChange


@dataclasses.dataclass(frozen=True)
class AccessPlan:
    """What to change (in order: every addition before any revocation) and why."""

    changes: tuple[RuleChange, ...]
    reason: str


def cidr(address: str) -> str:
    """The /32 CIDR of an IPv4 address."""
    return f"{address}/32"


def _changes(group: GroupRules, wanted: Iterable[str], keep: frozenset[str], revoke: bool) -> list[RuleChange]:
    wanted = frozenset(wanted)
    out = []
    for direction in DIRECTIONS:
        present = group.cidrs(direction)
        out += [RuleChange(group.region, group.group_id, direction, c, True) for c in sorted(wanted - present)]
        if revoke:
            out += [RuleChange(group.region, group.group_id, direction, c, False)
                    for c in sorted(present - wanted - keep)]
    return out


def missing_for(groups: Mapping[str, GroupRules], region: str, address: str,
                public: bool = False) -> tuple[RuleChange, ...]:
    """The rules that one instance (``address`` in ``region``) still lacks in the other regions' groups.

    Args:
        groups: region -> its group, for every active region that has one.
        region: the instance's own region (its own group needs no rule: members of one
            region reach each other through the template's group-to-group rule).
        address: the instance's IPv4 address as the other regions see it.
        public: members advertise public addresses: traffic to them comes from public
            addresses even within a region, which a group-to-group rule does not match, so
            the own region's group needs the rule too.
    """
    changes: list[RuleChange] = []
    for group_region, group in sorted(groups.items()):
        if group_region != region or public:
            changes += _changes(group, [cidr(address)], frozenset(), revoke=False)
    return tuple(changes)


def plan(groups: Mapping[str, GroupRules], listing: Listing | None, member_hosts: Iterable[str]) -> AccessPlan:
    """The leader's changes that bring every region's group to exactly the other regions' addresses
    (every region's, with public addresses).

    Args:
        groups: region -> its group (regions without the stack have none).
        listing: the AWS listing; nothing changes unless it is complete.
        member_hosts: the hosts of every member's peer URLs (a member whose instance the
            listing no longer shows keeps its rules until it is removed).

    Returns:
        An :class:`AccessPlan`; additions come before revocations.
    """
    if listing is None or not listing.complete:
        return AccessPlan((), "security groups unchanged: the AWS listing is "
                              f"{'incomplete: ' + listing.problem if listing else 'not taken yet'}")
    keep = frozenset(cidr(h) for h in member_hosts)
    additions, revocations = [], []
    for region, group in sorted(groups.items()):
        # With public addresses, a region's own members too (see missing_for).
        wanted = {cidr(i.address) for i in listing.instances
                  if i.address and (i.region != region or i.advertises_public)}
        for change in _changes(group, wanted, keep, revoke=True):
            (additions if change.add else revocations).append(change)
    changes = tuple(additions + revocations)
    if not changes:
        return AccessPlan((), f"security groups of {len(groups)} regions allow exactly the other regions' members")
    return AccessPlan(changes, ", ".join(map(str, changes)))
