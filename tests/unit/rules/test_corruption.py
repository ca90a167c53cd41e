"""Which member's data is corrupt, as a table: a quorum of all voting members judges, one member at a time, the
leader never removes itself, and a replacement never costs the quorum."""

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.model.maintenance import KvHash, MemberSpace
from appliance.rules.corruption import CorruptionFacts, decide

REV, CR = 500, 400  # the revision asked for, the compacted revision every member answers with
A, B, C = 0xAAAA, 0xBBBB, 0xCCCC


def ms(mid, leader=False, learner=False, healthy=True):
    return MemberSpace(mid, f"i-0{mid}", leader, learner, healthy, 1000, 500, REV)


def h(mid, value=A, revision=REV, compact=CR):
    return KvHash(mid, revision, value, compact)


L, F2, F3 = ms(1, leader=True), ms(2), ms(3)
THREE = (L, F2, F3)
FIVE = THREE + (ms(4), ms(5))
LEARNER = ms(4, learner=True)


def facts(members=THREE, hashes=None, leads=True):
    return CorruptionFacts(leads, REV, members, tuple(h(m.member_id) for m in members) if hashes is None else hashes)


CASES = [
    ("not the leader", facts(leads=False, hashes=(h(1), h(2), h(3, B))), "inconclusive", None, None,
     "not the leader"),
    # agreement
    ("all agree", facts(), "consistent", None, None, "3 members agree at revision 500"),
    ("all agree, a learner too", facts(THREE + (LEARNER,)), "consistent", None, None, "4 members agree"),
    ("two agree, one did not answer", facts(hashes=(h(1), h(2))), "consistent", None, None,
     "2 members agree at revision 500 (1 did not answer)"),
    ("an answer for another revision is ignored", facts(hashes=(h(1), h(2), h(3, B, revision=499, compact=300))),
     "consistent", None, None, "2 members agree at revision 500 (1 did not answer)"),
    ("an answer of a member not in the cluster is ignored", facts(hashes=(h(1), h(2), h(3), h(9, B))),
     "consistent", None, None, "3 members agree at revision 500"),
    # an inconclusive round
    ("different compacted revisions", facts(hashes=(h(1), h(2), h(3, compact=450))), "inconclusive", None, None,
     "different compacted revisions"),
    ("different compacted revisions and hashes: nothing replaced", facts(hashes=(h(1), h(2), h(3, B, compact=450))),
     "inconclusive", None, None, "a compaction ran meanwhile"),
    ("a learner with another compacted revision", facts(THREE + (LEARNER,), (h(1), h(2), h(3), h(4, compact=450))),
     "inconclusive", None, None, "different compacted revisions"),
    # no majority of all voting members
    ("no answer at all", facts(hashes=()), "no-majority", None, None,
     "no hash at revision 500 is held by 2 of the 3 voting members (0 answered)"),
    ("three voters, one answering", facts(hashes=(h(1),)), "no-majority", None, None,
     "held by 2 of the 3 voting members (1 answered)"),
    ("five voters, two agree, the rest silent", facts(FIVE, (h(1), h(2))), "no-majority", None, None,
     "held by 3 of the 5 voting members (2 answered)"),
    ("five voters, two against two against one", facts(FIVE, (h(1), h(2), h(3, B), h(4, B), h(5, C))),
     "no-majority", None, None, "not acting on a minority's word"),
    ("three voters, all different", facts(hashes=(h(1), h(2, B), h(3, C))), "no-majority", None, None,
     "held by 2 of the 3"),
    ("a learner's hash does not count towards the quorum", facts(THREE + (LEARNER,), (h(1), h(4), h(2, B))),
     "no-majority", None, None, "held by 2 of the 3 voting members (3 answered)"),
    ("two voters that differ: never a replacement", facts((L, F2), (h(1), h(2, B))), "no-majority", None, None,
     "held by 2 of the 2 voting members"),
    ("two voters, one answering", facts((L, F2), (h(1),)), "no-majority", None, None, "held by 2 of the 2"),
    # replacement
    ("one odd follower of three", facts(hashes=(h(1), h(2), h(3, B))), "replace", 3, None,
     "member 3 (i-03)'s key-value hash at revision 500 differs from the one 2 of 3 voting members agree on: "
     "removing it"),
    ("an odd learner", facts(THREE + (LEARNER,), (h(1), h(2), h(3), h(4, B))), "replace", 4, None,
     "member 4 (i-04)'s key-value hash"),
    ("two voters agree, an odd learner", facts((L, F2, ms(3, learner=True)), (h(1), h(2), h(3, B))), "replace", 3,
     None, "member 3 (i-03)"),
    ("one voter, an odd learner", facts((L, ms(2, learner=True)), (h(1), h(2, B))), "replace", 2, None,
     "1 of 1 voting members agree on"),
    ("an odd learner while a majority member is unhealthy: no quorum at stake",
     facts((L, ms(2, healthy=False), F3, LEARNER), (h(1), h(2), h(3), h(4, B))), "replace", 4, None, "member 4"),
    ("an odd follower that is unhealthy itself", facts((L, F2, ms(3, healthy=False)), (h(1), h(2), h(3, B))),
     "replace", 3, None, "member 3"),
    ("four voters, one odd", facts(THREE + (ms(4),), (h(1), h(2), h(3), h(4, B))), "replace", 4, None,
     "3 of 4 voting members agree on"),
    ("five voters, two odd: one at a time, the lowest id first", facts(FIVE, (h(1), h(2), h(5), h(4, B), h(3, C))),
     "replace", 3, None, "member 3 (i-03)"),
    ("five voters, one odd, one unhealthy in the majority", facts((L, F2, F3, ms(4, healthy=False), ms(5)),
                                                                (h(1), h(2), h(3), h(4), h(5, B))),
     "replace", 5, None, "4 of 5 voting members agree on"),
    ("five voters, three agree, one silent, one odd: the three keep the quorum of four",
     facts(FIVE, (h(1), h(2), h(3), h(5, B))), "replace", 5, None, "3 of 5 voting members agree on"),
    # a replacement that would cost the quorum
    ("three voters, the other follower unhealthy", facts((L, ms(2, healthy=False), F3), (h(1), h(2), h(3, B))),
     "wait", None, None, "replacing it would leave 1 healthy voting members of 2: no quorum"),
    ("five voters, two unhealthy in the majority", facts((L, F2, ms(3, healthy=False), ms(4, healthy=False), ms(5)),
                                                        (h(1), h(2), h(3), h(4), h(5, B))),
     "wait", None, None, "member 5 (i-05)'s hash differs from the majority's at revision 500, but replacing it "
     "would leave 2 healthy voting members of 4: no quorum"),
    # the leader
    ("the odd one is the leader: leadership to the majority", facts(hashes=(h(1, B), h(2), h(3))), "move-leader", 1,
     2, "member 1 (i-01) leads and its hash differs from the majority's at revision 500: moving leadership to "
     "member 2 (i-02) first"),
    ("the odd leader, never to an unhealthy member", facts((L, ms(2, healthy=False), F3, ms(4), ms(5)),
                                                           (h(1, B), h(2), h(3), h(4), h(5))), "move-leader", 1, 3,
     "moving leadership to member 3 (i-03)"),
    ("the odd leader, never to a member outside the majority",
     facts(FIVE, (h(1, B), h(2, C), h(3), h(4), h(5))), "move-leader", 1, 3, "moving leadership to member 3"),
    ("the odd leader, never to a learner", facts((L, ms(2, learner=True), F3, ms(4)), (h(1, B), h(2), h(3), h(4))),
     "move-leader", 1, 3, "moving leadership to member 3"),
    ("the odd leader, the majority would lose quorum: wait", facts((L, ms(2, healthy=False), F3),
                                                                  (h(1, B), h(2), h(3))),
     "wait", None, None, "member 1 (i-01)'s hash differs"),
]


