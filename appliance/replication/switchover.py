"""Moving the write master from one cluster to the other, one verified step at a time.

Both clusters run a mirror process towards the other; each mirror only copies
while its source is active (:mod:`appliance.rules.modes`), so exactly one of
them runs. A switchover from OLD to NEW:

1. ``old-read-only``: OLD passive (clients may only read); its mode record's revision M
   is the last revision a client could have written.
2. ``catch-up``: wait until the mirror OLD→NEW has applied M (its position in NEW).
3. ``reverse-position``: store NEW's current revision as the position of the mirror
   NEW→OLD (in OLD), so that it starts exactly where NEW becomes writable.
4. ``new-writable``: NEW active; from here on clients write to NEW.
5. ``reverse-mirror``: wait until the mirror NEW→OLD has passed NEW's activation.
6. ``write-record``: point the write record (``_etcd-client-rw._tcp.…``) at NEW
   (only with a hosted zone).

Any failure in steps 1–4 undoes the steps taken, in reverse order; a failure after
4 leaves NEW active and lists the steps that remain. Observe → decide
(:func:`appliance.rules.switchover_plan.plan`, pure) → act, as everywhere in the appliance.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Callable

from appliance.adapters.etcd.auth import read_mode
from appliance.adapters.etcd.client import EtcdClient, compare_absent, compare_value, op_delete, op_put
from appliance.adapters.etcd.errors import EtcdError, EtcdFailure, EtcdUnavailable
from appliance.model.errors import ApplianceError
from appliance.model.exit_codes import ExitCode
from appliance.model.keys import Credentials, position_key
from appliance.model.modes import Mode
from appliance.model.tls import TlsFiles
from appliance.replication.modes import apply_mode
from appliance.replication.position import parse_revision
from appliance.rules.modes import mode_of
from appliance.rules.switchover_plan import DESCRIPTIONS, REMEDIES, UNDOABLE, Side, Step, plan

log = logging.getLogger("switchover")

POLL_INTERVAL = 0.1    # seconds between reads of a mirror's position
FAILPOINT_VARIABLE = "APPLIANCE_FAILPOINT"  # "switchover:<step>": fail right after that step's action (tests)


class SwitchoverFailed(ApplianceError):
    """The switchover stopped; ``exit_code`` is ExitCode.SWITCHOVER_ROLLED_BACK, _INCOMPLETE or _UNDO_FAILED,
    the message says where."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Refused(ApplianceError):
    """A precondition does not hold; nothing was changed."""

    exit_code = ExitCode.CONFIG


@dataclasses.dataclass(frozen=True)
class SwitchoverSettings:
    """``old``/``new``: client URLs; prefixes as bytes; times in seconds."""

    old: tuple[str, ...]
    new: tuple[str, ...]
    old_prefix: bytes
    new_prefix: bytes
    credentials: dict[str, Credentials]
    tls: TlsFiles | None = None  # CA and client certificate for https URLs
    catch_up_timeout: float = 30.0
    reverse_timeout: float = 30.0
    timeout: float = 5.0
    write_record: Callable[[], str] | None = None  # repoints the write record; returns what it did


