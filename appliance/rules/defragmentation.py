"""Which member the leader defragments, and when (docs/design.md, "Defragmentation").

Compaction frees pages inside a member's bbolt file, which etcd reuses, but only a defragmentation
gives them back (etcd docs, "Maintenance: defragmentation"). Defragmenting blocks that member's
reads and writes while it rewrites the file, so the rule is cautious:

- only the leader holding the housekeeping lease decides, never while the upgrade lock is held,
  and only while every member answers with a leader;
- one member at a time: followers and learners first, the most free space first; the leader is
  never defragmented while it leads: when it is the one left, it hands leadership to a follower
  (MoveLeader), and the next leader defragments it (in a NOSPACE recovery it defragments itself,
  last: writes are refused anyway);
- a member qualifies when its free space reaches :func:`threshold` (the smaller of
  :data:`FREE_BYTES` and :data:`FREE_QUOTA_SHARE` of the quota; the first is ahrtr/etcd-defrag's
  rule) and is a quarter of its file, or its file has reached :data:`FULL_RATIO` of the quota;
  and when it was not defragmented in the last :data:`MIN_INTERVAL` seconds;
- a voting follower is defragmented only if the other healthy voting members keep a quorum while it
  is blocked; a one-member cluster only when its file nears the quota (writes pause meanwhile);
- members in ``forced`` (a NOSPACE recovery, :mod:`.alarms`) qualify whatever their free space,
  interval or quorum: writes are refused anyway until the space comes back.

A pure function of :class:`DefragFacts`.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from appliance.model.maintenance import MIB, MemberSpace

FREE_BYTES = 200 * MIB    # free space that is always worth a defragmentation (ahrtr/etcd-defrag)
FREE_QUOTA_SHARE = 0.1    # ... or this share of the quota, if smaller (small quotas)
FREE_FRACTION = 0.25      # and at least this share of the file (a large file with little free is left)
FULL_RATIO = 0.8          # a file this close to the quota is defragmented for any free space over the threshold
MIN_INTERVAL = 600.0      # seconds between two defragmentations of one member


@dataclasses.dataclass(frozen=True)
class DefragFacts:
    """What the defragmentation rule needs.

    Attributes:
        now: epoch seconds. leads: this member leads and holds the housekeeping lease.
        upgrade_lock_holder: who holds the upgrade lock (None: free; "unknown (…)" counts as held).
        members: every member's space this cycle (unknown sizes: it did not answer).
        quota: the space quota (bytes). running: the member being defragmented now (None: none).
        forced: members a NOSPACE recovery must defragment. last: member id -> epoch seconds of its last
            defragmentation recorded.
    """

    now: float
    leads: bool
    upgrade_lock_holder: str | None
    members: tuple[MemberSpace, ...]
    quota: int
    running: int | None = None
    forced: frozenset[int] = frozenset()
    last: Mapping[int, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class DefragDecision:
    """``action``: "none", "wait", "defragment" (``member``) or "move-leader" (away from ``member``, to
    ``target``); and why, in one sentence."""

    action: str
    reason: str
    member: MemberSpace | None = None
    target: MemberSpace | None = None


def threshold(quota: int) -> int:
    """Free bytes from which a member qualifies: the smaller of :data:`FREE_BYTES` and
    :data:`FREE_QUOTA_SHARE` of ``quota`` (bytes)."""
    return int(min(FREE_BYTES, quota * FREE_QUOTA_SHARE))


def needs(m: MemberSpace, quota: int) -> bool:
    """``m`` has enough free space to be worth defragmenting (its sizes known)."""
    free = m.free_bytes
    if free is None or m.db_size is None or free < threshold(quota):
        return False
    return free >= FREE_FRACTION * m.db_size or m.db_size >= FULL_RATIO * quota


def _quorum(voters: int) -> int:
    return voters // 2 + 1


def _why(m: MemberSpace, quota: int, forced: bool) -> str:
    if forced:
        return "NOSPACE recovery"
    return (f"{m.free_bytes} of {m.db_size} bytes free ({m.free_fraction:.0%}; threshold {threshold(quota)} "
            f"bytes, quota {quota})")


def decide(f: DefragFacts) -> DefragDecision:
    """At most one defragmentation or leadership move now, or why none."""
    if not f.leads:
        return DefragDecision("none", "not the leader holding the housekeeping lease")
    if f.running is not None:
        return DefragDecision("wait", f"defragmenting member {f.running:x}")
    if f.upgrade_lock_holder is not None:
        return DefragDecision("wait", f"the upgrade lock is held ({f.upgrade_lock_holder}): no defragmentation "
                                      "during a rolling upgrade")
    unknown = [m for m in f.members if not m.healthy or m.db_size is None or m.db_size_in_use is None]
    if unknown:
        return DefragDecision("wait", f"{unknown[0].shown()} does not answer with a leader; defragmentation "
                                      "waits for every member")

    def due(m: MemberSpace) -> bool:
        if m.member_id in f.forced:
            return True
        last = f.last.get(m.member_id)
        return needs(m, f.quota) and (last is None or f.now - last >= MIN_INTERVAL)

    voters = [m for m in f.members if not m.is_learner]
    # A voting follower can be blocked only if the other voters keep a quorum meanwhile (always under NOSPACE:
    # writes are refused anyway).
    blockable = len(voters) - 1 >= _quorum(len(voters))
    candidates = sorted((m for m in f.members if due(m)), key=lambda m: (m.is_leader, -(m.free_bytes or 0)))
    if not candidates:
        return DefragDecision("none", "no member has free space worth a defragmentation")
    held = [m for m in candidates if not m.is_leader and not m.is_learner and m.member_id not in f.forced
            and not blockable]
    chosen = next((m for m in candidates if m not in held), None)
    if chosen is None:
        return DefragDecision("wait", f"{held[0].shown()} qualifies ({_why(held[0], f.quota, False)}), but with "
                                      f"{len(voters)} voting members it cannot be blocked without losing quorum")
    forced = chosen.member_id in f.forced
    if not chosen.is_leader:
        return DefragDecision("defragment", f"{chosen.shown()}: {_why(chosen, f.quota, forced)}", chosen)
    others = [m for m in voters if not m.is_leader]
    if forced:
        # Writes are refused anyway; a leadership move would hand the recovery to an agent that does not
        # know which members are done (their records cannot be written under NOSPACE).
        return DefragDecision("defragment", f"{chosen.shown()}, the leader, last: NOSPACE recovery", chosen)
    if not others:
        if (chosen.db_size or 0) >= FULL_RATIO * f.quota:
            return DefragDecision("defragment", f"{chosen.shown()}, the only voting member: "
                                                f"{_why(chosen, f.quota, forced)}; writes pause meanwhile", chosen)
        return DefragDecision("none", f"{chosen.shown()} is the only voting member: defragmented only near the "
                                      "quota")
    if not blockable:
        # The next leader could not block this member either: moving leadership would be an election for nothing.
        return DefragDecision("wait", f"{chosen.shown()} leads and qualifies ({_why(chosen, f.quota, forced)}), but "
                                      f"with {len(voters)} voting members it cannot be blocked without losing quorum")
    # The most caught-up follower takes over.
    target = sorted(others, key=lambda m: -(m.revision or 0))[0]
    return DefragDecision("move-leader", f"{chosen.shown()} leads and qualifies ({_why(chosen, f.quota, forced)}): "
                                         f"moving leadership to {target.shown()} first", chosen, target)
