"""When the leader takes a snapshot, as a table."""

import pytest

from appliance.rules.backups import BackupFacts, Step, decide


def facts(**kw):
    base = dict(now=10_000.0, in_progress=False, surveyed=True, newest_at=9_000.0, failed_at=None,
                removal_waiting=False, interval=1800.0)
    base.update(kw)
    return BackupFacts(**base)


DUE = [
    ("fresh enough: wait, saying when", facts(), Step.WAIT, "next in 800 s"),
    ("older than the interval: take", facts(newest_at=8_000.0), Step.TAKE, "2000 s old (interval 1800 s)"),
    ("none yet: take", facts(newest_at=None), Step.TAKE, "no snapshot"),
    ("a removal waits: take now", facts(removal_waiting=True), Step.TAKE, "snapshot first"),
    ("new leadership: survey first", facts(surveyed=False, newest_at=None), Step.SURVEY, "checking the marker"),
    ("new leadership, a removal waits: the snapshot before the survey",
     facts(surveyed=False, newest_at=None, removal_waiting=True), Step.TAKE, "snapshot first"),
    ("one in progress: wait", facts(in_progress=True, removal_waiting=True), Step.WAIT, "being taken"),
    ("failed a moment ago: wait for the retry", facts(failed_at=9_990.0, newest_at=None), Step.WAIT,
     "failed 10 s ago"),
    ("failed, a removal waits: still the retry delay", facts(failed_at=9_990.0, removal_waiting=True), Step.WAIT,
     "a removal waits for it"),
    ("failed long ago: take", facts(failed_at=9_000.0, newest_at=None), Step.TAKE, "no snapshot"),
    ("the mode changed after the newest snapshot: take", facts(newest_revision=40, must_cover=57), Step.TAKE,
     "mode changed at revision 57, after the newest snapshot (revision 40)"),
    ("the newest snapshot holds the mode: wait", facts(newest_revision=57, must_cover=57), Step.WAIT, "next in"),
]


@pytest.mark.parametrize("name,facts,step,words", DUE, ids=[c[0] for c in DUE])
def test_when_to_take(name, facts, step, words):
    decision = decide(facts)
    assert (decision.step, words in decision.reason) == (step, True), decision.reason
