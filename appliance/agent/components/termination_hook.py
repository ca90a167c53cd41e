"""The termination lifecycle hook: heartbeats while this instance's member leaves, then the completion.

The rule is :mod:`appliance.rules.termination_hook`'s. The leave itself is the actuator's (MemberRemove of this
member); this component only keeps Auto Scaling waiting while it runs, and lets the instance go after it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Callable, Iterator

from appliance.adapters.aws import lifecycle_actions
from appliance.adapters.aws.lifecycle_actions import LifecycleActions, NoPendingAction
from appliance.rules import termination_hook
from appliance.rules.termination_hook import HookFacts, Step

log = logging.getLogger("agent")

RETRY_PAUSE = 5.0  # seconds between CompleteLifecycleAction attempts


class TerminationHook:
    """This instance's side of the group's termination hook.

    Args:
        actions: the Auto Scaling calls, None without LIFECYCLE_HOOK_NAME. hook_name: LIFECYCLE_HOOK_NAME or None.
        metrics: the agent's metrics (``lifecycle_actions``). clock: monotonic seconds. sleep: waits between
        attempts (tests pass a fake). heartbeat_interval: seconds between heartbeats during a leave.
    """

    def __init__(self, actions: LifecycleActions | None, hook_name: str | None, metrics,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] = time.sleep,
                 heartbeat_interval: float = termination_hook.HEARTBEAT_INTERVAL):
        self.actions = actions
        self.hook_name = hook_name if actions is not None else None
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.heartbeat_interval = heartbeat_interval
        self.completed = False
        self.attempts = 0
        self.heartbeats_sent = 0

    @contextlib.contextmanager
    def heartbeats(self) -> Iterator[None]:
        """While the body runs (the leave), send RecordLifecycleActionHeartbeat each ``heartbeat_interval`` s from
        a thread of its own; a leave shorter than that sends none."""
        if self.actions is None:
            yield
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._beat, args=(stop,), name="lifecycle-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10.0)

    def _beat(self, stop: threading.Event) -> None:
        try:
            self._beats(stop)
        except Exception:  # noqa: BLE001 - a bug here must not pass unseen: the hook's timeout still ends the wait
            log.exception("lifecycle action heartbeats stopped")

    def _beats(self, stop: threading.Event) -> None:
        started, last = self.clock(), None
        while not stop.wait(min(1.0, self.heartbeat_interval)):
            now = self.clock()
            if not termination_hook.heartbeat_due(now - started, None if last is None else now - last,
                                                  self.heartbeat_interval):
                continue
            last = now
            try:
                self.actions.heartbeat()
                self.heartbeats_sent += 1
                log.info("the leave takes %.0f s: sent a lifecycle action heartbeat, the hook waits on",
                         now - started)
            except NoPendingAction:
                log.info("no lifecycle action of hook %s waits for this instance: no heartbeats needed",
                         self.hook_name)
                return
            except lifecycle_actions.ERRORS as exc:
                log.warning("lifecycle action heartbeat failed (%s); the next in %.0f s", exc,
                            self.heartbeat_interval)

    def _facts(self, max_attempts: int = termination_hook.COMPLETE_ATTEMPTS) -> HookFacts:
        return HookFacts(self.hook_name, self.completed, self.attempts, max_attempts)

    def after_leave(self, max_attempts: int = termination_hook.COMPLETE_ATTEMPTS) -> Step:
        """Complete the lifecycle action (up to ``max_attempts`` in a row), once this member left or could not;
        returns what the agent does next: :attr:`Step.HOLD` (idle until SIGTERM, see :meth:`hold`) or
        :attr:`Step.EXIT` (no hook)."""
        while True:
            step, reason = termination_hook.after_leave(self._facts(max_attempts))
            log.info("%s", reason)
            if step is not Step.COMPLETE:
                return step
            if not self._complete() and self.attempts < max_attempts:
                self.sleep(RETRY_PAUSE)

    def hold(self, stop: threading.Event) -> None:
        """Idle until ``stop`` (SIGTERM: the machine is going), trying CompleteLifecycleAction again every
        :data:`~appliance.rules.termination_hook.HOLD_RETRY` seconds while no attempt has succeeded."""
        while not stop.is_set():
            if not termination_hook.retry_while_holding(self._facts()):
                stop.wait()
                return
            if stop.wait(termination_hook.HOLD_RETRY):
                return
            if self._complete():
                log.info("lifecycle action of hook %s completed: idle, etcd stopped, until the instance goes",
                         self.hook_name)

    def _complete(self) -> bool:
        """One CompleteLifecycleAction; True when no action waits any more (completed now, or none was pending)."""
        try:
            self.actions.complete()
        except NoPendingAction:
            log.info("no lifecycle action of hook %s waited for this instance (completed already, timed out, "
                     "or the instance is terminated without the hook)", self.hook_name)
        except lifecycle_actions.ERRORS as exc:
            self.attempts += 1
            self.metrics.lifecycle_actions.labels(outcome="failed").inc()
            log.warning("CompleteLifecycleAction failed: %s", exc)
            return False
        else:
            self.metrics.lifecycle_actions.labels(outcome="completed").inc()
        self.completed = True
        return True
