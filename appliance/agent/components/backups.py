"""The leader's snapshots to S3, one background job at a time (when: :mod:`appliance.rules.backups`).

The work runs in a thread: a slow upload never holds up the agent's cycle, and a failure is
logged and counted, never raised into the cluster's loop.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time

from appliance.adapters import logs
from appliance.adapters.aws.s3 import SnapshotStore, StoreError
from appliance.adapters.etcd import snapshot as snapshots
from appliance.adapters.metrics import AgentMetrics
from appliance.agent.components.reasons import ReasonLog
from appliance.backup.take import take
from appliance.model.keys import Credentials
from appliance.model.observation import Observation
from appliance.model.snapshots import Tools
from appliance.model.tls import TlsFiles
from appliance.rules import retention
from appliance.rules.backups import RETRY_AFTER, BackupFacts, Step, decide

log = logging.getLogger("backup")


class Backups:
    """The leader's snapshot work.

    Args:
        store: where snapshots go. tools: :func:`~appliance.adapters.etcd.snapshot.tools_for`.
        work_dir: local spool directory (a snapshot is as large as the database).
        credentials: the agent's etcd user (None without authentication). interval: seconds between
            snapshots. keep, keep_days: retention (:func:`~appliance.rules.retention.plan`). instance_id:
            written into the marker. tls: the agent's CA and client certificate where the members speak HTTPS.
        fallback_endpoint: the local member's client URL, the source when no follower is healthy.
    """

    def __init__(self, store: SnapshotStore, tools: Tools, work_dir: str, credentials: Credentials | None,
                 metrics: AgentMetrics, interval: float, keep: int, keep_days: int, instance_id: str,
                 tls: TlsFiles | None = None, fallback_endpoint: str = ""):
        self.store, self.tools, self.work_dir, self.credentials = store, tools, work_dir, credentials
        self.tls = tls
        self.metrics = metrics
        self.interval, self.keep, self.keep_days = interval, keep, keep_days
        self.instance_id = instance_id
        self.fallback_endpoint = fallback_endpoint
        self.thread: threading.Thread | None = None
        self.surveyed = False
        self.newest_at: float | None = None
        self.newest_revision: int | None = None
        self.failed_at: float | None = None
        self.done_at = -float("inf")  # monotonic end of the last attempt (for the housekeeping)
        self.last_outcome = ""
        self.reason = ReasonLog(log, "snapshots")

    @property
    def in_progress(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def lost_leadership(self) -> None:
        """Forget what this leadership learnt; the next one surveys again."""
        self.surveyed = False

    def source(self, s: Observation) -> str:
        """The member to take a snapshot from: a healthy follower where there is one (the leader's etcd
        need not send it), else the local member."""
        return next((h.member.client_urls[0] for h in s.member_health
                     if h.healthy and h.member.name != self.instance_id and not h.member.is_learner
                     and h.member.client_urls), self.fallback_endpoint)

    def tick(self, s: Observation, removal_waiting: bool) -> str:
        """On the leader holding the housekeeping lease, each cycle: start the work that is due; returns
        the decision's reason. ``removal_waiting``: the housekeeping waits for a snapshot before a removal."""
        assert s.cluster is not None
        must_cover = s.mode[1] if s.mode is not None else 0  # the mode record's revision (see BackupFacts)
        decision = decide(BackupFacts(time.time(), self.in_progress, self.surveyed, self.newest_at,
                                      self.failed_at, removal_waiting, self.interval,
                                      newest_revision=self.newest_revision, must_cover=must_cover))
        self.reason.say(decision.reason, loud=decision.step is not Step.WAIT)
        if decision.step is Step.SURVEY:
            self._start(self._survey, s.cluster.cluster_id)
        elif decision.step is Step.TAKE:
            self._start(self._take, self.source(s), s.cluster.cluster_id)
        return decision.reason

    def status(self, leading: bool) -> dict:
        """The snapshots' part of the agent's status: where, the last outcome, and what comes next."""
        return {"location": self.store.location, "last": self.last_outcome,
                "next": self.reason.last if leading else "not the leader"}

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
            logs.unexpected(log, "snapshots: unexpected failure")
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
