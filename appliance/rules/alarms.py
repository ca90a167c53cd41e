"""Clearing a NOSPACE alarm without a human (docs/design.md, "The NOSPACE alarm").

etcd raises NOSPACE when a member's file reaches the space quota and from then on refuses every
write but deletes and compactions, on every member, until the alarm is disarmed (etcd docs,
"Maintenance: space quota"). The way back is etcd's own: compact, defragment every member,
disarm. The steps are derived from the records in etcd, not from memory, so that a new leader
carries on where the last one stopped:

1. compact up to the current revision, once since the alarm was seen, unless the history is compacted
   up to it already (:mod:`.compaction`, which decides the same way);
2. defragment each member not defragmented since that compaction (:mod:`.defragmentation` with
   those members ``forced``);
3. disarm every NOSPACE alarm, but only if the files are now below :data:`DISARM_RATIO` of the quota:
   otherwise the data itself outgrew the quota, the alarm would come back at the next write, and
   the way out is a larger ``ETCD_QUOTA_BACKEND_BYTES`` (said in the reason).

A pure function of :class:`NospaceFacts`.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from appliance.model.maintenance import MemberSpace

DISARM_RATIO = 0.9  # files must be below this share of the quota before the alarm is disarmed


@dataclasses.dataclass(frozen=True)
class NospaceFacts:
    """What the NOSPACE rule needs.

    Attributes:
        leads: this member leads and holds the housekeeping lease. alarmed: members with a NOSPACE alarm.
        revision: the cluster's current revision (None: unknown). compacted, compacted_at: the last
            compaction recorded (revision, epoch seconds; 0: none). members: every member's space.
        defragmented: member id -> epoch seconds of its last defragmentation recorded. quota: bytes.
        since: when this agent first saw the alarm (epoch seconds).
    """

    leads: bool
    alarmed: tuple[int, ...]
    revision: int | None
    compacted: int
    compacted_at: float
    members: tuple[MemberSpace, ...]
    defragmented: Mapping[int, float]
    quota: int
    since: float = 0.0


@dataclasses.dataclass(frozen=True)
class NospaceDecision:
    """``step``: "none", "compact", "defragment" (the members in ``pending``), "wait", "disarm" or "stuck"; and
    why."""

    step: str
    reason: str
    pending: frozenset[int] = frozenset()


def pending(f: NospaceFacts) -> frozenset[int]:
    """The members not defragmented since the last compaction."""
    return frozenset(m.member_id for m in f.members if f.defragmented.get(m.member_id, 0.0) < f.compacted_at)


def decide(f: NospaceFacts) -> NospaceDecision:
    """The next step of clearing NOSPACE, or none."""
    if not f.alarmed:
        return NospaceDecision("none", "no NOSPACE alarm")
    names = ", ".join(sorted(format(m, "x") for m in set(f.alarmed)))
    if not f.leads:
        return NospaceDecision("none", f"NOSPACE raised by {names}; the leader clears it")
    compacted = f.compacted_at >= f.since or (f.revision is not None and 0 < f.revision <= f.compacted)
    # The compaction rule compacts again NOSPACE_AGAIN after its last one while the alarm lasts: a new compaction
    # makes every member pending again (pending() compares with compacted_at), which is what an operator's
    # deletes need.
    if not f.compacted_at or not compacted:
        return NospaceDecision("compact", f"NOSPACE raised by {names}: step 1 of 3, compacting the history")
    left = pending(f)
    if left:
        return NospaceDecision("defragment", f"NOSPACE raised by {names}: step 2 of 3, defragmenting "
                                             f"{len(left)} member(s) not defragmented since the compaction", left)
    unknown = [m for m in f.members if m.db_size is None]
    if unknown or not f.members:
        return NospaceDecision("wait", f"NOSPACE raised by {names}: compacted and defragmented, but the size of "
                                       f"{unknown[0].shown() if unknown else 'every member'} is unknown this cycle; "
                                       "disarming waits for it")
    biggest = max(m.db_size or 0 for m in f.members)
    if biggest >= DISARM_RATIO * f.quota:
        return NospaceDecision("stuck", f"NOSPACE raised by {names}: compacted and defragmented, yet a member's "
                                        f"file is {biggest} bytes of the {f.quota}-byte quota: the data outgrew "
                                        "it; raise ETCD_QUOTA_BACKEND_BYTES (the alarm stays until then)")
    return NospaceDecision("disarm", f"NOSPACE raised by {names}: step 3 of 3, compacted and every member "
                                     f"defragmented (largest file {biggest} bytes of {f.quota}): disarming")
