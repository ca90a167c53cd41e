"""The staleness verdict as a table."""

import pytest

from appliance.rules.freshness import heartbeat_time, judge


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


@pytest.mark.parametrize("value, now, expected", [
    (b"1700000000.5", 1700000001.0, 1700000000.5),
    ("1700000000", 1700000001.0, 1700000000.0),
    (b"1700000050", 1700000001.0, 1700000050.0),  # 49 s ahead: another instance's clock, still a heartbeat
    (b"1700000062", 1700000001.0, None),          # 61 s ahead: not a heartbeat
    (b"nan", 1700000001.0, None),                 # would compare false with every bound: fresh for ever
    (b"inf", 1700000001.0, None),
    (b"-inf", 1700000001.0, None),
    (b"1e400", 1700000001.0, None),
    (b"0", 1700000001.0, None),
    (b"-5", 1700000001.0, None),
    (b"soon", 1700000001.0, None),
    (b"\xff\xfe", 1700000001.0, None),
    (b"", 1700000001.0, None),
])
def test_heartbeat_time(value, now, expected):
    assert heartbeat_time(value, now) == expected


def test_judge_never_calls_a_nan_fresh():
    assert not judge(float("nan"), 100.0, 3.0).fresh
    assert not judge(99.0, float("nan"), 3.0).fresh
