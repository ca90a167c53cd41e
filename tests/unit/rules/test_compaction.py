"""How far the leader compacts, as a table: retention and its period, space pressure, a snapshot, NOSPACE."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.model.maintenance import MIB
from appliance.rules.compaction import (
    MIN_PERIOD,
    NOSPACE_AGAIN,
    CompactionFacts,
    decide,
    period,
    pressing,
)

QUOTA = 2048 * MIB
HALF = QUOTA // 2
NOW = 10_000.0
# (epoch seconds, revision), oldest first; with the retention of 3600 s, the sample at 6_400 is exactly that old.
SAMPLES = ((5_000.0, 150), (6_000.0, 200), (6_400.0, 250), (9_000.0, 400), (9_995.0, 480), (10_000.0, 500))


def facts(**kw):
    base = dict(now=NOW, leads=True, revision=500, compacted=100, compacted_at=5_000.0, samples=SAMPLES,
                retention=3600.0, quota=QUOTA, in_use=100 * MIB, nospace_since=None, snapshot_running=False)
    base.update(kw)
    return CompactionFacts(**base)


CASES = [
    # who decides, and on what
    ("not the leader: nothing", facts(leads=False), None, "not the leader"),
    ("not the leader, NOSPACE raised: nothing", facts(leads=False, nospace_since=9_000.0), None, "not the leader"),
    ("revision unknown: nothing", facts(revision=None), None, "revision is unknown"),
    ("revision 0 counts as unknown", facts(revision=0), None, "revision is unknown"),
    ("revision unknown under NOSPACE: nothing", facts(revision=None, nospace_since=9_000.0), None,
     "revision is unknown"),
    # retention
    ("retention: the newest sample exactly the retention old", facts(), 250, "keeping 3600 s of history"),
    ("retention: a sample one second too young is skipped",
     facts(samples=((6_000.0, 200), (6_401.0, 250), (9_000.0, 400))), 200, "compacting to revision 200"),
    ("retention: never compacted before", facts(compacted=0, compacted_at=0.0), 250, "compacting to revision 250"),
    ("retention: no sample old enough yet", facts(samples=((6_401.0, 250), (9_000.0, 400))), None,
     "no revision seen 3600 s ago yet"),
    ("retention: no samples at all", facts(samples=()), None, "no revision seen"),
    ("retention: target already compacted", facts(compacted=250), None, "already compacted"),
    ("retention: target below the compacted revision", facts(compacted=300), None,
     "history before revision 300 is already compacted"),
    ("retention: one revision above the compacted one", facts(compacted=249), 250, "compacting to revision 250"),
    # the period between two compactions by retention
    ("period: compacted 300 s ago, a tenth of 3600 s is 360 s", facts(compacted_at=9_700.0), None,
     "compacted 300 s ago; the next within 360 s"),
    ("period: exactly one period ago", facts(compacted_at=NOW - 360.0), 250, "compacting to revision 250"),
    ("period: short retention pauses at least MIN_PERIOD",
     facts(retention=300.0, compacted_at=NOW - 50.0), None, "the next within 60 s"),
    ("period: short retention, MIN_PERIOD over", facts(retention=300.0, compacted_at=NOW - 60.0), 400,
     "keeping 300 s of history"),
    # a snapshot
    ("a snapshot running defers a retention compaction", facts(snapshot_running=True), None,
     "a snapshot is being taken"),
    # space pressure: the history of one cycle is kept
    ("pressure at exactly half the quota: compact to the sample before this cycle's", facts(in_use=HALF), 480,
     "compacting to revision 480, keeping one cycle of history instead of 3600 s"),
    ("pressure: this cycle's own sample is never the target",
     facts(in_use=HALF, samples=SAMPLES[:4] + ((NOW, 500),)), 400, "compacting to revision 400"),
    ("pressure: a sample above the current revision is held to it",
     facts(in_use=HALF, revision=470, compacted=100, samples=((9_000.0, 400), (9_995.0, 480))), 470,
     "compacting to revision 470"),
    ("one byte below half the quota: retention speaks", facts(in_use=HALF - 1), 250, "keeping 3600 s"),
    ("in use unknown: no pressure", facts(in_use=None), 250, "keeping 3600 s"),
    ("pressure does not wait for a snapshot", facts(in_use=HALF, snapshot_running=True), 480, "space presses"),
    ("pressure does not wait for the period", facts(in_use=HALF, compacted_at=NOW - 5.0), 480, "space presses"),
    ("pressure, only this cycle's sample", facts(in_use=HALF, samples=((NOW, 500),)), None,
     "the history before this cycle is compacted already"),
    ("pressure, no samples", facts(in_use=HALF, samples=()), None, "compacted already (revision 100)"),
    ("pressure, the previous cycle's revision already compacted", facts(in_use=HALF, compacted=480), None,
     "compacted already (revision 480)"),
    # NOSPACE
    ("NOSPACE: compact everything up to the current revision", facts(nospace_since=9_000.0), 500,
     "NOSPACE: compacting all history up to the current revision 500"),
    ("NOSPACE: compacted exactly when the alarm was seen: not twice",
     facts(nospace_since=NOW - 300, compacted_at=NOW - 300, compacted=450), None,
     "history compacted to revision 450 since the alarm"),
    ("NOSPACE that lasts: compacted again NOSPACE_AGAIN later, the revision moved (an operator's deletes)",
     facts(nospace_since=NOW - 1000, compacted_at=NOW - 600, compacted=450), 500, "NOSPACE: compacting"),
    ("NOSPACE that lasts, the revision did not move: nothing to compact",
     facts(nospace_since=NOW - 1000, compacted_at=NOW - 600, compacted=500), None, "since the alarm"),
    ("NOSPACE: compacted after the alarm, revision moved on (deletes): not twice",
     facts(nospace_since=NOW - 500, compacted_at=NOW - 400, compacted=450), None, "since the alarm"),
    ("NOSPACE: current revision already compacted", facts(nospace_since=9_000.0, compacted=500), None,
     "since the alarm"),
    ("NOSPACE: a snapshot does not defer it", facts(nospace_since=9_000.0, snapshot_running=True), 500,
     "NOSPACE: compacting"),
    ("NOSPACE: the period does not defer it",
     facts(nospace_since=NOW - 10.0, compacted_at=NOW - 100.0, compacted=450), 500, "NOSPACE: compacting"),
    ("NOSPACE under pressure: all history, not all but one cycle", facts(nospace_since=9_000.0, in_use=QUOTA), 500,
     "NOSPACE: compacting"),
    ("NOSPACE with no samples: the current revision", facts(nospace_since=9_000.0, samples=()), 500,
     "NOSPACE: compacting"),
]


@pytest.mark.parametrize("name,snapshot,revision,words", CASES, ids=[c[0] for c in CASES])
def test_decide(name, snapshot, revision, words):
    decision = decide(snapshot)
    assert decision.revision == revision, decision.reason
    assert words in decision.reason


@pytest.mark.parametrize("retention,expected", [
    pytest.param(3600.0, 360.0, id="a-tenth-of-an-hour"),
    pytest.param(604800.0, 60480.0, id="a-tenth-of-a-week"),
    pytest.param(600.0, MIN_PERIOD, id="a-tenth-is-exactly-the-minimum"),
    pytest.param(60.0, MIN_PERIOD, id="below-the-minimum"),
])
def test_period(retention, expected):
    assert period(retention) == expected


@pytest.mark.parametrize("in_use,quota,expected", [
    pytest.param(HALF, QUOTA, True, id="exactly-half"),
    pytest.param(HALF - 1, QUOTA, False, id="just-below-half"),
    pytest.param(QUOTA, QUOTA, True, id="full"),
    pytest.param(None, QUOTA, False, id="unknown"),
    pytest.param(HALF, 0, False, id="no-quota"),
])
def test_pressing(in_use, quota, expected):
    assert pressing(in_use, quota) is expected


@st.composite
def compaction_facts(draw):
    """Facts as an agent sees them: its samples oldest first, the revision never going back."""
    now = draw(st.floats(min_value=0.0, max_value=20_000.0, allow_nan=False))
    revision = draw(st.sampled_from([None, 0]) if not draw(st.integers(0, 9)) else st.integers(1, 1_000))
    top = max(revision or 1, 1)
    times = sorted(draw(st.lists(st.floats(min_value=0.0, max_value=now, allow_nan=False), max_size=8)))
    revisions = sorted(draw(st.lists(st.integers(min_value=1, max_value=top), min_size=len(times),
                                     max_size=len(times))))
    quota = draw(st.sampled_from([64 * MIB, QUOTA]))
    return CompactionFacts(
        now=now, leads=draw(st.integers(0, 9)) > 0, revision=revision,
        compacted=draw(st.one_of(st.integers(min_value=0, max_value=top // 2), st.integers(0, top + 50))),
        compacted_at=draw(st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=now, allow_nan=False))),
        samples=tuple(zip(times, revisions, strict=True)),
        retention=draw(st.sampled_from([60.0, 600.0, 3600.0, 604800.0])), quota=quota,
        in_use=draw(st.one_of(st.none(), st.integers(min_value=0, max_value=quota))),
        nospace_since=draw(st.none() if draw(st.integers(0, 3)) else st.floats(0.0, now, allow_nan=False)),
        snapshot_running=draw(st.booleans()))


@settings(max_examples=150, deadline=None)
@given(f=compaction_facts())
def test_never_a_revision_already_compacted_nor_beyond_the_current_one(f):
    decision = decide(f)
    if decision.revision is None:
        return
    assert f.leads and f.revision is not None, decision.reason
    assert f.compacted < decision.revision <= f.revision, decision.reason


@settings(max_examples=150, deadline=None)
@given(f=compaction_facts())
def test_keeps_the_history_it_promises(f):
    """Without NOSPACE the target is the newest sample before this cycle's under pressure, the newest at least the
    retention old otherwise; a snapshot defers only a compaction by retention, which comes at most once a period."""
    decision = decide(f)
    if decision.revision is None or f.nospace_since is not None:
        return
    if pressing(f.in_use, f.quota):
        earlier = [revision for at, revision in f.samples if at < f.now]
        assert earlier and decision.revision == min(earlier[-1], f.revision), decision.reason
        return
    old_enough = [revision for at, revision in f.samples if at <= f.now - f.retention]
    assert old_enough and decision.revision == old_enough[-1], decision.reason
    assert not f.snapshot_running
    assert not f.compacted_at or f.now - f.compacted_at >= period(f.retention)


@settings(max_examples=150, deadline=None)
@given(f=compaction_facts())
def test_nospace_compacts_once_per_alarm_to_the_current_revision(f):
    if f.nospace_since is None:
        return
    decision = decide(f)
    if decision.revision is not None:
        assert decision.revision == f.revision
        assert f.compacted_at < f.nospace_since or f.now - f.compacted_at >= NOSPACE_AGAIN
    elif f.leads and f.revision:
        assert (f.compacted_at >= f.nospace_since and f.now - f.compacted_at < NOSPACE_AGAIN) \
            or f.revision <= f.compacted, decision.reason


@pytest.mark.parametrize("in_use, floor, presses", [
    (0.49, None, False),   # below half the quota: never
    (0.5, None, True),     # no floor known yet: presses
    (0.6, 0.55, False),    # a large live data set and little history: compacting would give nothing back
    (0.61, 0.5, True),     # a tenth of the quota of history
    (0.85, 0.84, True),    # near the quota whatever the history
], ids=["below half", "no floor", "live data", "history", "near the quota"])
def test_pressing_needs_history_or_the_quota_near(in_use, floor, presses):
    assert pressing(int(in_use * QUOTA), QUOTA, int(floor * QUOTA) if floor is not None else None) is presses
