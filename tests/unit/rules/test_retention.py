"""Which snapshots retention keeps: the newest K, then one a day within the horizon."""

import datetime

from appliance.model.snapshots import StoredSnapshot
from appliance.rules import retention

NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.timezone.utc)


def at(hours_ago: float, revision: int = 0) -> StoredSnapshot:
    taken = NOW - datetime.timedelta(hours=hours_ago)
    return StoredSnapshot("b", f"etcd/snapshots/etcd-{taken:%Y%m%dT%H%M%SZ}-r{revision}.db", taken, revision, 1)


def kept(snapshots, keep, days):
    deleted = set(retention.plan(snapshots, keep, days, NOW).delete)
    return sorted((s for s in snapshots if s not in deleted), key=lambda s: s.taken_at, reverse=True)


def test_retention_keeps_the_newest_k_whatever_their_age():
    old = [at(24 * 100 + h) for h in range(5)]  # 100 days old, far beyond any daily horizon
    assert kept(old, 3, 14) == old[:3]


def test_retention_thins_older_ones_to_one_a_day_within_the_horizon():
    half_hourly = [at(h / 2) for h in range(24 * 2 * 20)]  # every 30 min for 20 days
    survivors = kept(half_hourly, 48, 14)
    assert survivors[:48] == half_hourly[:48]
    daily = survivors[48:]
    days = [s.taken_at.date() for s in daily]
    assert len(days) == len(set(days)), "more than one snapshot kept for a day"
    assert all(s.taken_at >= NOW - datetime.timedelta(days=14) for s in daily)
    # Each kept day's snapshot is that day's newest.
    for s in daily:
        assert s == max((x for x in half_hourly if x.taken_at.date() == s.taken_at.date()), key=lambda x: x.taken_at)
    assert {s.taken_at.date() for s in survivors} >= {(NOW - datetime.timedelta(days=d)).date() for d in range(14)}


def test_retention_with_nothing_to_delete_says_so():
    result = retention.plan([at(1), at(2)], 48, 14, NOW)
    assert result.delete == () and "none past retention" in result.reason


def test_retention_never_deletes_the_newest():
    assert kept([at(24 * 400)], 0, 0) == [at(24 * 400)]


def named(key: str, hours_ago: float, revision: int = 0) -> StoredSnapshot:
    return StoredSnapshot("b", key, NOW - datetime.timedelta(hours=hours_ago), revision, 1)


STRANGERS = [
    ("a key that names another time", named("etcd/snapshots/etcd-20200101T000000Z-r0.db", 24 * 400)),
    ("a key that names another revision", named(at(24 * 400, 5).key, 24 * 400, 6)),
    ("a key of another form", named("etcd/snapshots/notes.txt", 24 * 400)),
    ("a key that is only the tail", named(at(24 * 400).key.rsplit("/", 1)[-1].split("etcd", 1)[1], 24 * 400)),
    ("a time that is not UTC", StoredSnapshot("b", at(24 * 400).key, at(24 * 400).taken_at.astimezone(
        datetime.timezone(datetime.timedelta(hours=2))), 0, 1)),
]


def test_retention_deletes_only_snapshots_whose_names_it_understood():
    for name, stranger in STRANGERS:
        old = [at(24 * 300 + h) for h in range(3)]
        result = retention.plan([at(1), stranger, *old], 1, 0, NOW)
        assert stranger not in result.delete, name
        assert set(result.delete) == set(old), name
        assert result.reason.endswith("; 1 objects not named as snapshots are kept"), name
