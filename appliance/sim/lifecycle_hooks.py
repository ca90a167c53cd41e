"""Pending termination lifecycle actions: the state machine Auto Scaling runs for a termination hook.

Source: EC2 Auto Scaling user guide, "Amazon EC2 Auto Scaling lifecycle hooks", "Complete a lifecycle action"
and the API reference of CompleteLifecycleAction and RecordLifecycleActionHeartbeat:

* an instance that Auto Scaling terminates while its group has hooks on ``autoscaling:EC2_INSTANCE_TERMINATING``
  waits in ``Terminating:Wait``, one lifecycle action per hook;
* an action ends by CompleteLifecycleAction (``CONTINUE`` or ``ABANDON``) or when its heartbeat timeout
  passes (then its DefaultResult holds); each RecordLifecycleActionHeartbeat restarts the timeout, but the
  whole wait never exceeds 100 × HeartbeatTimeout or 48 hours, whichever is smaller (the global timeout);
* for a termination both results terminate: ``ABANDON`` ends the instance's other actions at once,
  ``CONTINUE`` lets them finish; when none is left the instance goes ``Terminating:Proceed`` and is terminated;
* completing or heartbeating an action that is not pending answers ``ValidationError``.

The pending actions live in ``<state dir>/lifecycle-actions.json`` (rewritten atomically on each change, so
``sim status`` can show them), and each instance's end is appended to ``lifecycle-actions.jsonl``. Times are
seconds since the epoch. One :class:`PendingActions` is shared by the proxy's threads and the supervisor's
loop: every method takes its lock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import uuid

from appliance.sim import state

PENDING_FILE = "lifecycle-actions.json"
OUTCOMES_FILE = "lifecycle-actions.jsonl"
GLOBAL_TIMEOUT_CAP = 48 * 3600.0  # seconds
WAIT, PROCEED = "Terminating:Wait", "Terminating:Proceed"


class NoPendingAction(Exception):
    """No lifecycle action is pending for the instance (or token), hook and group given: AWS's ValidationError."""


@dataclasses.dataclass
class Action:
    """One hook's lifecycle action for one terminating instance.

    Attributes:
        instance_id, group, region, hook: where it is pending.
        token: the LifecycleActionToken (a UUID), accepted instead of the instance id.
        heartbeat_timeout: seconds (the hook's HeartbeatTimeout).
        default_result: the hook's DefaultResult, applied when the timeout passes.
        started, deadline: when the wait began and when its heartbeat timeout passes (epoch seconds).
        decrement: the termination lowers the group's desired capacity (ShouldDecrementDesiredCapacity).
        cause: what terminates it, e.g. ``TerminateInstanceInAutoScalingGroup`` or ``scale-in``.
        result: None while waiting; ``CONTINUE``/``ABANDON`` once completed or timed out.
        ended_by: how it ended: ``completed``, ``heartbeat timeout`` or ``global timeout`` ("" while waiting).
    """

    instance_id: str
    group: str
    region: str
    hook: str
    token: str
    heartbeat_timeout: float
    default_result: str
    started: float
    deadline: float
    decrement: bool
    cause: str
    result: str | None = None
    ended_by: str = ""

    @property
    def global_deadline(self) -> float:
        return self.started + min(100 * self.heartbeat_timeout, GLOBAL_TIMEOUT_CAP)


@dataclasses.dataclass(frozen=True)
class Hook:
    """A termination hook of a group: name, HeartbeatTimeout (seconds), DefaultResult."""

    name: str
    heartbeat_timeout: float
    default_result: str = "CONTINUE"


@dataclasses.dataclass(frozen=True)
class Proceeding:
    """An instance whose actions have all ended: Auto Scaling terminates it now.

    ``outcome`` says why, e.g. ``completed (CONTINUE)`` or ``heartbeat timeout (DefaultResult CONTINUE)``.
    """

    instance_id: str
    group: str
    region: str
    decrement: bool
    outcome: str


