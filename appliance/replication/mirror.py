"""The prefix mirror: every change under a source prefix, applied once, in order, to a destination prefix.

Where it stands is the destination's business: the last applied source revision is stored in the
destination under the position key, in the same transaction as the writes it covers, and every
transaction also compares that key with the value this process last wrote. A crash at any moment
therefore neither loses nor repeats a change, and a second mirror writing to the same position is
detected (exit 5) instead of interleaving.

Loop: read the position (observe); :func:`start_action` decides copy, resume,
reload or stop (pure); then watch the source from position + 1, cut the events
into transactions with :func:`batching.plan` and apply them.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time
from typing import Callable

import tenacity

from appliance.adapters.etcd.client import EtcdClient, compare_absent, compare_value, op_delete, op_put
from appliance.adapters.etcd.errors import EtcdError, EtcdFailure, EtcdUnavailable
from appliance.adapters.etcd.watch import WatchStream
from appliance.model.exit_codes import ExitCode
from appliance.model.keys import BOOKKEEPING, KeyValue, prefix_end
from appliance.model.modes import Mode
from appliance.model.watch import Event, WatchResponse
from appliance.replication.cluster_pair import ClusterPair
from appliance.replication.heartbeat_watch import HeartbeatWatch
from appliance.replication.keyspace import iter_prefix, merge
from appliance.replication.leases import LeaseMap
from appliance.replication.metrics import MirrorMetrics
from appliance.replication.mirror_settings import MirrorSettings, MirrorStopped
from appliance.replication.position import read_position
from appliance.replication.pump import Pump
from appliance.rules import batching
from appliance.rules.mirror_start import Start, start_action

log = logging.getLogger("mirror")

# BOOKKEEPING keys are never mirrored and never deleted by a copy: the mirror's position, and each
# cluster's own mode, locks and heartbeat (the heartbeat crosses separately, see _commit).
MODE_CHECK_INTERVAL = 1.0    # seconds between reads of the source's mode
DRAIN_EVENTS = 4096          # events taken from the watch per round at most (then applied in batches)
COPY_IN_FLIGHT = 4           # copy transactions sent at once


class Mirror:
    """One mirror process. :meth:`run` returns when stopped (0) or raises :class:`MirrorStopped`."""

    def __init__(self, settings: MirrorSettings, metrics: MirrorMetrics | None = None):
        self.s = settings
        self.source = EtcdClient(settings.source, timeout=settings.timeout, credentials=settings.credentials,
                                 tls=settings.tls)
        self.dest = EtcdClient(settings.dest, timeout=settings.timeout, credentials=settings.credentials,
                               tls=settings.tls)
        self.metrics = metrics or MirrorMetrics(None)
        self.leases = LeaseMap(self.source, self.dest, settings.position_key + b"/leases/") if settings.leases \
            else None
        self.stop_requested = threading.Event()
        self.position: int | None = None  # what this process last wrote (or read) at the position key
        # Comparisons every destination transaction also carries (the mirror lock's fence), and
        # how to tell whether they still hold.
        self.fences: list[dict] = []
        self.fences_hold: Callable[[], bool] = lambda: True
        self._stream: WatchStream | None = None
        self._local = threading.local()
        self.heartbeats = HeartbeatWatch(settings.source, settings.heartbeat_key, settings.timeout,
                                         auth=self.source, tls=settings.tls) if settings.heartbeat_key else None
        self._beat_written: float | None = None  # the heartbeat time last written to the destination
        self.pair = ClusterPair(settings.source_prefix, settings.dest_prefix)

    # --- position -----------------------------------------------------------
    def read_position(self) -> int | None:
        """The stored position (see :func:`~appliance.replication.position.read_position`)."""
        return read_position(self.dest, self.s.position_key)

    def _guard(self) -> list[dict]:
        if self.position is None:
            return [compare_absent(self.s.position_key), *self.fences]
        return [compare_value(self.s.position_key, str(self.position).encode()), *self.fences]

    def _commit(self, ops: list[dict], position: int | None, compares: list[dict] = (),
                client: EtcdClient | None = None) -> None:
        """One destination transaction: ``ops`` and the new position (None: keep it), if the
        position is still ours. ``client``: another destination client (the copy's threads)."""
        success = list(ops)
        if position is not None:
            success.append(op_put(self.s.position_key, str(position).encode()))
            beat = self._heartbeat_through(position)
            if beat is not None:
                # The destination's heartbeat says how fresh it is: the source's time as of the
                # position, so a guard reading the passive cluster sees the mirror's lag.
                success.append(op_put(self.s.heartbeat_key, repr(beat).encode()))
        answer = (client or self.dest).txn([*self._guard(), *compares], success)
        if not answer.get("succeeded"):
            self._explain_failed_txn(compares)
        self.metrics.transactions.inc()
        if position is not None:
            self.position = position
            self.metrics.applied_revision.set(position)
            if beat is not None:
                self._beat_written = beat

    def _heartbeat_through(self, position: int) -> float | None:
        """The source heartbeat time to write with ``position``, None if unchanged or not copied."""
        if not self.s.copy_heartbeat or self.pair.same_cluster or self.heartbeats is None:
            return None
        beat = self.heartbeats.applied_time(position)
        return beat if beat is not None and beat != self._beat_written else None

    def _explain_failed_txn(self, compares: list[dict]) -> None:
        self.pair.check(self.source, self.dest)  # a connection may have reached another cluster at the same URL
        if self.fences and not self.fences_hold():
            raise MirrorStopped("the mirror lock is no longer this mirror's (its lease expired or another "
                                "mirror holds it): nothing more is written", ExitCode.MIRROR_LOCK_LOST)
        current = self.read_position()
        if current != self.position:
            raise MirrorStopped(f"the position at {self.s.position_key.decode()} is {current}, not "
                                f"{self.position} as this mirror wrote it: another mirror writes to this destination",
                                ExitCode.MIRROR_POSITION_TAKEN)
        for compare in compares:
            key = base64.b64decode(compare["key"])
            found = self.dest.get(key)
            held = found[0] if found else None
            expected = base64.b64decode(compare["value"]) if compare["target"] == "VALUE" else None
            if held != expected:
                raise MirrorStopped(f"--strict: destination key {key!r} holds {held!r} but the source held "
                                    f"{expected!r} before this change", ExitCode.MIRROR_STRICT)
        raise MirrorStopped("a destination transaction failed its comparisons for no visible reason",
                            ExitCode.MIRROR_STRICT)

    # --- keys ---------------------------------------------------------------
    def dest_key(self, source_key: bytes) -> bytes:
        return self.s.dest_prefix + source_key[len(self.s.source_prefix):]

    def _mirrored(self, source_key: bytes) -> bool:
        # Neither side's own keys cross: a destination prefix "/" could map a source key onto the destination's.
        return not source_key.startswith(BOOKKEEPING) and not self.dest_key(source_key).startswith(BOOKKEEPING)

    def _dest_lease(self, kv: KeyValue) -> int:
        if not kv.lease or self.leases is None:
            return 0
        return self.leases.dest_lease(kv.lease)

    # --- copy (first run and reload) -----------------------------------------
    def copy(self) -> int:
        """Make the destination prefix equal to the source prefix at one revision R, diff and apply,
        in transactions of at most ``max_txn_ops``; store R with the last one. Returns R.

        Up to :data:`COPY_IN_FLIGHT` transactions travel at once (they touch distinct keys, and
        etcd commits concurrent ones with one disk sync); the position goes last, alone,
        once all of them succeeded. Memory: a page per side plus the transactions in flight.
        """
        revision = self.source.range(self.s.source_prefix, prefix_end(self.s.source_prefix), limit=1).revision
        source = (kv for kv in iter_prefix(self.source, self.s.source_prefix, revision, self.s.page_size,
                                           exclude=BOOKKEEPING) if self._mirrored(kv.key))
        dest = iter_prefix(self.dest, self.s.dest_prefix, 0, self.s.page_size, exclude=BOOKKEEPING)
        ops: list[dict] = []
        puts = deletes = 0
        in_flight: collections.deque = collections.deque()
        with concurrent.futures.ThreadPoolExecutor(COPY_IN_FLIGHT, thread_name_prefix="copy") as pool:
            for _, s_kv, d_kv in merge(source, dest, self.s.source_prefix, self.s.dest_prefix):
                if s_kv is None:
                    ops.append(op_delete(d_kv.key))
                    deletes += 1
                elif d_kv is None or d_kv.value != s_kv.value or bool(d_kv.lease) != bool(s_kv.lease):
                    ops.append(op_put(self.dest_key(s_kv.key), s_kv.value, self._dest_lease(s_kv)))
                    puts += 1
                else:
                    continue
                if len(ops) >= self.s.max_txn_ops - 1:
                    if len(in_flight) >= COPY_IN_FLIGHT:
                        in_flight.popleft().result()  # raises what the transaction raised
                    in_flight.append(pool.submit(self._copy_txn, ops))
                    ops = []
            while in_flight:
                in_flight.popleft().result()
        self._commit(ops, revision)
        log.info("copied the source prefix at revision %d: %d keys written, %d deleted", revision, puts, deletes)
        return revision

    def _copy_txn(self, ops: list[dict]) -> None:
        client = getattr(self._local, "dest", None)
        if client is None:  # one client (one HTTP session) a thread
            client = self._local.dest = EtcdClient(self.s.dest, timeout=self.s.timeout,
                                                   credentials=self.s.credentials, tls=self.s.tls)
        self._commit(ops, None, client=client)

    # --- changes ------------------------------------------------------------
    def apply(self, events: list[Event]) -> None:
        """Apply watched events in order, in batches; the position follows each complete batch."""
        events = [e for e in events if self._mirrored(e.kv.key)]
        for batch in batching.plan(events, self.s.max_txn_ops, reserved=1):
            if batch.split:
                log.warning("source revision %d changes %d keys in this part, more than --max-txn-ops %d allows "
                            "with the position: applied in several transactions", batch.first_revision,
                            len(batch.events), self.s.max_txn_ops)
            ops, compares = [], []
            for event in batch.events:
                target = self.dest_key(event.kv.key)
                if event.type == "DELETE":
                    ops.append(op_delete(target))
                else:
                    ops.append(op_put(target, event.kv.value, self._dest_lease(event.kv)))
                if self.s.strict:
                    compares.append(compare_value(target, event.prev_kv.value) if event.prev_kv
                                    else compare_absent(target))
            self._commit(ops, batch.last_revision if batch.complete else None, compares)
            self.metrics.events.inc(len(batch.events))

    def _update_lag(self) -> None:
        if self.heartbeats is not None and self.position is not None:
            lag = self.heartbeats.lag(self.position)
            if lag is not None:
                self.metrics.lag_seconds.set(lag)

    # --- the source's mode -----------------------------------------------------
    def passive_since(self) -> int | None:
        """The revision at which the source became passive (its mode record), None while it is active.

        A source without a mode record is active. Every client write the source accepted
        has a lower revision than its passive record (see :func:`appliance.replication.modes.apply_mode`).
        """
        if not self.s.mode_key:
            return None
        page = self.source.range(self.s.mode_key)
        if page.kvs and page.kvs[0].value == Mode.PASSIVE.value.encode():
            return page.kvs[0].mod_revision
        return None

    # --- the loop -----------------------------------------------------------
    def run(self) -> int:
        """Mirror until :attr:`stop_requested`; reconnects with backoff after any connection failure.

        Raises:
            MirrorStopped: compacted past the position, --strict found a difference, another
                mirror writes the position, or the mirror lock was lost (its ``exit_code`` says which).
        """
        wait = tenacity.wait_random_exponential(multiplier=0.5, max=10)
        failures = 0
        while not self.stop_requested.is_set():
            try:
                self._session()
                failures = 0
            except EtcdFailure as exc:
                if isinstance(exc, EtcdError) and "too many operations in txn request" in exc.message:
                    # Retrying cannot help: the destination's --max-txn-ops is below ours.
                    raise MirrorStopped(f"the destination refuses transactions of {self.s.max_txn_ops} operations "
                                        f"({exc.message}): give --max-txn-ops its limit", ExitCode.CONFIG) from None
                failures += 1
                pause = wait(_attempt(failures))
                log.warning("connection lost (%s); retrying in %.1f s from the stored position", exc, pause)
                self.stop_requested.wait(pause)
        if self.leases is not None:
            self.leases.stop()
        if self.heartbeats is not None:
            self.heartbeats.stop()
        return ExitCode.OK

    def _session(self) -> None:
        """One connected stretch: decide how to start, then follow the watch until it breaks."""
        self.pair.check(self.source, self.dest)
        self.position = self.read_position()
        passive = self.passive_since()
        if passive is not None and (self.position is None or self.position >= passive):
            log.info("paused: the source is passive since revision %d, and everything before it is applied "
                     "(position %s)", passive, self.position)
            self.metrics.paused.set(1)
            while passive is not None and not self.stop_requested.wait(MODE_CHECK_INTERVAL):
                passive = self.passive_since()
            self.metrics.paused.set(0)
            if passive is not None:
                return
            self.position = self.read_position()  # a switchover sets it while the mirror pauses
            log.info("resumed: the source is active again (position %s)", self.position)
        compacted = self._compacted_past(self.position)
        action, reason = start_action(self.position, compacted, self.s.reload, self.s.auto_reload)
        log.info("%s: %s", action.value, reason)
        if action is Start.STOP:
            raise MirrorStopped(reason, ExitCode.MIRROR_COMPACTED)
        if action in (Start.COPY, Start.RELOAD):
            if action is Start.RELOAD:
                self.metrics.reloads.inc()
            self.copy()
            self.s = dataclasses.replace(self.s, reload=False)
        if self.leases is not None:
            self.leases.start()
        if self.heartbeats is not None:
            self.heartbeats.start()
        self._follow(passive)

    def _compacted_past(self, position: int | None) -> int | None:
        """The source's compact revision if it is past ``position`` + 1, else None (one Range at position+1)."""
        if position is None:
            return None
        try:
            self.source.range(self.s.source_prefix, prefix_end(self.s.source_prefix), revision=position + 1,
                              limit=1, keys_only=True)
        except EtcdError as exc:
            if "compacted" in exc.message:
                # etcd does not say how far; the watch's compact_revision does, later. Anything past is enough.
                return position + 2
            if "future revision" in exc.message:
                return None
            raise
        return None

    def _open_watch(self) -> WatchStream:
        last_error: Exception | None = None
        for endpoint in self.s.source:
            try:
                return WatchStream(endpoint, self.s.source_prefix, prefix_end(self.s.source_prefix),
                                   start_revision=self.position + 1, prev_kv=self.s.strict, progress_notify=True,
                                   connect_timeout=self.s.timeout, idle_timeout=self.s.idle_timeout,
                                   headers=self.source.auth_headers(endpoint), tls=self.s.tls)
            except EtcdFailure as exc:
                last_error = exc
        raise EtcdUnavailable(f"no source endpoint accepted the watch: {last_error}")

    def _follow(self, passive: int | None = None) -> None:
        """Apply the watch's responses until it breaks, pauses or the mirror stops.

        A reader thread keeps the stream flowing into a bounded queue; each round takes
        everything already received (up to :data:`DRAIN_EVENTS`), so that under load many
        source revisions share few destination transactions instead of one each.

        Once the source is passive (since revision ``passive``), the mirror goes on until
        its position reaches that revision (a progress notification brings it there), so
        that every write the source accepted arrives before it pauses.
        """
        stream = self._open_watch()
        pump = Pump(stream)
        checked = time.monotonic()
        try:
            while not self.stop_requested.is_set():
                events: list[Event] = []
                progress = 0
                for item in pump.take(MODE_CHECK_INTERVAL, DRAIN_EVENTS):
                    if isinstance(item, Exception):
                        self._apply_then(events)
                        raise item
                    if item.compact_revision or item.canceled:
                        self._apply_then(events)
                        events = []
                        self._control(item)
                        return  # watch again from the stored position
                    if item.revision:
                        self.metrics.source_revision.set(item.revision)
                        self.metrics.lag_revisions.set(max(0, item.revision - (self.position or 0)))
                    if item.events:
                        events.extend(item.events)
                    elif item.is_progress:
                        progress = max(progress, item.revision)
                self._apply_then(events)
                if progress and self.position is not None and progress > self.position:
                    self._commit([], progress)  # a quiet prefix: the position still advances
                self._update_lag()
                if passive is None and time.monotonic() - checked > MODE_CHECK_INTERVAL:
                    checked = time.monotonic()
                    passive = self.passive_since()
                    if passive is not None:
                        log.info("the source became passive at revision %d: applying up to it, then pausing",
                                 passive)
                if passive is not None and self.position is not None and self.position >= passive:
                    return  # the next session pauses
        finally:
            pump.close()

    def _apply_then(self, events: list[Event]) -> None:
        if events:
            self.apply(events)

    def _control(self, response: WatchResponse) -> None:
        """A cancelled watch: compacted past the position (stop, or reload), or another reason (reconnect)."""
        if response.compact_revision:
            action, reason = start_action(self.position, response.compact_revision, False, self.s.auto_reload)
            if action is Start.STOP:
                raise MirrorStopped(reason, ExitCode.MIRROR_COMPACTED)
            log.warning("%s", reason)
            self.metrics.reloads.inc()
            self.copy()
            return
        raise EtcdError(f"watch cancelled by the source: {response.cancel_reason or 'no reason given'}")

    def stop(self) -> None:
        """Ask :meth:`run` to return after the current watch message (or its idle timeout)."""
        self.stop_requested.set()


def _attempt(n: int) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(None, None, (), {})
    state.attempt_number = n
    return state
