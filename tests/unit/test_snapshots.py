"""Snapshots as tables: when the leader takes one, which ones retention keeps, how a file is checked."""

import base64
import datetime
import hashlib

import pytest

from appliance.aws.snapshots import StoredSnapshot, composite_checksum, parse_uri
from appliance.cluster import retention
from appliance.cluster.backup import BackupSnapshot, Step, decide
from appliance.etcd.snapshot import HASH_SIZE, PART_SIZE, hashes


def snap(**kw):
    base = dict(now=10_000.0, in_progress=False, surveyed=True, newest_at=9_000.0, failed_at=None,
                removal_waiting=False, interval=1800.0)
    base.update(kw)
    return BackupSnapshot(**base)


DUE = [
    ("fresh enough: wait, saying when", snap(), Step.WAIT, "next in 800 s"),
    ("older than the interval: take", snap(newest_at=8_000.0), Step.TAKE, "2000 s old (interval 1800 s)"),
    ("none yet: take", snap(newest_at=None), Step.TAKE, "no snapshot"),
    ("a removal waits: take now", snap(removal_waiting=True), Step.TAKE, "snapshot first"),
    ("new leadership: survey first", snap(surveyed=False, newest_at=None), Step.SURVEY, "checking the marker"),
    ("new leadership, a removal waits: the snapshot before the survey",
     snap(surveyed=False, newest_at=None, removal_waiting=True), Step.TAKE, "snapshot first"),
    ("one in progress: wait", snap(in_progress=True, removal_waiting=True), Step.WAIT, "being taken"),
    ("failed a moment ago: wait for the retry", snap(failed_at=9_990.0, newest_at=None), Step.WAIT,
     "failed 10 s ago"),
    ("failed, a removal waits: still the retry delay", snap(failed_at=9_990.0, removal_waiting=True), Step.WAIT,
     "a removal waits for it"),
    ("failed long ago: take", snap(failed_at=9_000.0, newest_at=None), Step.TAKE, "no snapshot"),
    ("the mode changed after the newest snapshot: take", snap(newest_revision=40, must_cover=57), Step.TAKE,
     "mode changed at revision 57, after the newest snapshot (revision 40)"),
    ("the newest snapshot holds the mode: wait", snap(newest_revision=57, must_cover=57), Step.WAIT, "next in"),
]


@pytest.mark.parametrize("name,facts,step,words", DUE, ids=[c[0] for c in DUE])
def test_when_to_take(name, facts, step, words):
    decision = decide(facts)
    assert (decision.step, words in decision.reason) == (step, True), decision.reason


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


def test_hashes_check_etcd_s_trailer(tmp_path):
    body = b"bbolt pages " * 5000
    good = tmp_path / "good.db"
    good.write_bytes(body + hashlib.sha256(body).digest())
    size, sha256, parts, trailer_ok = hashes(str(good))
    assert (size, trailer_ok) == (len(body) + HASH_SIZE, True)
    assert sha256 == hashlib.sha256(good.read_bytes()).hexdigest() and len(parts) == 1
    bad = tmp_path / "bad.db"
    flipped = bytearray(good.read_bytes())
    flipped[100] ^= 1
    bad.write_bytes(bytes(flipped))
    assert hashes(str(bad))[3] is False
    short = tmp_path / "short.db"
    short.write_bytes(b"x" * 10)
    assert hashes(str(short))[3] is False


def test_hashes_across_parts(tmp_path):
    body = b"\x01" * (PART_SIZE + 1000)  # the trailer straddles nothing, the body two parts
    path = tmp_path / "two.db"
    path.write_bytes(body + hashlib.sha256(body).digest())
    size, sha256, parts, trailer_ok = hashes(str(path))
    assert trailer_ok and len(parts) == 2
    assert parts[0] == hashlib.sha256(path.read_bytes()[:PART_SIZE]).hexdigest()


def test_composite_checksum_is_s3_s_checksum_of_checksums():
    parts = [hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()]
    expected = base64.b64encode(hashlib.sha256(hashlib.sha256(b"a").digest() + hashlib.sha256(b"b").digest())
                                .digest()).decode() + "-2"
    assert composite_checksum(parts) == expected


@pytest.mark.parametrize("uri,parsed", [("s3://b/etcd/x.db", ("b", "etcd/x.db")), ("s3://b/k", ("b", "k"))])
def test_parse_uri(uri, parsed):
    assert parse_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["b/k", "s3://b", "s3://b/", "https://b/k"])
def test_parse_uri_refuses(uri):
    with pytest.raises(ValueError):
        parse_uri(uri)