@pytest.mark.parametrize("name,snapshot,verdict,member,target,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, snapshot, verdict, member, target, words):
    decision = decide(snapshot)
    assert decision.verdict == verdict, decision.reason
    assert (decision.member.member_id if decision.member else None) == member, decision.reason
    assert (decision.target.member_id if decision.target else None) == target, decision.reason
    assert words in decision.reason


@st.composite
def corruption_facts(draw):
    """One to six members, member 1 leading; each answers at the revision asked, at another, or not at all."""
    members = tuple(ms(mid, leader=mid == 1, learner=mid > 1 and draw(st.integers(0, 3)) == 0,
                       healthy=draw(st.integers(0, 3)) > 0)
                    for mid in range(1, draw(st.integers(min_value=1, max_value=6)) + 1))
    hashes, compacted = [], draw(st.sampled_from([[CR]] * 4 + [[CR, CR - 1]]))  # one round in five mixed
    for m in members:
        kind = draw(st.sampled_from(["asked"] * 6 + ["other", "none"]))
        if kind != "none":
            hashes.append(h(m.member_id, draw(st.sampled_from([A, A, A, B, C])), REV if kind == "asked" else REV - 1,
                            draw(st.sampled_from(compacted))))
    return CorruptionFacts(draw(st.integers(0, 9)) > 0, REV, members, tuple(draw(st.permutations(hashes))))


def _held(f):
    """Hash -> the voting members that answered it at the revision asked."""
    by_id = {m.member_id: m for m in f.members}
    held = collections.defaultdict(set)
    for x in f.hashes:
        if x.revision == f.revision and x.member_id in by_id and not by_id[x.member_id].is_learner:
            held[x.hash].add(x.member_id)
    return held


@settings(max_examples=500, deadline=None)
@given(f=corruption_facts())
def test_never_on_a_minority_word(f):
    """No member is replaced and leadership never moves unless a quorum of ALL voting members holds one hash, the
    odd member answered another, and the healthy voting members left holding it keep a quorum."""
    decision = decide(f)
    assert decision.verdict in ("consistent", "inconclusive", "no-majority", "replace", "move-leader", "wait")
    if decision.verdict not in ("replace", "move-leader"):
        return
    assert f.leads
    voters = [m for m in f.members if not m.is_learner]
    answered = [x for x in f.hashes if x.revision == f.revision]
    assert len({x.compact_revision for x in answered}) == 1
    winners = [value for value, ids in _held(f).items() if len(ids) >= len(voters) // 2 + 1]
    assert len(winners) == 1, decision.reason
    odd = decision.member
    assert any(x.member_id == odd.member_id and x.hash != winners[0] for x in answered), decision.reason
    keep = {i for i in _held(f)[winners[0]] if i != odd.member_id and next(
        m for m in f.members if m.member_id == i).healthy}
    if not odd.is_learner:
        assert len(keep) >= (len(voters) - 1) // 2 + 1, decision.reason
    if decision.verdict == "replace":
        assert not odd.is_leader, decision.reason
    else:
        assert odd.is_leader and decision.target.member_id in keep and not decision.target.is_learner


@settings(max_examples=300, deadline=None)
@given(f=corruption_facts())
def test_consistent_only_when_every_answer_agrees(f):
    decision = decide(f)
    if decision.verdict == "consistent":
        ids = {m.member_id for m in f.members}
        assert len({x.hash for x in f.hashes if x.revision == f.revision and x.member_id in ids}) == 1
        assert max(len(v) for v in _held(f).values()) >= len([m for m in f.members if not m.is_learner]) // 2 + 1
