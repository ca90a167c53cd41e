"""The leader's snapshots to S3: when to take one (pure), and taking it in the background.

Each leader cycle asks :func:`decide`; a snapshot is taken every ``interval`` seconds (counted
from the newest one in S3, so a new leader does not start the count again), before a member is
removed, and on the first cycle of a leadership the marker is checked (and written if missing).
The work runs in a thread: a slow upload never holds up the agent's cycle, and a failure is
logged and counted, never raised into the cluster's loop.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
import os
import tempfile
import threading
import time

from appliance.aws.snapshots import SnapshotStore, StoredSnapshot, StoreError
from appliance.cluster import retention
from appliance.etcd import snapshot as snapshots
from appliance.etcd.client import Credentials
from appliance.etcd.tls import TlsFiles
from appliance.metrics import AgentMetrics

log = logging.getLogger("backup")

RETRY_AFTER = 60.0       # seconds after a failed snapshot before the next try
SNAPSHOT_TIMEOUT = 900.0  # seconds a snapshot's stream may take (a few GB at disk speed)


class Step(str, enum.Enum):
    SURVEY = "survey"  # read the marker (write it if missing) and the newest snapshot's time
    TAKE = "take"
    WAIT = "wait"


@dataclasses.dataclass(frozen=True)
class BackupSnapshot:
    """Facts for one decision; times are epoch seconds.

    Attributes:
        surveyed: the marker and the snapshots' listing were read during this leadership.
        newest_at: when the newest snapshot was taken, None if there is none.
        failed_at: when the last attempt failed, None if it did not.
        removal_waiting: the housekeeper waits for a snapshot before it removes a member.
        interval, retry_after: seconds.
        newest_revision: the store revision of the newest snapshot, None if there is none.
        must_cover: a revision the newest snapshot must hold (the cluster's mode record, whose
            loss would restore a passive cluster as active); 0 for none.
    """

    now: float
    in_progress: bool
    surveyed: bool
    newest_at: float | None
    failed_at: float | None
    removal_waiting: bool
    interval: float
    retry_after: float = RETRY_AFTER
    newest_revision: int | None = None
    must_cover: int = 0


@dataclasses.dataclass(frozen=True)
class BackupDecision:
    step: Step
    reason: str


def decide(s: BackupSnapshot) -> BackupDecision:
    """What the leader's snapshot work does this cycle."""
    if s.in_progress:
        return BackupDecision(Step.WAIT, "a snapshot is being taken")
    if s.failed_at is not None and s.now - s.failed_at < s.retry_after:
        return BackupDecision(Step.WAIT, f"the last attempt failed {s.now - s.failed_at:.0f} s ago; retrying "
                              f"{s.retry_after:.0f} s after it" + (" (a removal waits for it)" if s.removal_waiting
                                                                    else ""))
    if s.removal_waiting:  # before the survey: a new leader's first removal waits no longer than it must
        return BackupDecision(Step.TAKE, "a member is to be removed: snapshot first")
    if not s.surveyed:
        return BackupDecision(Step.SURVEY, "new leadership: checking the marker and the newest snapshot")
    if s.newest_at is None:
        return BackupDecision(Step.TAKE, "no snapshot of this cluster yet")
    if s.must_cover and (s.newest_revision or 0) < s.must_cover:
        return BackupDecision(Step.TAKE, f"the cluster's mode changed at revision {s.must_cover}, after the newest "
                              f"snapshot (revision {s.newest_revision})")
    age = s.now - s.newest_at
    if age >= s.interval:
        return BackupDecision(Step.TAKE, f"the newest snapshot is {age:.0f} s old (interval {s.interval:.0f} s)")
    return BackupDecision(Step.WAIT, f"the newest snapshot is {age:.0f} s old; next in {s.interval - age:.0f} s")


