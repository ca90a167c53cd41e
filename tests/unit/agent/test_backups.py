"""The leader's snapshots (appliance/agent/components/backups.py) with a fake store and a stand-in for
``backup.take.take``: the source member, the survey on a new leadership, a take when due, retention, and
failures counted rather than raised. Each background job is waited for with a bounded join. When a snapshot
is due is the rule's (tests/unit/rules/test_backups.py)."""

from __future__ import annotations

import dataclasses
import datetime
import threading

import pytest

from appliance.adapters.aws.s3 import StoreError
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components import backups as component
from appliance.agent.components.backups import Backups
from appliance.model.members import LocalData, MemberHealth
from appliance.model.modes import Mode
from appliance.model.observation import Observation
from appliance.model.snapshots import StoredSnapshot, Tools
from tests.unit.agent.fakes import FakeStore, cluster, member

ME, LOCAL = "i-1", "http://127.0.1.4:2379"
M1, M2, M3 = member(1, ME, "127.0.1.4"), member(2, "i-2", "127.0.1.5"), member(3, "i-3", "127.0.1.6", learner=True)
LEADING = Observation(instance_id=ME, peer_url="http://127.0.1.4:2380", local=LocalData(True, 1), etcd_running=True,
                      cluster=cluster(M1, M2, M3), is_leader=True,
                      member_health=(MemberHealth(M1, True), MemberHealth(M2, True), MemberHealth(M3, True)))


def stored(days_ago: float, revision: int, size: int = 1234) -> StoredSnapshot:
    taken_at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    return StoredSnapshot("bucket", f"etcd/snapshots/etcd-{taken_at:%Y%m%dT%H%M%SZ}-r{revision}.db", taken_at, revision,
                          size)


class Take:
    """Stands in for backup.take.take: records the endpoint and cluster id, puts a new snapshot in the store
    (or raises ``error``); ``hold`` keeps it running until set."""

    def __init__(self, store: FakeStore, error: Exception | None = None):
        self.store, self.error = store, error
        self.asked: list[tuple[str, int]] = []
        self.hold = threading.Event()
        self.hold.set()

    def __call__(self, endpoint, store, tools, work_dir, cluster_id, credentials, tls=None):
        self.asked.append((endpoint, cluster_id))
        assert self.hold.wait(5.0), "the test never let the snapshot finish"
        if self.error is not None:
            raise self.error
        snapshot = stored(0, 99)
        self.store.snapshots.append(snapshot)
        return snapshot


def backups(tmp_path, store: FakeStore, monkeypatch, error: Exception | None = None,
            keep: int = 48, keep_days: int = 14) -> tuple[Backups, Take]:
    take = Take(store, error)
    monkeypatch.setattr(component, "take", take)
    b = Backups(store, Tools("etcdctl", "etcdutl"), str(tmp_path / "spool"), None, AgentMetrics(), 1800.0, keep,
                keep_days, ME, fallback_endpoint=LOCAL)
    return b, take


def settle(b: Backups) -> None:
    """Wait for the background job, at most a few seconds."""
    b.thread.join(timeout=5.0)
    assert not b.thread.is_alive()


def sample(b: Backups, name: str, **labels) -> float | None:
    return b.metrics.registry.get_sample_value(name, labels)


@pytest.mark.parametrize("health, source", [
    (LEADING.member_health, M2.client_urls[0]),
    ((MemberHealth(M1, True), MemberHealth(M2, False), MemberHealth(M3, True)), LOCAL),
    ((MemberHealth(M1, True),), LOCAL),
    ((), LOCAL),
], ids=["a healthy follower", "the follower is unhealthy, a learner is no source", "the leader alone",
        "health not read"])
def test_the_source_is_a_healthy_follower_else_the_local_member(tmp_path, monkeypatch, health, source):
    b, _ = backups(tmp_path, FakeStore(), monkeypatch)
    assert b.source(dataclasses.replace(LEADING, member_health=health)) == source


