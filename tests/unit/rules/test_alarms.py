"""Clearing a NOSPACE alarm, as a table: compact, defragment each member since the compaction, disarm or stuck."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.model.maintenance import MIB, MemberSpace
from appliance.rules.alarms import DISARM_RATIO, NospaceFacts, decide, pending

GIB = 1024 * MIB
QUOTA = 2 * GIB
LIMIT = 1932735284  # the first whole byte at DISARM_RATIO (90 %) of the 2 GiB quota (1932735283.2)


def sp(mid, size=GIB, leader=False):
    return MemberSpace(mid, f"i-0{mid}", leader, False, True, size, size, 500)


MEMBERS = (sp(1, leader=True), sp(2), sp(3))
DONE = {1: 9_500.0, 2: 9_400.0, 3: 9_300.0}  # each defragmented after the compaction at 9_000


def facts(**kw):
    base = dict(leads=True, alarmed=(2,), revision=500, compacted=500, compacted_at=9_000.0, members=MEMBERS,
                defragmented=DONE, quota=QUOTA, since=8_000.0)
    base.update(kw)
    return NospaceFacts(**base)


CASES = [
    ("no alarm", facts(alarmed=()), "none", frozenset(), "no NOSPACE alarm"),
    ("no alarm, nothing compacted", facts(alarmed=(), compacted_at=0.0), "none", frozenset(), "no NOSPACE alarm"),
    ("not the leader", facts(leads=False, compacted_at=0.0), "none", frozenset(),
     "NOSPACE raised by 2; the leader clears it"),
    ("members named in hex, sorted, once", facts(leads=False, alarmed=(0xB, 0xA, 0xB)), "none", frozenset(),
     "NOSPACE raised by a, b; the leader clears it"),
    # step 1
    ("never compacted: compact", facts(compacted=0, compacted_at=0.0), "compact", frozenset(),
     "NOSPACE raised by 2: step 1 of 3, compacting the history"),
    ("compacted before the alarm was seen, the revision moved on: compact", facts(compacted_at=7_999.0, revision=501),
     "compact", frozenset(), "step 1 of 3"),
    ("compacted before the alarm, every member defragmented since, revision moved: compact again",
     facts(compacted_at=7_000.0, revision=600), "compact", frozenset(), "step 1 of 3"),
    # The compaction rule compacts nothing when the history is compacted up to the current revision (NOSPACE
    # refuses the writes that would move it): the two rules must agree, or the recovery stalls at step 1.
    ("compacted before the alarm up to the current revision: no compaction can follow, go on",
     facts(compacted_at=7_000.0, defragmented={1: 7_500.0}), "defragment", frozenset({2, 3}), "step 2 of 3"),
    # step 2
    ("compacted exactly when the alarm was seen: no second compaction", facts(compacted_at=8_000.0,
                                                                              defragmented={}),
     "defragment", frozenset({1, 2, 3}), "step 2 of 3, defragmenting 3 member(s)"),
    ("none defragmented since the compaction", facts(defragmented={1: 8_999.0, 2: 8_500.0, 3: 100.0}),
     "defragment", frozenset({1, 2, 3}), "defragmenting 3 member(s) not defragmented since the compaction"),
    ("exactly the members not defragmented since", facts(defragmented={1: 9_500.0}), "defragment",
     frozenset({2, 3}), "defragmenting 2 member(s)"),
    ("only the leader left", facts(defragmented={2: 9_100.0, 3: 9_200.0}), "defragment", frozenset({1}),
     "defragmenting 1 member(s)"),
    ("defragmented exactly at the compaction counts as done", facts(defragmented={**DONE, 3: 9_000.0}),
     "disarm", frozenset(), "step 3 of 3"),
    ("a record of a member no longer in the cluster does not count",
     facts(defragmented={1: 9_500.0, 2: 9_400.0, 9: 9_900.0}), "defragment", frozenset({3}),
     "defragmenting 1 member(s)"),
    # step 3
    ("every member done, files small: disarm", facts(), "disarm", frozenset(),
     "NOSPACE raised by 2: step 3 of 3, compacted and every member defragmented (largest file 1073741824 bytes "
     "of 2147483648): disarming"),
    ("one byte below 90 % of the quota: disarm", facts(members=(sp(1, leader=True), sp(2, LIMIT - 1), sp(3))),
     "disarm", frozenset(), "largest file 1932735283 bytes"),
    ("at 90 % of the quota: stuck, raise the quota", facts(members=(sp(1, leader=True), sp(2, LIMIT), sp(3))),
     "stuck", frozenset(), "a member's file is 1932735284 bytes of the 2147483648-byte quota: the data outgrew it; "
     "raise ETCD_QUOTA_BACKEND_BYTES"),
    ("a file at the quota: stuck", facts(members=(sp(1, QUOTA, leader=True), sp(2), sp(3))), "stuck", frozenset(),
     "ETCD_QUOTA_BACKEND_BYTES"),
    ("several alarms, one disarm", facts(alarmed=(3, 1, 2)), "disarm", frozenset(), "NOSPACE raised by 1, 2, 3"),
]


@pytest.mark.parametrize("name,snapshot,step,left,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, snapshot, step, left, words):
    decision = decide(snapshot)
    assert decision.step == step, decision.reason
    assert decision.pending == left
    assert words in decision.reason


@pytest.mark.parametrize("members", [
    pytest.param((sp(1, leader=True), MemberSpace(2, "i-02", False, False, False), sp(3)), id="a-size-unknown"),
    pytest.param((), id="no-member-known"),
])
def test_never_disarms_on_a_file_size_it_does_not_know(members):
    decision = decide(facts(members=members))
    assert decision.step != "disarm", decision.reason


def test_pending_compares_with_the_compaction():
    assert pending(facts()) == frozenset()
    assert pending(facts(compacted_at=9_350.0)) == frozenset({3})
    assert pending(facts(defragmented={})) == frozenset({1, 2, 3})
    assert pending(facts(members=())) == frozenset()


@st.composite
def nospace_facts(draw):
    members = tuple(sp(mid, draw(st.one_of(st.integers(0, QUOTA), st.just(GIB))), leader=mid == 1)
                    for mid in range(1, draw(st.integers(min_value=1, max_value=5)) + 1))
    moments = st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False)
    return NospaceFacts(
        leads=draw(st.integers(0, 9)) > 0, alarmed=tuple(draw(st.lists(st.integers(1, 5), max_size=3))),
        revision=draw(st.one_of(st.none(), st.integers(1, 1000))), compacted=draw(st.integers(0, 1000)),
        compacted_at=draw(st.one_of(st.just(0.0), moments, st.just(5_000.0))), members=members,
        defragmented={m.member_id: draw(st.one_of(moments, st.just(9_999.0))) for m in members
                      if draw(st.integers(0, 4))}, quota=QUOTA, since=draw(st.one_of(moments, st.just(4_000.0))))


@settings(max_examples=400, deadline=None)
@given(f=nospace_facts())
def test_each_step_only_when_the_previous_are_done(f):
    decision = decide(f)
    assert decision.step in ("none", "compact", "defragment", "wait", "disarm", "stuck")
    if decision.step == "none":
        assert not f.alarmed or not f.leads
        return
    assert f.alarmed and f.leads
    compacted_since = bool(f.compacted_at) and (f.compacted_at >= f.since
                                                or (f.revision is not None and f.revision <= f.compacted))
    assert (decision.step == "compact") == (not compacted_since), decision.reason
    not_done = frozenset(m.member_id for m in f.members if f.defragmented.get(m.member_id, 0.0) < f.compacted_at)
    if decision.step == "defragment":
        assert decision.pending == not_done and not_done
    if decision.step in ("disarm", "stuck"):
        assert compacted_since and not not_done
        below = all(m.db_size < DISARM_RATIO * f.quota for m in f.members)
        assert (decision.step == "disarm") == below, decision.reason