def take(endpoint: str, store: SnapshotStore, tools: snapshots.Tools, work_dir: str, cluster_id: int,
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


class Backups:
    """The leader's snapshot work: one background job at a time.

    Args:
        store: where snapshots go. tools: :func:`snapshots.tools_for`.
        work_dir: local spool directory (a snapshot is as large as the database).
        credentials: the agent's etcd user (None without authentication). interval: seconds between
            snapshots. keep, keep_days: retention (:func:`retention.plan`). instance_id: written into the marker.
        tls: the agent's CA and client certificate where the members speak HTTPS.
    """

    def __init__(self, store: SnapshotStore, tools: snapshots.Tools, work_dir: str, credentials: Credentials | None,
                 metrics: AgentMetrics, interval: float, keep: int, keep_days: int, instance_id: str,
                 tls: TlsFiles | None = None):
        self.store, self.tools, self.work_dir, self.credentials = store, tools, work_dir, credentials
        self.tls = tls
        self.metrics = metrics
        self.interval, self.keep, self.keep_days = interval, keep, keep_days
        self.instance_id = instance_id
        self.thread: threading.Thread | None = None
        self.surveyed = False
        self.newest_at: float | None = None
        self.newest_revision: int | None = None
        self.failed_at: float | None = None
        self.done_at = -float("inf")  # monotonic end of the last attempt (for the housekeeper)
        self.last_outcome = ""
        self.last_reason = ""

    @property
    def in_progress(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def lost_leadership(self) -> None:
        """Forget what this leadership learnt; the next one surveys again."""
        self.surveyed = False

    def tick(self, endpoint: str, cluster_id: int, removal_waiting: bool, must_cover: int = 0) -> str:
        """On the leader, each cycle: start the work that is due; returns the decision's reason.

        ``endpoint``: the member to take a snapshot from (a healthy follower, where there is one,
        spares the leader the work of sending it). ``must_cover``: see :class:`BackupSnapshot`.
        """
        decision = decide(BackupSnapshot(time.time(), self.in_progress, self.surveyed, self.newest_at,
                                         self.failed_at, removal_waiting, self.interval,
                                         newest_revision=self.newest_revision, must_cover=must_cover))
        if decision.reason != self.last_reason and decision.step is not Step.WAIT:
            log.info("snapshots: %s", decision.reason)
        self.last_reason = decision.reason
        if decision.step is Step.SURVEY:
            self._start(self._survey, cluster_id)
        elif decision.step is Step.TAKE:
            self._start(self._take, endpoint, cluster_id)
        return decision.reason

    def _start(self, work, *args) -> None:
        self.thread = threading.Thread(target=self._guarded, args=(work, *args), name="snapshots", daemon=True)
        self.thread.start()

    def _guarded(self, work, *args) -> None:
        _lowest_priority_thread()
        failed = True
        try:
            work(*args)
            self.failed_at, failed = None, False
        except (StoreError, snapshots.SnapshotError, OSError) as exc:
            self.last_outcome = f"failed: {exc}"
            log.error("snapshots: %s (the cluster goes on; retrying in %.0f s)", exc, RETRY_AFTER)
        except Exception:  # noqa: BLE001 - a bug here must not end the agent; it is counted and logged
            self.last_outcome = "failed: unexpected error (see the log)"
            log.exception("snapshots: unexpected failure")
        finally:
            if failed:
                self.failed_at = time.time()
                self.metrics.snapshots.labels(outcome="failed").inc()
            # A removal waits for an attempt, not a success: S3 being down must not block the cluster.
            if failed or work == self._take:
                self.done_at = time.monotonic()

    def _survey(self, cluster_id: int) -> None:
        marker = self.store.read_marker()
        if marker is None:
            self.store.write_marker({"cluster": self.store.cluster, "cluster_id": format(cluster_id, "x"),
                                     "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                                     "written_by": self.instance_id})
            log.info("snapshots: wrote the cluster's marker %s: a seeder finding it restores the newest snapshot "
                     "instead of starting an empty cluster", self.store.marker_key)
        found = self.store.list()
        self.newest_at = found[0].taken_at.timestamp() if found else None
        self.newest_revision = found[0].revision if found else None
        if found:
            self.metrics.snapshot_last_success.set(self.newest_at)
        self.surveyed = True
        self.last_outcome = f"{len(found)} snapshots in {self.store.location}" + (
            f", newest {found[0].key.rsplit('/', 1)[-1]}" if found else "")

    def _take(self, endpoint: str, cluster_id: int) -> None:
        started = time.monotonic()
        stored = take(endpoint, self.store, self.tools, self.work_dir, cluster_id, self.credentials, tls=self.tls)
        self.newest_at = stored.taken_at.timestamp()
        self.newest_revision = stored.revision
        self.metrics.snapshots.labels(outcome="ok").inc()
        self.metrics.snapshot_last_success.set(self.newest_at)
        self.metrics.snapshot_bytes.set(stored.size)
        self.last_outcome = f"took {stored.uri} (revision {stored.revision}, {stored.size} bytes, verified)"
        log.info("snapshots: %s from %s in %.1f s", self.last_outcome, endpoint, time.monotonic() - started)
        prune = retention.plan(self.store.list(), self.keep, self.keep_days,
                               datetime.datetime.now(datetime.timezone.utc))
        if prune.delete:
            self.store.delete(prune.delete)
            log.info("snapshots: %s", prune.reason)


def _lowest_priority_thread() -> None:
    """Hash and upload at the lowest CPU priority: on Linux a thread has a nice value of its own
    (setpriority on its thread id), so the agent's cycle and etcd are served first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: full priority then
        pass