def test_a_new_leadership_surveys_then_takes_the_first_snapshot(tmp_path, monkeypatch):
    store = FakeStore()
    b, take = backups(tmp_path, store, monkeypatch)
    assert b.tick(LEADING, False) == "new leadership: checking the marker and the newest snapshot"
    settle(b)
    assert store.calls == ["read_marker", "write_marker", "list"] and take.asked == []
    assert (store.marker["cluster_id"], store.marker["written_by"]) == ("c1", ME)
    assert b.last_outcome == "0 snapshots in s3://bucket/etcd/"
    assert b.tick(LEADING, False) == "no snapshot of this cluster yet"
    settle(b)
    assert take.asked == [(M2.client_urls[0], 0xC1)]
    assert (b.newest_revision, sample(b, "etcd_appliance_snapshots_total", outcome="ok")) == (99, 1.0)
    assert sample(b, "etcd_appliance_snapshot_bytes") == 1234 and b.done_at > -float("inf")
    assert b.last_outcome.startswith("took s3://bucket/etcd/") and b.failed_at is None
    wait = b.tick(LEADING, False)
    assert wait.startswith("the newest snapshot is ") and "s old; next in 1" in wait


def test_a_marker_there_is_not_written_again_and_a_due_snapshot_is_taken(tmp_path, monkeypatch):
    store = FakeStore(marker={"cluster": "etcd", "cluster_id": "c1"}, snapshots=[stored(2, 50), stored(3, 40)])
    b, take = backups(tmp_path, store, monkeypatch, keep=1, keep_days=0)
    b.tick(LEADING, False)
    settle(b)
    assert "write_marker" not in store.calls and b.newest_revision == 50
    assert b.tick(LEADING, False).startswith("the newest snapshot is 1728")  # two days: past the interval
    settle(b)
    assert len(take.asked) == 1
    assert sorted(s.revision for s in store.deleted) == [40, 50]  # retention: the newest one only


def test_a_change_of_mode_after_the_newest_snapshot_takes_one(tmp_path, monkeypatch):
    store = FakeStore(marker={"cluster": "etcd"}, snapshots=[stored(0, 50)])
    b, take = backups(tmp_path, store, monkeypatch)
    b.tick(LEADING, False)
    settle(b)
    assert b.tick(dataclasses.replace(LEADING, mode=(Mode.PASSIVE, 60)), False).startswith(
        "the cluster's mode changed at revision 60")
    settle(b)
    assert len(take.asked) == 1


def test_a_removal_waiting_takes_a_snapshot_before_the_survey(tmp_path, monkeypatch):
    store = FakeStore()
    b, take = backups(tmp_path, store, monkeypatch)
    assert b.tick(LEADING, True) == "a member is to be removed: snapshot first"
    settle(b)
    assert len(take.asked) == 1 and "read_marker" not in store.calls


def test_one_job_at_a_time(tmp_path, monkeypatch):
    b, take = backups(tmp_path, FakeStore(), monkeypatch)
    take.hold.clear()
    b.tick(LEADING, True)
    try:
        assert b.in_progress and b.tick(LEADING, True) == "a snapshot is being taken"
    finally:
        take.hold.set()
    settle(b)
    assert len(take.asked) == 1


@pytest.mark.parametrize("error", [StoreError("upload did not verify"), RuntimeError("a bug")],
                         ids=["an expected failure", "a bug"])
def test_a_failed_snapshot_is_counted_and_retried_later_never_raised(tmp_path, monkeypatch, error):
    b, take = backups(tmp_path, FakeStore(), monkeypatch, error=error)
    b.tick(LEADING, True)
    settle(b)
    assert sample(b, "etcd_appliance_snapshots_total", outcome="failed") == 1.0
    assert b.last_outcome.startswith("failed: ") and b.failed_at is not None and b.done_at > -float("inf")
    assert b.tick(LEADING, True).endswith("retrying 60 s after it (a removal waits for it)")
    assert len(take.asked) == 1


def test_a_new_leadership_surveys_again_and_the_status_says_where_things_stand(tmp_path, monkeypatch):
    store = FakeStore(marker={"cluster": "etcd"}, snapshots=[stored(0, 50)])
    b, _ = backups(tmp_path, store, monkeypatch)
    b.tick(LEADING, False)
    settle(b)
    b.lost_leadership()
    assert b.tick(LEADING, False) == "new leadership: checking the marker and the newest snapshot"
    settle(b)
    assert store.calls.count("read_marker") == 2
    assert b.status(True) == {"location": "s3://bucket/etcd/", "last": b.last_outcome, "next": b.reason.last}
    assert b.status(False)["next"] == "not the leader"
