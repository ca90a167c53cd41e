"""Restoring a snapshot into this instance's data directory, and the operator's restore requests.

``etcd.py restore`` never touches the data directory or etcd itself: the agent supervises both.
It checks the snapshot, then leaves a request beside the data directory
(``<DATA_DIR>.restore-request.json``); the agent's next cycle decides on it
(:func:`appliance.cluster.recovery.decide_request`), carries it out or refuses it, and writes
the outcome to ``<DATA_DIR>.restore-result.json``, which the command waits for.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

from appliance.aws.snapshots import SnapshotStore, parse_uri
from appliance.cluster.model import RestoreRequest
from appliance.etcd import snapshot as snapshots
from appliance.etcd.process import set_aside, write_json

log = logging.getLogger("restore")


def request_path(data_dir: str) -> str:
    return data_dir.rstrip("/") + ".restore-request.json"


def result_path(data_dir: str) -> str:
    return data_dir.rstrip("/") + ".restore-result.json"


def spool_dir(data_dir: str) -> str:
    """Where snapshots are spooled (on the data directory's disk, which has room for one)."""
    return data_dir.rstrip("/") + ".snapshots"


def write_request(data_dir: str, source: str, request_id: str) -> None:
    """Leave a restore request for the agent (replacing an older result)."""
    if os.path.exists(result_path(data_dir)):
        os.unlink(result_path(data_dir))
    write_json(request_path(data_dir), {"source": source, "id": request_id})


def read_request(data_dir: str) -> RestoreRequest | None:
    """The pending request, None if there is none (or it cannot be read: it is then answered as refused)."""
    try:
        with open(request_path(data_dir)) as f:
            return RestoreRequest(str(json.load(f)["source"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return RestoreRequest("unreadable request")


def finish(data_dir: str, ok: bool, message: str) -> None:
    """Answer the pending request: the outcome for the waiting command, and the request removed."""
    try:
        with open(request_path(data_dir)) as f:
            request_id = json.load(f).get("id", "")
    except (OSError, ValueError):
        request_id = ""
    write_json(result_path(data_dir), {"id": request_id, "ok": ok, "message": message})
    if os.path.exists(request_path(data_dir)):
        os.unlink(request_path(data_dir))


def read_result(data_dir: str, request_id: str) -> dict | None:
    """The agent's answer to request ``request_id``, None while there is none."""
    try:
        with open(result_path(data_dir)) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    return result if result.get("id") == request_id else None


def fetch(source: str, store: SnapshotStore | None, tools: snapshots.Tools,
          work_dir: str) -> tuple[snapshots.SnapshotFile, str]:
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


def into_data_dir(snapshot: snapshots.SnapshotFile, tools: snapshots.Tools, data_dir: str, name: str,
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
