"""The mirror's lag in seconds from heartbeats: only heartbeats at or before the position count."""

from appliance.replication.heartbeat_watch import HeartbeatWatch


def test_lag_follows_the_position_not_the_newest_heartbeat():
    watch = HeartbeatWatch(["http://127.0.0.1:1"], b"/hb")  # never started: no network here
    assert watch.lag(position=100, now=1000.0) is None  # no heartbeat yet
    watch.record(10, b"990.0")
    watch.record(20, b"995.0")
    watch.record(30, b"not a number")  # ignored
    assert watch.lag(position=5, now=1000.0) is None  # the destination is before every heartbeat
    assert watch.lag(position=15, now=1000.0) == 10.0  # it holds the source as of 990
    assert watch.lag(position=25, now=1001.0) == 6.0
    assert watch.lag(position=25, now=1002.0) == 7.0  # no newer heartbeat applied: the lag grows
