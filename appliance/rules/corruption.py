"""Which member's data is corrupt, judged by the majority (docs/design.md, "Corrupt members").

Every member applies the same log, so at one revision every member's key-value hash (HashKV) is
the same; etcd's own corruption check compares them the same way (etcd docs, "Data corruption
detection"). A member whose hash differs from the one a quorum of the voting members agree on
has data that is not the cluster's: it is replaced (removed, its data set aside by its agent,
and it rejoins as a learner from the others). The rule never acts on a minority's word:

- a hash counts only from a member that answered at the asked revision with the same compacted
  revision as the others (a compaction between two answers makes the round inconclusive);
- the hash that wins must be held by a quorum of *all* voting members, not of those that answered;
- one member is replaced at a time, and only if the voting members left (those holding the
  winning hash) still form a quorum of the smaller cluster;
- the leader never removes itself: when the odd member is the leader, it first moves leadership
  to a member of the majority.

A pure function of :class:`CorruptionFacts`.
"""

from __future__ import annotations

import collections
import dataclasses

from appliance.model.maintenance import KvHash, MemberSpace


@dataclasses.dataclass(frozen=True)
class CorruptionFacts:
    """``leads``: this member leads and holds the housekeeping lease; ``members``: every member this cycle;
    ``hashes``: the answers at ``revision`` (members that did not answer are missing)."""

    leads: bool
    revision: int
    members: tuple[MemberSpace, ...]
    hashes: tuple[KvHash, ...]


@dataclasses.dataclass(frozen=True)
class CorruptionDecision:
    """``verdict``: "consistent", "inconclusive", "no-majority", "replace" (``member``), "move-leader" (away from
    ``member`` to ``target``) or "wait"; and why, in one sentence."""

    verdict: str
    reason: str
    member: MemberSpace | None = None
    target: MemberSpace | None = None


def decide(f: CorruptionFacts) -> CorruptionDecision:
    """Compare the hashes and say which member, if any, to replace."""
    if not f.leads:
        return CorruptionDecision("inconclusive", "not the leader holding the housekeeping lease")
    by_id = {m.member_id: m for m in f.members}
    # One answer a member (the first), and only for the revision asked.
    answers = list({h.member_id: h for h in reversed(f.hashes) if h.member_id in by_id
                    and h.revision == f.revision}.values())
    if len({h.compact_revision for h in answers}) > 1:
        return CorruptionDecision("inconclusive", f"members answered for revision {f.revision} with different "
                                                  "compacted revisions (a compaction ran meanwhile)")
    voters = [m for m in f.members if not m.is_learner]
    quorum = len(voters) // 2 + 1
    groups = collections.Counter(h.hash for h in answers if not by_id[h.member_id].is_learner)
    winner = next((value for value, count in groups.most_common(1) if count >= quorum), None)
    if winner is None:
        return CorruptionDecision("no-majority", f"no hash at revision {f.revision} is held by {quorum} of the "
                                                 f"{len(voters)} voting members ({len(answers)} answered): not "
                                                 "acting on a minority's word")
    odd = sorted((by_id[h.member_id] for h in answers if h.hash != winner), key=lambda m: m.member_id)
    if not odd:
        missing = len(f.members) - len(answers)
        return CorruptionDecision("consistent", f"{len(answers)} members agree at revision {f.revision}"
                                                + (f" ({missing} did not answer)" if missing else ""))
    member = odd[0]
    if not member.is_learner:
        keep = [m for m in voters if m.member_id != member.member_id
                and any(h.member_id == m.member_id and h.hash == winner for h in answers) and m.healthy]
        if len(keep) < (len(voters) - 1) // 2 + 1:
            return CorruptionDecision("wait", f"{member.shown()}'s hash differs from the majority's at revision "
                                              f"{f.revision}, but replacing it would leave {len(keep)} healthy "
                                              f"voting members of {len(voters) - 1}: no quorum")
    if member.is_leader:
        target = next((m for m in voters if m.member_id != member.member_id and m.healthy
                       and any(h.member_id == m.member_id and h.hash == winner for h in answers)), None)
        if target is None:
            return CorruptionDecision("wait", f"{member.shown()} leads and its hash differs, but no healthy member "
                                              "of the majority can take over")
        return CorruptionDecision("move-leader", f"{member.shown()} leads and its hash differs from the "
                                                 f"majority's at revision {f.revision}: moving leadership to "
                                                 f"{target.shown()} first", member, target)
    return CorruptionDecision("replace", f"{member.shown()}'s key-value hash at revision {f.revision} differs from "
                                         f"the one {groups[winner]} of {len(voters)} voting members agree on: "
                                         "removing it, so that its agent sets the data aside and rejoins as a "
                                         "learner", member)
