"""The recoveries (appliance/agent/components/recovery.py) with a fake etcd process and store: a restore that
fails is tried again only after RESTORE_RETRY unless an operator asked, an operator's request gets its answer,
and a restore or a forced new cluster starts etcd alone and is counted in the metrics."""

from __future__ import annotations

import dataclasses
import logging
import pathlib

import pytest

from appliance.adapters.etcd import restore_requests
from appliance.adapters.etcd import snapshot as snapshots
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.recovery import RESTORE_RETRY, Recovery
from appliance.backup import restore
from appliance.model.decisions import Action, Decision
from appliance.model.members import LocalData
from appliance.model.observation import Observation
from appliance.model.snapshots import SnapshotFile, Tools
from tests.unit.agent.fakes import Clock, FakeProcess, FakeStore

ME, PEER = "i-1", "http://127.0.1.4:2380"
TOOLS = Tools("/opt/etcd/etcdctl", "/opt/etcd/etcdutl")
RESTORE = Decision(Action.RESTORE_SNAPSHOT, "the marker says the cluster existed")
SEEDER = Observation(instance_id=ME, peer_url=PEER, local=LocalData(False, None), etcd_running=False)


@dataclasses.dataclass
class Rig:
    recovery: Recovery
    etcd: FakeProcess
    starts: list
    metrics: AgentMetrics
    clock: Clock
    data_dir: str


def rig(tmp_path: pathlib.Path, tools: Tools | None = None, store: FakeStore | None = None,
        running: bool = False) -> Rig:
    etcd, metrics, clock, starts = FakeProcess(running=running), AgentMetrics(), Clock(), []
    data_dir = str(tmp_path / "etcd")
    recovery = Recovery(etcd, lambda *a, **kw: starts.append((a, kw)), data_dir, ME, PEER, "etcd", store, tools,
                        metrics, clock)
    return Rig(recovery, etcd, starts, metrics, clock, data_dir)


def recoveries(metrics: AgentMetrics, kind: str) -> float:
    return metrics.registry.get_sample_value("etcd_appliance_recoveries_total",
                                             {"kind": kind, "may_lose_writes": "true"}) or 0.0


def requested(data_dir: str, source: str = "s3://bucket/etcd/x.db", request_id: str = "req-1") -> Observation:
    """The operator ran ``etcd.py restore``: its request lies beside the data directory."""
    restore_requests.write_request(data_dir, source, request_id)
    return dataclasses.replace(SEEDER, restore_request=restore_requests.read_request(data_dir))


@pytest.mark.parametrize("after, operator, tried", [
    (RESTORE_RETRY - 1, False, False),
    (RESTORE_RETRY, False, True),
    (1.0, True, True),
], ids=["within RESTORE_RETRY", "after RESTORE_RETRY", "an operator asked"])
def test_a_failed_restore_is_tried_again_after_restore_retry_unless_an_operator_asked(tmp_path, caplog, after,
                                                                                       operator, tried):
    r = rig(tmp_path)  # no etcdctl/etcdutl: every restore fails
    with caplog.at_level(logging.ERROR, "agent"):
        r.recovery.restore_snapshot(RESTORE, SEEDER)
    assert "restore failed, nothing changed (next try in 60 s): no etcdctl/etcdutl" in caplog.text
    assert (r.etcd.stopped, r.starts) == (1, [])
    r.clock.advance(after)
    r.recovery.restore_snapshot(RESTORE, requested(r.data_dir) if operator else SEEDER)
    assert r.etcd.stopped == (2 if tried else 1) and r.starts == []
    assert recoveries(r.metrics, "snapshot") == 0


def test_an_operators_failed_restore_gets_its_answer(tmp_path):
    r = rig(tmp_path)
    r.recovery.restore_snapshot(RESTORE, requested(r.data_dir))
    result = restore_requests.read_result(r.data_dir, "req-1")
    assert result["ok"] is False
    assert result["message"].startswith("restore failed, nothing changed: no etcdctl/etcdutl")
    assert restore_requests.read_request(r.data_dir) is None


@pytest.fixture
def restorable(monkeypatch):
    """restore.fetch and restore.into_data_dir, which would run etcdutl on a downloaded file, answer as if they
    had; what they were asked is recorded."""
    asked = {}

    def fetch(source, store, tools, work_dir):
        asked["fetch"] = (source, work_dir)
        return SnapshotFile("/spool/restore.db", 4096, "ab" * 32, ("cd" * 32,), 77), source or "s3://bucket/etcd/n.db"

    def into_data_dir(snapshot, tools, data_dir, name, peer_url, token):
        asked["into"] = (data_dir, name, peer_url, token)
        return data_dir + ".previous"

    monkeypatch.setattr(restore, "fetch", fetch)
    monkeypatch.setattr(restore, "into_data_dir", into_data_dir)
    return asked


def test_a_restore_starts_the_member_alone_counts_it_and_notes_it_in_the_marker(tmp_path, restorable):
    store = FakeStore(marker={"cluster": "etcd", "cluster_id": "c1"})
    r = rig(tmp_path, TOOLS, store)
    r.recovery.restore_snapshot(RESTORE, SEEDER)
    assert restorable["fetch"] == ("", r.data_dir + ".snapshots")
    assert restorable["into"] == (r.data_dir, ME, PEER, "etcd-i-1-r77")  # a token of this restore's own
    assert r.starts == [((None, "existing"), {})]
    assert recoveries(r.metrics, "snapshot") == 1
    assert {k: store.marker[k] for k in ("cluster_id", "restored_from", "restored_revision", "restored_by")} == {
        "cluster_id": "c1", "restored_from": "s3://bucket/etcd/n.db", "restored_revision": 77, "restored_by": ME}


def test_an_operators_restore_gets_its_answer(tmp_path, restorable):
    r = rig(tmp_path, TOOLS, FakeStore())
    r.recovery.restore_snapshot(Decision(Action.RESTORE_SNAPSHOT, "operator", source="s3://bucket/etcd/x.db"),
                                requested(r.data_dir))
    result = restore_requests.read_result(r.data_dir, "req-1")
    assert result["ok"] is True and result["message"].startswith("restored s3://bucket/etcd/x.db (revision 77)")


def test_a_snapshot_that_does_not_check_changes_nothing(tmp_path, monkeypatch):
    def corrupt(*args):
        raise snapshots.SnapshotCorrupt("sha256 mismatch")

    monkeypatch.setattr(restore, "fetch", corrupt)
    r = rig(tmp_path, TOOLS, FakeStore())
    r.recovery.restore_snapshot(RESTORE, SEEDER)
    assert r.starts == [] and recoveries(r.metrics, "snapshot") == 0 and r.recovery.failed_at == r.clock()


@pytest.mark.parametrize("operator", [False, True], ids=["after a quorum loss", "an operator asked"])
def test_force_new_cluster_starts_alone_with_force_new_cluster_and_counts_it(tmp_path, operator):
    r = rig(tmp_path, running=True)
    s = dataclasses.replace(SEEDER, etcd_running=True, local=LocalData(True, 1), quorum_lost_for=90.0, revision=42)
    if operator:
        s = dataclasses.replace(s, restore_request=requested(r.data_dir, "own-data").restore_request)
    r.recovery.force_new_cluster(s)
    assert r.etcd.stopped == 1 and r.starts == [((None, "existing"), {"force_new_cluster": True})]
    assert recoveries(r.metrics, "force-new-cluster") == 1
    result = restore_requests.read_result(r.data_dir, "req-1")
    assert (result is not None and result["ok"]) is operator
