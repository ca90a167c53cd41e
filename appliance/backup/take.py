"""Taking a snapshot of the cluster: from one member, checked, uploaded to S3 and verified there.

Used by the leader's snapshots (:mod:`appliance.agent.components.backups`) and ``etcd.py backup``.
"""

from __future__ import annotations

import datetime
import os
import tempfile

from appliance.adapters.aws.s3 import SnapshotStore
from appliance.adapters.etcd import snapshot as snapshots
from appliance.model.keys import Credentials
from appliance.model.snapshots import StoredSnapshot, Tools
from appliance.model.tls import TlsFiles

SNAPSHOT_TIMEOUT = 900.0  # seconds a snapshot's stream may take (a few GB at disk speed)


def take(endpoint: str, store: SnapshotStore, tools: Tools, work_dir: str, cluster_id: int,
         credentials: Credentials | None = None, timeout: float = SNAPSHOT_TIMEOUT,
         tls: TlsFiles | None = None) -> StoredSnapshot:
    """Take a snapshot from the member at ``endpoint`` into ``work_dir``, check it, upload and verify it.
    ``tls``: CA and client certificate for an ``https`` endpoint.

    The local file is deleted afterwards, whatever happened.

    Raises:
        snapshots.SnapshotError: the member did not give it, or it did not check.
        StoreError: the upload failed or did not verify. OSError: ``work_dir`` is not writable.
    """
    os.makedirs(work_dir, exist_ok=True)
    taken_at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    fd, path = tempfile.mkstemp(prefix="snapshot-", suffix=".db", dir=work_dir)
    os.close(fd)
    try:
        local = snapshots.save(endpoint, path, tools, credentials, timeout, tls)
        return store.upload(local, taken_at, cluster_id)
    finally:
        for leftover in (path, path + ".part"):
            if os.path.exists(leftover):
                os.unlink(leftover)
