"""Which member the leader defragments, as a table: guards, threshold, order, quorum, the leader, NOSPACE."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.model.maintenance import MIB, MemberSpace
from appliance.rules.defragmentation import MIN_INTERVAL, DefragFacts, decide, needs, threshold

GIB = 1024 * MIB
QUOTA = 2 * GIB  # threshold: 200 MiB (10 % of the quota would be 204.8 MiB)
NOW = 10_000.0


def sp(mid, free=0, size=GIB, leader=False, learner=False, healthy=True, revision=100, in_use=...):
    """Member ``mid`` (``i-0<mid>``) with ``free`` bytes free in a file of ``size`` bytes."""
    used = (None if size is None else size - free) if in_use is ... else in_use
    return MemberSpace(mid, f"i-0{mid}", leader, learner, healthy, size, used, revision)


L, F2, F3 = sp(1, leader=True), sp(2), sp(3)


def facts(*members, **kw):
    base = dict(now=NOW, leads=True, upgrade_lock_holder=None, members=members or (L, F2, F3), quota=QUOTA,
                running=None, forced=frozenset(), last={})
    base.update(kw)
    return DefragFacts(**base)


WORTH = 300 * MIB  # free in a 1 GiB file: 29 %, over the 200 MiB threshold
DUE2 = sp(2, WORTH)  # a follower worth a defragmentation

CASES = [
    # the guards
    ("not the leader", facts(L, DUE2, F3, leads=False), "none", None, None, "not the leader"),
    ("a defragmentation is running", facts(L, DUE2, F3, running=3), "wait", None, None, "defragmenting member 3"),
    ("the running member is named in hex", facts(L, DUE2, F3, running=0xABC), "wait", None, None,
     "defragmenting member abc"),
    ("upgrade lock held", facts(L, DUE2, F3, upgrade_lock_holder="i-09"), "wait", None, None,
     "the upgrade lock is held (i-09)"),
    ("upgrade lock holder unknown counts as held",
     facts(L, DUE2, F3, upgrade_lock_holder="unknown (lock unreadable)"), "wait", None, None,
     "the upgrade lock is held (unknown (lock unreadable))"),
    ("upgrade lock held, even in a NOSPACE recovery",
     facts(L, DUE2, F3, upgrade_lock_holder="i-09", forced=frozenset({2})), "wait", None, None, "upgrade lock"),
    ("a member without a leader: wait for every member", facts(L, DUE2, sp(3, healthy=False)), "wait", None, None,
     "member 3 (i-03) does not answer with a leader"),
    ("a member's sizes unknown: wait", facts(L, DUE2, sp(3, size=None)), "wait", None, None, "member 3 (i-03)"),
    ("a member's data in use unknown: wait", facts(L, DUE2, sp(3, in_use=None)), "wait", None, None,
     "waits for every member"),
    ("the unhealthy member is the one due: wait", facts(L, sp(2, WORTH, healthy=False), F3), "wait", None, None,
     "member 2 (i-02) does not answer"),
    ("a member without a leader, even in a NOSPACE recovery",
     facts(L, DUE2, sp(3, healthy=False), forced=frozenset({2})), "wait", None, None, "does not answer"),
    # the threshold
    ("no free space anywhere", facts(), "none", None, None, "no member has free space worth a defragmentation"),
    ("a follower with 300 MiB free of 1 GiB", facts(L, DUE2, F3), "defragment", 2, None,
     "member 2 (i-02): 314572800 of 1073741824 bytes free (29%; threshold 209715200 bytes"),
    ("exactly the threshold and exactly a quarter of the file", facts(L, sp(2, 200 * MIB, 800 * MIB), F3),
     "defragment", 2, None, "member 2 (i-02)"),
    ("one byte below the threshold, half the file", facts(L, sp(2, 200 * MIB - 1, 400 * MIB), F3), "none", None,
     None, "no member"),
    ("over the threshold but one byte below a quarter of the file",
     facts(L, sp(2, 250 * MIB - 1, 1000 * MIB), F3), "none", None, None, "no member"),
    ("a file near the quota (80 %) with less than a quarter free", facts(L, sp(2, 200 * MIB, 1639 * MIB), F3),
     "defragment", 2, None, "member 2 (i-02)"),
    ("a file just below 80 % of the quota with less than a quarter free",
     facts(L, sp(2, 200 * MIB, 1638 * MIB), F3), "none", None, None, "no member"),
    ("a file near the quota, free below the threshold", facts(L, sp(2, 200 * MIB - 1, 1900 * MIB), F3), "none",
     None, None, "no member"),
    ("a small quota lowers the threshold to 10 % of it", facts(L, sp(2, 110 * MIB, 400 * MIB), F3, quota=GIB),
     "defragment", 2, None, "threshold 107374182 bytes"),
    ("the same member under a 2 GiB quota: below 200 MiB", facts(L, sp(2, 110 * MIB, 400 * MIB), F3), "none", None,
     None, "no member"),
    # the interval
    ("defragmented 599 s ago", facts(L, DUE2, F3, last={2: NOW - MIN_INTERVAL + 1}), "none", None, None,
     "no member"),
    ("defragmented exactly MIN_INTERVAL ago", facts(L, DUE2, F3, last={2: NOW - MIN_INTERVAL}), "defragment", 2,
     None, "member 2"),
    ("another member defragmented a moment ago", facts(L, DUE2, F3, last={3: NOW - 1}), "defragment", 2, None,
     "member 2"),
    ("the one due recently done: the next due", facts(L, DUE2, sp(3, 260 * MIB), last={2: NOW - 1}), "defragment",
     3, None, "member 3"),
    # the order
    ("the most free first", facts(L, DUE2, sp(3, 400 * MIB)), "defragment", 3, None, "member 3"),
    ("followers before the leader, however free it is", facts(sp(1, 900 * MIB, leader=True), DUE2, F3),
     "defragment", 2, None, "member 2"),
    ("a learner qualifies", facts(L, F2, F3, sp(4, WORTH, learner=True)), "defragment", 4, None, "member 4"),
    ("a learner with more free goes before a follower", facts(L, DUE2, F3, sp(4, 400 * MIB, learner=True)),
     "defragment", 4, None, "member 4"),
    # quorum
    ("two voters: the follower cannot be blocked", facts(L, DUE2), "wait", None, None,
     "with 2 voting members it cannot be blocked without losing quorum"),
    ("two voters: a forced follower is blocked all the same", facts(L, DUE2, forced=frozenset({2})), "defragment", 2,
     None, "member 2 (i-02): NOSPACE recovery"),
    ("two voters and a learner: the learner may be blocked", facts(L, F2, sp(3, WORTH, learner=True)),
     "defragment", 3, None, "member 3"),
    ("four voters: three keep the quorum", facts(L, DUE2, F3, sp(4)), "defragment", 2, None, "member 2"),
    ("one voter and a learner: the learner may be blocked", facts(L, sp(2, WORTH, learner=True)), "defragment", 2,
     None, "member 2"),
    # the leader
    ("the leader the only candidate: leadership to the follower with the newest revision",
     facts(sp(1, WORTH, leader=True), sp(2, revision=100), sp(3, revision=105)), "move-leader", 1, 3,
     "member 1 (i-01) leads and qualifies (314572800 of 1073741824 bytes free (29%; threshold 209715200 bytes, "
     "quota 2147483648)): moving leadership to member 3 (i-03) first"),
    ("the leader the only candidate, followers at one revision: the first", facts(sp(1, WORTH, leader=True), F2, F3),
     "move-leader", 1, 2, "moving leadership to member 2 (i-02)"),
    ("the leader the only candidate: never to a learner",
     facts(sp(1, WORTH, leader=True), sp(2, revision=100), sp(4, revision=50), sp(3, learner=True, revision=900)),
     "move-leader", 1, 2,
     "moving leadership to member 2"),
    ("the leader due, a follower that needs it done recently: leadership moves",
     facts(sp(1, WORTH, leader=True), DUE2, F3, last={2: NOW - 10}), "move-leader", 1, 2, "moving leadership"),
    ("one member, far from the quota: none", facts(sp(1, 600 * MIB, leader=True)), "none", None, None,
     "member 1 (i-01) is the only voting member: defragmented only near the quota"),
    ("one member near the quota: defragmented in place", facts(sp(1, 500 * MIB, 1700 * MIB, leader=True)),
     "defragment", 1, None, "member 1 (i-01), the only voting member: 524288000 of 1782579200 bytes free"),
    ("one member just below 80 % of the quota: none", facts(sp(1, 600 * MIB, 1638 * MIB, leader=True)), "none",
     None, None, "only near the quota"),
    ("one voter and a learner not due: the leader is the only voter",
     facts(sp(1, 600 * MIB, leader=True), sp(2, learner=True)), "none", None, None, "only near the quota"),
    ("one member forced: defragmented in place", facts(sp(1, leader=True), forced=frozenset({1})), "defragment", 1,
     None, "member 1 (i-01), the leader, last: NOSPACE recovery"),
    # NOSPACE recovery
    ("forced: a follower with nothing free qualifies", facts(forced=frozenset({2})), "defragment", 2, None,
     "member 2 (i-02): NOSPACE recovery"),
    ("forced: the interval does not hold it back", facts(forced=frozenset({2}), last={2: NOW - 1}), "defragment", 2,
     None, "NOSPACE recovery"),
    ("forced: followers before the leader", facts(forced=frozenset({1, 2})), "defragment", 2, None,
     "member 2 (i-02): NOSPACE recovery"),
    ("forced: the most free follower first", facts(L, sp(2, MIB), sp(3, 2 * MIB), forced=frozenset({1, 2, 3})),
     "defragment", 3, None, "member 3"),
    ("forced: the leader last, in place, no leadership move", facts(forced=frozenset({1})), "defragment", 1, None,
     "member 1 (i-01), the leader, last: NOSPACE recovery"),
    ("forced: the leader in place even when a follower would take over",
     facts(sp(1, WORTH, leader=True), F2, F3, forced=frozenset({1})), "defragment", 1, None, "the leader, last"),
    ("forced learner", facts(L, F2, F3, sp(4, learner=True), forced=frozenset({4})), "defragment", 4, None,
     "member 4 (i-04): NOSPACE recovery"),
]


@pytest.mark.parametrize("name,snapshot,action,member,target,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, snapshot, action, member, target, words):
    decision = decide(snapshot)
    assert decision.action == action, decision.reason
    assert (decision.member.member_id if decision.member else None) == member, decision.reason
    assert (decision.target.member_id if decision.target else None) == target, decision.reason
    assert words in decision.reason


def test_two_voters_the_leader_does_not_move_leadership_for_a_defragmentation_that_cannot_follow():
    before = decide(facts(sp(1, WORTH, leader=True), sp(2)))
    # What the next leader (member 2) would decide about the old leader, now its follower.
    after = decide(facts(sp(1, WORTH), sp(2, leader=True)))
    assert after.action == "wait" and "cannot be blocked" in after.reason, after.reason
    assert before.action != "move-leader", before.reason


@pytest.mark.parametrize("snapshot,forced_member", [
    pytest.param(facts(L, DUE2, forced=frozenset({1})), 1, id="the-forced-leader"),
    pytest.param(facts(L, DUE2, sp(3, MIB, learner=True), forced=frozenset({3})), 3, id="a-forced-learner"),
])
def test_a_forced_member_is_not_held_up_by_a_follower_that_cannot_be_blocked(snapshot, forced_member):
    decision = decide(snapshot)
    assert decision.action == "defragment" and decision.member.member_id == forced_member, decision.reason


@pytest.mark.parametrize("quota,expected", [
    pytest.param(2 * GIB, 200 * MIB, id="large-quota-200-MiB"),
    pytest.param(8 * GIB, 200 * MIB, id="larger-quota-still-200-MiB"),
    pytest.param(GIB, 107374182, id="small-quota-10-percent"),
    pytest.param(2000 * MIB, 200 * MIB, id="both-rules-meet"),
])
def test_threshold(quota, expected):
    assert threshold(quota) == expected


def test_needs_nothing_of_a_member_that_did_not_answer():
    assert not needs(sp(2, size=None), QUOTA)
    assert not needs(sp(2, WORTH, in_use=None), QUOTA)


@st.composite
def defrag_facts(draw):
    """One to five members, member 1 leading; mostly every member answering."""
    quota = draw(st.sampled_from([GIB, QUOTA]))
    members = []
    for mid in range(1, draw(st.integers(min_value=1, max_value=5)) + 1):
        size = draw(st.integers(min_value=0, max_value=quota))
        free = draw(st.sampled_from([0, size // 3, size // 2, size // 5, draw(st.integers(0, size))]))
        members.append(sp(mid, free, size, leader=mid == 1, learner=mid > 1 and draw(st.integers(0, 3)) == 0,
                          healthy=draw(st.integers(0, 19)) > 0, revision=draw(st.integers(1, 5))))
    ids = [m.member_id for m in members]
    return DefragFacts(
        now=NOW, leads=draw(st.integers(0, 9)) > 0,
        upgrade_lock_holder=draw(st.sampled_from([None] * 8 + ["i-09", "unknown (unreadable)"])),
        members=tuple(members), quota=quota, running=draw(st.sampled_from([None] * 8 + [2])),
        forced=frozenset(draw(st.lists(st.sampled_from(ids), max_size=len(ids))) if draw(st.booleans()) else ()),
        last={i: draw(st.floats(min_value=NOW - 2 * MIN_INTERVAL, max_value=NOW)) for i in ids if draw(st.booleans())})


@settings(max_examples=400, deadline=None)
@given(f=defrag_facts())
def test_the_safety_of_every_decision(f):
    decision = decide(f)
    assert decision.action in ("none", "wait", "defragment", "move-leader"), decision.action
    if decision.action not in ("defragment", "move-leader"):
        return
    m = decision.member
    voters = [x for x in f.members if not x.is_learner]
    assert f.leads and f.running is None and f.upgrade_lock_holder is None
    assert all(x.healthy and x.db_size is not None and x.db_size_in_use is not None for x in f.members)
    due = m.member_id in f.forced or (needs(m, f.quota) and (
        m.member_id not in f.last or f.now - f.last[m.member_id] >= MIN_INTERVAL))
    assert due, decision.reason
    if decision.action == "move-leader":
        assert m.is_leader and m.member_id not in f.forced
        assert decision.target is not None and not decision.target.is_learner and not decision.target.is_leader
        return
    if m.is_leader:
        # The leader is defragmented in place only when forced, or as the only voter near the quota.
        assert m.member_id in f.forced or (len(voters) == 1 and m.db_size >= 0.8 * f.quota), decision.reason
    elif not m.is_learner and m.member_id not in f.forced:
        assert len(voters) - 1 >= len(voters) // 2 + 1, decision.reason


@settings(max_examples=200, deadline=None)
@given(f=defrag_facts())
def test_followers_and_learners_go_before_the_leader(f):
    decision = decide(f)
    if decision.action == "defragment" and decision.member.is_leader:
        voters = sum(1 for x in f.members if not x.is_learner)
        blockable = voters - 1 >= voters // 2 + 1
        # A voting follower that cannot be blocked without losing quorum (and is not forced) waits for ever: it
        # does not hold the leader back.
        due_others = [x for x in f.members if not x.is_leader and (x.member_id in f.forced or (
            needs(x, f.quota) and (x.member_id not in f.last or f.now - f.last[x.member_id] >= MIN_INTERVAL)
            and (x.is_learner or blockable)))]
        assert not due_others, decision.reason