class Switchover:
    """Runs a :class:`Plan` against two clusters; :meth:`run` returns the seconds writes were refused."""

    def __init__(self, settings: SwitchoverSettings, say: Callable[[str], None] = print):
        self.s = settings
        self.say = say
        user = settings.credentials["appliance"]
        self.old = EtcdClient(settings.old, timeout=settings.timeout, credentials=user, tls=settings.tls)
        self.new = EtcdClient(settings.new, timeout=settings.timeout, credentials=user, tls=settings.tls)
        self.done: list[Step] = []
        self._old_passive_at = 0       # revision of OLD's passive record
        self._new_active_at = 0        # revision of NEW's active record
        self._reverse_before: bytes | None = None  # the reverse position before step 3, for its undo
        self._reverse_written: bytes | None = None
        self.refused_since: float | None = None
        self.refused_for: float | None = None

    # --- observe -----------------------------------------------------------
    def observe(self) -> tuple[Side, Side]:
        """Both clusters' state. Raises Refused when one does not answer or lacks authentication."""
        sides = []
        for name, client, dest_prefix in (("OLD", self.old, self.s.old_prefix), ("NEW", self.new, self.s.new_prefix)):
            try:
                cluster_id = client.member_list().cluster_id
                mode, mode_revision = read_mode(client)
                found = client.range(position_key(dest_prefix))
            except EtcdUnavailable as exc:
                raise Refused(f"{name} does not answer: {exc}") from None
            except EtcdError as exc:
                raise Refused(f"{name}: {exc.message} (is authentication on? run cluster-mode there)") from None
            position = parse_revision(found.kvs[0].value) if found.kvs else None
            if found.kvs and position is None:
                raise Refused(f"{name}: the position at {position_key(dest_prefix).decode()} holds no revision")
            sides.append(Side(cluster_id, mode, mode_revision, found.revision, position))
        return sides[0], sides[1]

    # --- act -----------------------------------------------------------------
    def run(self, dry_run: bool = False) -> float | None:
        """Print the plan, then (unless ``dry_run``) run it. Returns the seconds writes were refused
        (None if this run refused none).

        Raises:
            Refused: a precondition failed (nothing changed). SwitchoverFailed: see its ``exit_code``.
        """
        old, new = self.observe()
        decided = plan(old, new, self.s.write_record is not None)
        if decided.refusal:
            raise Refused(decided.refusal)
        self.say(f"OLD {old.cluster_id:x} ({old.mode.value}), NEW {new.cluster_id:x} ({new.mode.value}): "
                 f"{decided.summary}")
        for n, step in enumerate(decided.steps, 1):
            self.say(f"  {n}. {DESCRIPTIONS[step]}")
        if dry_run:
            self.say("dry run: preconditions hold; nothing changed")
            return None
        self._old_passive_at = old.mode_revision if old.mode is Mode.PASSIVE else 0
        self._new_active_at = new.mode_revision if new.mode is Mode.ACTIVE else 0
        for step in decided.steps:
            started = time.monotonic()
            try:
                outcome = getattr(self, "_" + step.name.lower())()
                _failpoint(step)
            except (EtcdFailure, TimeoutError, FailpointError) as exc:
                if step in UNDOABLE:
                    self._undo(step, exc)
                remaining = [s for s in decided.steps if s not in self.done]
                raise SwitchoverFailed(
                    f"step {step.value} failed ({exc}); NEW is active. Remaining: "
                    + "; ".join(f"{s.value}: {REMEDIES.get(s, DESCRIPTIONS[s])}" for s in remaining),
                    ExitCode.SWITCHOVER_INCOMPLETE) from None
            if step not in self.done:
                self.done.append(step)
            self.say(f"done: {step.value} ({outcome}; {time.monotonic() - started:.2f} s)")
        if self.refused_for is not None:
            self.say(f"switched over: clients could not write for {self.refused_for:.2f} s")
        return self.refused_for

    def _apply_mode(self, name: str, client: EtcdClient, mode: Mode, prefix: bytes) -> int:
        """Set ``mode`` on one cluster and check its client role says so; returns the mode's revision.
        Called after its step is recorded in ``done``: a half-done change (roles changed, mode
        record not written) is undone too, and undoing it again is harmless."""
        revision = apply_mode(client, mode, prefix)
        if mode_of(client.role_permissions("client"), prefix) is not mode:
            raise EtcdError(f"{name}'s client role is not {mode.value} after the change")
        return revision

    def _old_read_only(self) -> str:
        self.refused_since = time.monotonic()
        self.done.append(Step.OLD_READ_ONLY)
        self._old_passive_at = self._apply_mode("OLD", self.old, Mode.PASSIVE, self.s.old_prefix)
        return f"OLD passive at revision {self._old_passive_at}"

    def _catch_up(self) -> str:
        position = _wait_for_position(self.new, position_key(self.s.new_prefix), self._old_passive_at,
                                      self.s.catch_up_timeout, "the mirror OLD→NEW", "OLD's last write")
        return f"the mirror's position {position} ≥ {self._old_passive_at}"

    def _reverse_position(self) -> str:
        key = position_key(self.s.old_prefix)
        found = self.old.get(key)
        self._reverse_before = found[0] if found else None
        # Nothing under NEW's prefix changes from here until NEW is active: the mirror into NEW
        # has paused and NEW's clients may only read. Its current revision is therefore exact.
        revision = self.new.range(position_key(self.s.new_prefix)).revision
        self._reverse_written = str(revision).encode()
        guard = compare_value(key, self._reverse_before) if self._reverse_before is not None else compare_absent(key)
        if not self.old.txn([guard], [op_put(key, self._reverse_written)]).get("succeeded"):
            raise EtcdError(f"{key.decode()} in OLD changed while being set: is the mirror NEW→OLD running "
                            "against a passive NEW?")
        self.done.append(Step.REVERSE_POSITION)
        return f"the mirror NEW→OLD starts after revision {revision}"

    def _new_writable(self) -> str:
        self.done.append(Step.NEW_WRITABLE)
        self._new_active_at = self._apply_mode("NEW", self.new, Mode.ACTIVE, self.s.new_prefix)
        if self.refused_since is not None:
            self.refused_for = time.monotonic() - self.refused_since
        return f"NEW active at revision {self._new_active_at}"

    def _reverse_mirror(self) -> str:
        position = _wait_for_position(self.old, position_key(self.s.old_prefix), self._new_active_at,
                                      self.s.reverse_timeout, "the mirror NEW→OLD", "NEW's activation")
        return f"its position {position} ≥ {self._new_active_at}"

    def _write_record(self) -> str:
        assert self.s.write_record is not None
        try:
            return self.s.write_record()
        except Exception as exc:  # botocore's errors and ours alike: the step failed, NEW stays active
            raise EtcdError(f"Route53: {exc}") from None

    # --- undo ----------------------------------------------------------------
    def _undo(self, failed: Step, cause: Exception) -> None:
        """Undo every undoable step taken, newest first; raise SwitchoverFailed (6 or 8)."""
        self.say(f"step {failed.value} failed: {cause}; undoing")
        problems = []
        for step in reversed([s for s in self.done if s in UNDOABLE]):
            try:
                if step is Step.NEW_WRITABLE:
                    apply_mode(self.new, Mode.PASSIVE, self.s.new_prefix)
                elif step is Step.REVERSE_POSITION:
                    key = position_key(self.s.old_prefix)
                    guard = compare_value(key, self._reverse_written)
                    ops = [op_put(key, self._reverse_before)] if self._reverse_before is not None else [op_delete(key)]
                    self.old.txn([guard], ops)
                elif step is Step.OLD_READ_ONLY:
                    apply_mode(self.old, Mode.ACTIVE, self.s.old_prefix)
                self.say(f"undone: {step.value}")
            except EtcdFailure as exc:
                problems.append(f"{step.value} ({exc})")
        self.done.clear()
        modes = self._modes()
        if problems:
            raise SwitchoverFailed(f"step {failed.value} failed ({cause}) and undoing failed for "
                                   f"{', '.join(problems)}; now {modes}. Once both clusters answer, either "
                                   "make OLD active again (etcd.py cluster-mode --endpoints OLD … active) or "
                                   "run the switchover again to finish it", ExitCode.SWITCHOVER_UNDO_FAILED)
        raise SwitchoverFailed(f"step {failed.value} failed ({cause}); every step was undone: {modes}",
                               ExitCode.SWITCHOVER_ROLLED_BACK)

    def _modes(self) -> str:
        states = []
        for name, client in (("OLD", self.old), ("NEW", self.new)):
            try:
                states.append(f"{name} {read_mode(client)[0].value}")
            except EtcdFailure as exc:
                states.append(f"{name} unknown ({exc})")
        return ", ".join(states)


def _wait_for_position(client: EtcdClient, key: bytes, target: int, timeout: float, mirror: str,
                       target_name: str) -> int:
    """Poll a mirror's position at ``key`` until it reaches revision ``target``; returns it.

    Raises:
        TimeoutError: not within ``timeout`` seconds. EtcdFailure.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = client.get(key)
        position = (parse_revision(found[0]) or 0) if found else 0  # not a revision: not there yet
        if position >= target:
            return position
        if time.monotonic() > deadline:
            raise TimeoutError(f"{mirror} stayed at revision {position}, below {target_name} {target}, "
                               f"for {timeout:g} s: is it running?")
        time.sleep(POLL_INTERVAL)


class FailpointError(Exception):
    """Raised by :func:`_failpoint`: a failure injected by a test."""


def _failpoint(step: Step) -> None:
    """Fail right after ``step``'s action when ``APPLIANCE_FAILPOINT=switchover:<step>`` (as etcd's gofail
    failpoints do): how the tests prove that a failure at every step ends in a stated mode."""
    if os.environ.get(FAILPOINT_VARIABLE) == f"switchover:{step.value}":
        raise FailpointError(f"failpoint {FAILPOINT_VARIABLE}=switchover:{step.value}")
