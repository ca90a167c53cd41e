"""Carrying out a recovery the rule decided (:mod:`appliance.rules.recovery`, :mod:`appliance.rules.bootstrap`):
restore a snapshot into a one-member cluster, or restart this member's data as one.

Both may lose writes and say so in one warning line, counted in ``etcd_appliance_recoveries``.
A failed restore changes nothing and is tried again after :data:`RESTORE_RETRY` seconds (an
operator's request is answered at once).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

from appliance.adapters.aws.s3 import SnapshotStore, StoreError
from appliance.adapters.etcd import restore_requests
from appliance.adapters.etcd import snapshot as snapshots
from appliance.adapters.metrics import AgentMetrics
from appliance.backup import restore
from appliance.model.decisions import Decision
from appliance.model.observation import Observation
from appliance.model.snapshots import Tools

log = logging.getLogger("agent")

RESTORE_RETRY = 60.0  # seconds between a seeder's attempts to restore when no snapshot could be restored


class Recovery:
    """The recoveries of one instance.

    Args:
        etcd: the :class:`~appliance.adapters.etcd.process.EtcdProcess`. start: starts etcd
            (``start(initial_cluster, state, force_new_cluster=…)``, see the actuator).
        data_dir, instance_id, peer_url, cluster_name: where and as whom the member restarts.
        store: the cluster's snapshots (None without SNAPSHOT_BUCKET). tools: etcdctl/etcdutl (None: none).
        metrics: counts recoveries. clock: monotonic seconds.
    """

    def __init__(self, etcd, start: Callable[..., None], data_dir: str, instance_id: str, peer_url: str,
                 cluster_name: str, store: SnapshotStore | None, tools: Tools | None, metrics: AgentMetrics,
                 clock: Callable[[], float] = time.monotonic):
        self.etcd, self.start = etcd, start
        self.data_dir, self.instance_id = data_dir, instance_id
        self.peer_url, self.cluster_name = peer_url, cluster_name
        self.store, self.tools, self.metrics, self.clock = store, tools, metrics, clock
        self.failed_at = -math.inf

    def restore_snapshot(self, decision: Decision, s: Observation) -> None:
        """Restore a snapshot (the newest good one in S3, or the operator's) into a one-member cluster and
        start it. Whatever fails leaves the data directory as it was and is said in one line."""
        if s.restore_request is None and self.clock() - self.failed_at < RESTORE_RETRY:
            return
        self.etcd.stop()
        try:
            if self.tools is None:
                raise ValueError("no etcdctl/etcdutl beside APPLIANCE_ETCD_BINARY: cannot restore a snapshot")
            snapshot, source = restore.fetch(decision.source, self.store, self.tools,
                                             restore_requests.spool_dir(self.data_dir))
            moved = restore.into_data_dir(snapshot, self.tools, self.data_dir, self.instance_id, self.peer_url,
                                          f"{self.cluster_name}-{self.instance_id}-r{snapshot.revision}")
        except (snapshots.SnapshotError, StoreError, ValueError, OSError) as exc:
            log.error("restore failed, nothing changed (next try in %.0f s): %s", RESTORE_RETRY, exc)
            self.failed_at = self.clock()
            if s.restore_request is not None:
                restore_requests.finish(self.data_dir, False, f"restore failed, nothing changed: {exc}")
            return
        self.metrics.recoveries.labels(kind="snapshot", may_lose_writes="true").inc()
        log.warning("RECOVERY THAT MAY LOSE WRITES: restored %s (revision %d) into a one-member cluster; writes made "
                    "after that snapshot are lost%s", source, snapshot.revision,
                    f"; the old data is at {moved}" if moved else "")
        self.start(None, "existing")
        if s.restore_request is not None:
            restore_requests.finish(self.data_dir, True, f"restored {source} (revision {snapshot.revision}); "
                                    "the other instances set their data aside and join")
        if self.store is not None:
            try:
                marker = self.store.read_marker() or {}
                self.store.write_marker({**marker, "restored_from": source, "restored_revision": snapshot.revision,
                                         "restored_by": self.instance_id, "restored_at": time.time()})
            except StoreError as exc:
                log.warning("could not note the restore in the marker: %s", exc)

    def force_new_cluster(self, s: Observation) -> None:
        """Restart etcd on its own data as a one-member cluster (etcd's --force-new-cluster, this start only:
        a later restart must not drop the members that joined since)."""
        self.etcd.stop()
        self.metrics.recoveries.labels(kind="force-new-cluster", may_lose_writes="true").inc()
        log.warning("RECOVERY THAT MAY LOSE WRITES: restarting member %s with its data (revision %s) as a "
                    "one-member cluster; writes only the lost members had acknowledged are gone",
                    format(s.local.member_id, "x") if s.local.member_id else "?", s.revision)
        self.start(None, "existing", force_new_cluster=True)
        if s.restore_request is not None:
            restore_requests.finish(self.data_dir, True, "restarted this member's data as a one-member cluster; "
                                    "the other instances set their data aside and join")
