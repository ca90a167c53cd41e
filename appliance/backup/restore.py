"""Restoring a snapshot: the newest good one fetched and checked, then restored into the data directory.

Used by the agent (a seeder whose cluster's marker says it existed, an operator's request) and by
``etcd.py restore`` (which checks the snapshot before it asks the agent).
"""

from __future__ import annotations

import logging
import os
import shutil

from appliance.adapters.aws.s3 import SnapshotStore, parse_uri
from appliance.adapters.etcd import snapshot as snapshots
from appliance.adapters.etcd.data_dir import set_aside
from appliance.model.snapshots import SnapshotFile, Tools

log = logging.getLogger("restore")


def fetch(source: str, store: SnapshotStore | None, tools: Tools,
          work_dir: str) -> tuple[SnapshotFile, str]:
    """A checked snapshot on local disk, and where it came from.

    Args:
        source: "" for the newest good snapshot in ``store`` (a corrupt one is logged and the
            previous one tried), an ``s3://bucket/key`` URI, or a local file path.

    Raises:
        snapshots.SnapshotCorrupt: the one snapshot asked for does not check.
        snapshots.SnapshotError: no good snapshot, or the tool did not run.
        StoreError: S3 did not answer. ValueError: ``source`` names no S3 object and no file.
    """
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, "restore.db")
    if source and not source.startswith("s3://"):
        if not os.path.isfile(source):
            raise ValueError(f"no snapshot file at {source}")
        return snapshots.check(source, tools), source
    if store is None:
        raise ValueError("SNAPSHOT_BUCKET is not set: give the snapshot as s3://… with the bucket, or a file")
    if source:
        bucket, key = parse_uri(source)
        expected = store.download(bucket, key, path)
        return snapshots.check(path, tools, expected or None), source
    candidates = store.list()
    if not candidates:
        raise snapshots.SnapshotError(f"no snapshot in {store.location}")
    for candidate in candidates:
        try:
            expected = store.download(candidate.bucket, candidate.key, path)
            return snapshots.check(path, tools, expected or None), candidate.uri
        except snapshots.SnapshotCorrupt as exc:
            log.error("snapshot %s is corrupt (%s): trying the previous one", candidate.uri, exc)
    raise snapshots.SnapshotError(f"none of the {len(candidates)} snapshots in {store.location} checks")


def into_data_dir(snapshot: SnapshotFile, tools: Tools, data_dir: str, name: str,
                  peer_url: str, token: str) -> str | None:
    """Restore ``snapshot`` as a one-member cluster in ``data_dir``; the old content is set aside.

    Restored next to it first, so a failed restore leaves ``data_dir`` as it was. Returns
    where the old content went (None if there was none).

    Raises:
        snapshots.SnapshotError: the tool refused.
    """
    staging = data_dir.rstrip("/") + ".restoring"
    shutil.rmtree(staging, ignore_errors=True)
    snapshots.restore(tools, snapshot.path, staging, name, peer_url, token)
    moved = set_aside(data_dir)
    os.replace(staging, data_dir)
    return moved
