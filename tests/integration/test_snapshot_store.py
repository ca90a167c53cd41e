"""Snapshots from a real etcd into moto's S3 (a real moto server over HTTP): upload and its verification,
listing, retention, a corrupt object, and S3 not answering."""

from __future__ import annotations

import datetime
import time

import boto3
import pytest

from appliance.adapters.aws.s3 import SnapshotStore, StoreError
from appliance.adapters.etcd import snapshot as snapshots
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.backups import Backups
from appliance.backup import restore
from appliance.backup.take import take
from appliance.model.members import ClusterView, LocalData
from appliance.model.observation import Observation
from appliance.rules import retention
from appliance.sim import aws
from appliance.sim.supervisor import etcd_binary

BUCKET = "ops-etcd-snapshots"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = aws.free_port()
    proc = aws.start_moto(port, str(tmp_path_factory.mktemp("moto") / "moto.log"))
    endpoint = f"http://127.0.0.1:{port}"
    session().client("s3", endpoint_url=endpoint).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": aws.REGION})
    yield endpoint
    proc.kill()
    proc.wait(10)


def session() -> boto3.session.Session:
    return boto3.session.Session(region_name=aws.REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def store_at(endpoint: str, cluster: str, timeout: float = 10.0) -> SnapshotStore:
    store = SnapshotStore(BUCKET, "prod/", cluster, aws.REGION, timeout=timeout, session=session())
    store.s3 = session().client("s3", endpoint_url=endpoint, config=store.s3.meta.config)
    return store


@pytest.fixture
def tool() -> snapshots.Tools:
    return snapshots.tools_for(etcd_binary())


def test_take_uploads_a_verified_snapshot_that_restores(etcd, s3_endpoint, tool, tmp_path):
    client, url = etcd
    revision = client.put("/config/a", "1")
    store = store_at(s3_endpoint, "take")
    stored = take(url, store, tool, str(tmp_path / "spool"), 0xC1)
    assert stored.revision >= revision and stored.key.startswith("prod/take/snapshots/take-")
    assert list((tmp_path / "spool").iterdir()) == [], "the spooled file was left behind"
    head = store.s3.head_object(Bucket=BUCKET, Key=stored.key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == stored.size and head["Metadata"]["revision"] == str(stored.revision)
    assert [s.key for s in store.list()] == [stored.key]
    # What S3 holds restores into a data directory etcd starts from.
    checked, origin = restore.fetch("", store, tool, str(tmp_path / "fetch"))
    assert (origin, checked.revision) == (stored.uri, stored.revision)
    restore.into_data_dir(checked, tool, str(tmp_path / "data"), "solo", "http://127.0.0.1:2380", "t")
    assert (tmp_path / "data" / "member" / "wal").is_dir()


def test_an_upload_that_does_not_verify_is_deleted(etcd, s3_endpoint, tool, tmp_path):
    client, url = etcd
    store = store_at(s3_endpoint, "verify")
    local = snapshots.save(url, str(tmp_path / "s.db"), tool, None, 30)
    lying = snapshots.SnapshotFile(local.path, local.size, "0" * 64, local.part_sha256, local.revision)
    with pytest.raises(StoreError, match="did not verify"):
        store.upload(lying, datetime.datetime.now(datetime.timezone.utc), 0xC1)
    assert store.list() == []


def test_a_corrupt_newest_snapshot_falls_back_to_the_previous(etcd, s3_endpoint, tool, tmp_path):
    client, url = etcd
    store = store_at(s3_endpoint, "corrupt")
    client.put("/config/first", "1")
    first = take(url, store, tool, str(tmp_path), 0xC1)
    time.sleep(1.1)  # keys name the second
    client.put("/config/second", "2")
    second = take(url, store, tool, str(tmp_path), 0xC1)
    body = bytearray(store.s3.get_object(Bucket=BUCKET, Key=second.key)["Body"].read())
    body[-1] ^= 0xFF  # the last byte of etcd's own hash
    metadata = store.s3.head_object(Bucket=BUCKET, Key=second.key)["Metadata"]
    store.s3.put_object(Bucket=BUCKET, Key=second.key, Body=bytes(body), Metadata=metadata)
    checked, origin = restore.fetch("", store, tool, str(tmp_path / "fetch"))
    assert (origin, checked.revision) == (first.uri, first.revision)
    with pytest.raises(snapshots.SnapshotCorrupt, match="differs from the stored"):
        restore.fetch(second.uri, store, tool, str(tmp_path / "fetch"))


def test_retention_deletes_what_the_rule_drops(etcd, s3_endpoint, tool, tmp_path):
    client, url = etcd
    store = store_at(s3_endpoint, "retention")
    taken = []
    for n in range(3):
        client.put("/config/n", str(n))
        taken.append(take(url, store, tool, str(tmp_path), 0xC1))
        time.sleep(1.1)
    backups = Backups(store, tool, str(tmp_path), None, AgentMetrics(), interval=3600, keep=2,
                      keep_days=0, instance_id="i-1")
    backups._take(url, 0xC1)  # the leader's take: upload, then retention
    kept = store.list()
    assert len(kept) == 2 and kept[1].key == taken[-1].key
    assert retention.plan(kept, 2, 0, datetime.datetime.now(datetime.timezone.utc)).delete == ()


def test_s3_not_answering_is_one_error_not_a_hang(etcd, tool, tmp_path):
    client, url = etcd
    store = store_at(f"http://127.0.0.1:{aws.free_port()}", "down", timeout=1)
    started = time.monotonic()
    with pytest.raises(StoreError, match="unreachable|failed"):
        take(url, store, tool, str(tmp_path), 0xC1)
    with pytest.raises(StoreError):
        store.read_marker()
    assert time.monotonic() - started < 30
    metrics = AgentMetrics()
    backups = Backups(store, tool, str(tmp_path), None, metrics, interval=3600, keep=2, keep_days=0,
                      instance_id="i-1", fallback_endpoint=url)
    leading = Observation("i-1", "http://127.0.0.1:2380", LocalData(True, 1), True, cluster=ClusterView(0xC1, (), 1),
                          is_leader=True)
    backups.tick(leading, removal_waiting=False)
    backups.thread.join(30)
    assert backups.failed_at is not None and "failed" in backups.last_outcome
    assert b'etcd_appliance_snapshots_total{outcome="failed"} 1.0' in metrics.exposition()
