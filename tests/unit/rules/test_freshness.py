"""The staleness verdict as a table."""

import pytest

from appliance.rules.freshness import judge


@pytest.mark.parametrize("beat, now, error, fresh, staleness, words", [
    (None, 100.0, "", False, None, "no heartbeat read yet"),
    (None, 100.0, "boom", False, None, "last read failed: boom"),
    (99.0, 100.0, "", True, 1.0, "1.0 s old"),
    (97.0, 100.0, "", True, 3.0, "3.0 s old"),
    (96.9, 100.0, "", False, 3.1, "more than 3 s"),
    (98.0, 100.0, "timeout", True, 2.0, "last read failed: timeout"),
    (90.0, 100.0, "timeout", False, 10.0, "more than 3 s (last read failed: timeout)"),
    (101.0, 100.0, "", True, 0.0, "0.0 s old"),  # a clock behind the leader's counts as fresh, not negative
])
def test_judge(beat, now, error, fresh, staleness, words):
    verdict = judge(beat, now, 3.0, error)
    assert verdict.fresh is fresh
    assert verdict.staleness == pytest.approx(staleness) if staleness is not None else verdict.staleness is None
    assert words in verdict.reason
