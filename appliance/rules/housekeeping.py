"""The leader's housekeeping decision: which member of a vanished instance to remove, if any (pure).

The guards are docs/design.md's "Removal guards": remove a member only if its instance is
absent from a complete listing (or terminating), for longer than the grace period, quorum
still holds without it, no upgrade lock is held, a snapshot was attempted since its instance
went, and this process is the etcd leader holding the housekeeping lease. One removal per cycle.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Iterable, Mapping

from appliance.model.instances import Listing
from appliance.model.members import Member, MemberHealth


class InstanceFate(str, enum.Enum):
    """What the AWS listing says of a member's instance."""

    PRESENT = "present"
    TERMINATING = "terminating"
    GONE = "gone"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class HousekeepingFacts:
    """Facts for one housekeeping decision.

    Attributes:
        now: monotonic seconds.
        gone_since: member id -> monotonic time its instance was first seen gone or terminating.
        grace_period: seconds a member's instance must stay gone before removal.
        upgrade_lock_holder: instance id holding the upgrade lock, or None.
        snapshot_done_at: monotonic time the last snapshot attempt ended (failed or not), None
            when snapshots are off; a member is removed only after an attempt that ended after
            its instance was first seen gone (the issue's "snapshot before every removal").
    """

    now: float
    is_leader: bool
    lease_holder: str | None
    me: str
    listing: Listing | None
    members: tuple[MemberHealth, ...]
    gone_since: Mapping[int, float]
    grace_period: float
    upgrade_lock_holder: str | None = None
    snapshot_done_at: float | None = None


@dataclasses.dataclass(frozen=True)
class HousekeepingDecision:
    """Remove ``member`` (or nothing when None), and why; ``snapshot_first``: take a snapshot, then decide again."""

    member: Member | None
    reason: str
    snapshot_first: bool = False

    @property
    def action(self) -> str:
        """The decision's kind, for metrics and the agent's status: "remove-member", "snapshot-first" or "none"."""
        if self.member is not None:
            return "remove-member"
        return "snapshot-first" if self.snapshot_first else "none"


_DURATION = re.compile(r"\b\d+(?:\.\d+)? s\b")


def gist(reason: str) -> str:
    """``reason`` with its durations left out ("gone for 12 s of the 300 s grace" -> "gone for N s of the N s
    grace"): a decision that differs from the last cycle's only in how long things have lasted is the same
    decision, and is kept once (the agent's history of decisions)."""
    return _DURATION.sub("N s", reason)


def fate(member: Member, listing: Listing) -> InstanceFate:
    """Where a member's instance stands in a complete listing.

    A member is matched to its instance by name (the instance id); a learner that
    never started has no name and is matched by the address of its peer URL.
    """
    if member.name:
        instance = listing.get(member.name)
        if instance is not None:
            return InstanceFate.TERMINATING if instance.terminating else InstanceFate.PRESENT
        return InstanceFate.GONE if member.name in listing.gone else InstanceFate.UNKNOWN
    matches = [i for i in listing.instances if i.address in member.peer_hosts]
    if not matches:
        return InstanceFate.GONE
    return InstanceFate.TERMINATING if all(i.terminating for i in matches) else InstanceFate.PRESENT


def track_gone(previous: Mapping[int, float], members: Iterable[Member], listing: Listing | None,
               now: float) -> dict[int, float]:
    """Update member id -> first time seen gone. An incomplete listing changes nothing."""
    if listing is None or not listing.complete:
        return dict(previous)
    tracked = {}
    for member in members:
        if fate(member, listing) in (InstanceFate.GONE, InstanceFate.TERMINATING):
            tracked[member.id] = previous.get(member.id, now)
    return tracked


def decide(s: HousekeepingFacts) -> HousekeepingDecision:
    """Choose at most one member to remove, or say why none is removed."""
    if not s.is_leader:
        return HousekeepingDecision(None, "not the etcd leader")
    if s.lease_holder != s.me:
        return HousekeepingDecision(None, f"housekeeping lease held by {s.lease_holder or 'nobody yet'}")
    if s.listing is None or not s.listing.complete:
        problem = s.listing.problem if s.listing is not None else "not taken"
        return HousekeepingDecision(None, f"AWS listing incomplete ({problem}): removing nothing")
    listing = s.listing
    candidates = [mh for mh in s.members if fate(mh.member, listing) in (InstanceFate.GONE,
                                                                           InstanceFate.TERMINATING)]
    if not candidates:
        return HousekeepingDecision(None, "no member's instance is known to be gone")
    if s.upgrade_lock_holder:
        return HousekeepingDecision(None, f"upgrade lock held by {s.upgrade_lock_holder}: removing nothing")
    voters = [mh for mh in s.members if not mh.member.is_learner]
    # Learners first: they hold no vote, and a stale one blocks every join.
    candidates.sort(key=lambda mh: (not mh.member.is_learner, s.gone_since.get(mh.member.id, s.now)))
    reasons = []
    for mh in candidates:
        m = mh.member
        label = f"member {m.hex_id} ({m.name or 'never started'})"
        gone_for = s.now - s.gone_since.get(m.id, s.now)
        if gone_for < s.grace_period:
            reasons.append(f"{label}: instance gone for {gone_for:.0f} s of the {s.grace_period:.0f} s grace")
            continue
        if not m.is_learner:
            remaining = len(voters) - 1
            healthy = sum(1 for v in voters if v.healthy and v.member.id != m.id)
            quorum = remaining // 2 + 1
            if healthy < quorum:
                reasons.append(f"{label}: removal would leave {healthy} healthy of {remaining} voting "
                               f"members, below the quorum of {quorum}")
                continue
        if s.snapshot_done_at is not None and s.snapshot_done_at < s.gone_since.get(m.id, s.now):
            return HousekeepingDecision(None, f"{label}: instance {fate(m, listing).value} for {gone_for:.0f} s: "
                                        "taking a snapshot before removing it", snapshot_first=True)
        return HousekeepingDecision(m, f"{label}: instance {fate(m, listing).value} for "
                                    f"{gone_for:.0f} s (grace {s.grace_period:.0f} s): removing it")
    return HousekeepingDecision(None, "; ".join(reasons))


def calm(members: Iterable[MemberHealth], gone_since: Mapping[int, float], listing: Listing | None) -> bool:
    """Whether nothing is changing, so that the leader may list AWS at its slow pace: every member
    healthy and a voter, none of their instances gone, and every member's instance in the listing
    (a member the listing does not show yet keeps the leader busy, so that the next listing soon
    shows its instance and the records can publish it)."""
    members = tuple(members)
    listed = listing is None or not listing.complete or all(
        fate(mh.member, listing) is InstanceFate.PRESENT for mh in members)
    return (all(mh.healthy and not mh.member.is_learner for mh in members) and not gone_since and listed)