class PendingActions:
    """The simulator's pending lifecycle actions, persisted in ``state_dir``."""

    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._actions: list[Action] = [Action(**a) for a in load_pending(state_dir)]

    def begin(self, instance_id: str, group: str, region: str, hooks: list[Hook], decrement: bool, cause: str,
              now: float) -> bool:
        """Put ``instance_id`` in Terminating:Wait, one action per hook; False (and nothing changes) when it
        already is (a second termination of a terminating instance changes nothing)."""
        with self._lock:
            if any(a.instance_id == instance_id for a in self._actions):
                return False
            self._actions += [Action(instance_id, group, region, h.name, str(uuid.uuid4()), h.heartbeat_timeout,
                                     h.default_result, now, now + h.heartbeat_timeout, decrement, cause)
                              for h in hooks]
            self._save()
            return True

    def complete(self, group: str, hook: str, instance_id: str | None, token: str | None, result: str,
                 now: float) -> None:
        """CompleteLifecycleAction. Raises :class:`NoPendingAction`."""
        with self._lock:
            action = self._find(group, hook, instance_id, token)
            action.result, action.ended_by = result, "completed"
            self._save()

    def heartbeat(self, group: str, hook: str, instance_id: str | None, token: str | None, now: float) -> float:
        """RecordLifecycleActionHeartbeat: restart the heartbeat timeout, within the global timeout; returns the
        new deadline. Raises :class:`NoPendingAction`."""
        with self._lock:
            action = self._find(group, hook, instance_id, token)
            action.deadline = min(now + action.heartbeat_timeout, action.global_deadline)
            self._save()
            return action.deadline

    def _find(self, group: str, hook: str, instance_id: str | None, token: str | None) -> Action:
        for action in self._actions:
            if action.group == group and action.hook == hook and action.result is None \
                    and (action.token == token if token else action.instance_id == instance_id):
                return action
        what = f"token {token}" if token else f"instance ID {instance_id}"
        raise NoPendingAction(f"No active Lifecycle Action found with {what}")

    def state_of(self, instance_id: str) -> str | None:
        """``Terminating:Wait``, ``Terminating:Proceed`` (every action ended, the termination under way) or None."""
        with self._lock:
            mine = [a for a in self._actions if a.instance_id == instance_id]
        if not mine:
            return None
        return PROCEED if _outcome(mine) else WAIT

    def pending(self) -> list[Action]:
        """Copies of every action not yet finished (ended ones stay until :meth:`finish`)."""
        with self._lock:
            return [dataclasses.replace(a) for a in self._actions]

    def decrements(self, group: str) -> int:
        """How many terminating instances of ``group`` lower its desired capacity when they go."""
        with self._lock:
            return len({a.instance_id for a in self._actions if a.group == group and a.decrement})

    def due(self, now: float) -> list[Proceeding]:
        """Apply the timeouts that passed by ``now``; the instances whose actions have all ended."""
        with self._lock:
            changed = False
            for action in self._actions:
                if action.result is None and now >= action.deadline:
                    changed = True
                    action.result = action.default_result
                    action.ended_by = "global timeout" if action.deadline >= action.global_deadline \
                        else "heartbeat timeout"
            if changed:
                self._save()
            out = []
            for instance_id in dict.fromkeys(a.instance_id for a in self._actions):
                mine = [a for a in self._actions if a.instance_id == instance_id]
                outcome = _outcome(mine)
                if outcome:
                    out.append(Proceeding(instance_id, mine[0].group, mine[0].region, mine[0].decrement, outcome))
            return out

    def finish(self, instance_id: str, outcome: str, now: float) -> None:
        """The instance is terminated (or vanished otherwise): forget its actions, append its outcome."""
        with self._lock:
            mine = [a for a in self._actions if a.instance_id == instance_id]
            if not mine:
                return
            self._actions = [a for a in self._actions if a.instance_id != instance_id]
            self._save()
            record = {"instance": instance_id, "group": mine[0].group, "region": mine[0].region,
                      "hooks": [a.hook for a in mine], "cause": mine[0].cause, "since": mine[0].started,
                      "ended": now, "outcome": outcome}
            state.append_record(os.path.join(self.state_dir, OUTCOMES_FILE), record)

    def _save(self) -> None:
        path = os.path.join(self.state_dir, PENDING_FILE)
        with open(path + ".tmp", "w") as f:
            json.dump([dataclasses.asdict(a) for a in self._actions], f, indent=1)
        os.replace(path + ".tmp", path)


def _outcome(actions: list[Action]) -> str:
    """Why an instance's actions let it go now, or "" while one still waits (ABANDON ends the rest)."""
    abandoned = next((a for a in actions if a.result == "ABANDON"), None)
    if abandoned is None and any(a.result is None for a in actions):
        return ""
    # The action that decided it: an ABANDON, else one that timed out, else any (all completed CONTINUE).
    last = abandoned or next((a for a in actions if a.ended_by != "completed"), actions[0])
    if last.ended_by == "completed":
        return f"completed ({last.result})"
    return f"{last.ended_by} (DefaultResult {last.result})"


def load_pending(state_dir: str) -> list[dict]:
    """The pending actions as the supervisor last wrote them (each :class:`Action` as a dict); [] if none."""
    try:
        with open(os.path.join(state_dir, PENDING_FILE)) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return []


def outcomes(state_dir: str) -> list[dict]:
    """Every finished termination: [{instance, group, region, hooks, cause, since, ended, outcome}], oldest first."""
    return state.read_records(os.path.join(state_dir, OUTCOMES_FILE))
