"""What the agent does about its group's termination lifecycle hook once its instance is being taken out (pure).

Auto Scaling holds an instance that it terminates (scale-in, an instance refresh, a rolling update,
TerminateInstanceInAutoScalingGroup) in ``Terminating:Wait`` while a termination lifecycle hook is pending, until
CompleteLifecycleAction or the hook's heartbeat timeout; RecordLifecycleActionHeartbeat restarts that timeout
(EC2 Auto Scaling user guide, "Amazon EC2 Auto Scaling lifecycle hooks"). The agent leaves the cluster first and
completes the action after, so that the machine never goes while its member still votes. EC2's own
TerminateInstances passes no hook: that is the hard failure the leader's housekeeping covers.
"""

from __future__ import annotations

import dataclasses
import enum

HEARTBEAT_INTERVAL = 20.0  # seconds between heartbeats while a leave runs: a hook of 60 s or more never lapses
COMPLETE_ATTEMPTS = 3      # CompleteLifecycleAction calls in a row before the agent holds and tries less often
HOLD_RETRY = 30.0          # seconds between further attempts while holding, until one succeeds or the machine goes


class Step(str, enum.Enum):
    """What follows the leave."""

    COMPLETE = "complete"  # CompleteLifecycleAction (CONTINUE), then hold
    HOLD = "hold"          # stay alive, etcd stopped, until the machine goes (SIGTERM)
    EXIT = "exit"          # no hook: exit, as before hooks existed


@dataclasses.dataclass(frozen=True)
class HookFacts:
    """What the rule needs after the agent left the cluster.

    Attributes:
        hook_name: LIFECYCLE_HOOK_NAME, None when unset. completed: CompleteLifecycleAction succeeded (or AWS
        said no action was pending). attempts: CompleteLifecycleAction calls that failed so far. max_attempts:
        how many in a row before holding (1 on the way out after SIGTERM, where Docker's stop timeout runs).
    """

    hook_name: str | None
    completed: bool = False
    attempts: int = 0
    max_attempts: int = COMPLETE_ATTEMPTS


def after_leave(f: HookFacts) -> tuple[Step, str]:
    """The step after this instance's member left the cluster (or could not), with its reason."""
    if f.hook_name is None:
        return Step.EXIT, "no termination lifecycle hook is set (LIFECYCLE_HOOK_NAME): exiting"
    if f.completed:
        return Step.HOLD, (f"lifecycle action of hook {f.hook_name} completed: idle, etcd stopped, until the "
                           "instance goes")
    if f.attempts >= f.max_attempts:
        return Step.HOLD, (f"CompleteLifecycleAction failed {f.attempts} times: idle, trying again every "
                           f"{HOLD_RETRY:.0f} s until it succeeds, the hook's heartbeat timeout ends the wait with its "
                           "default result, or the instance goes")
    return Step.COMPLETE, (f"left the cluster: completing the lifecycle action of hook {f.hook_name}, so that "
                           "Auto Scaling terminates the instance now")


def retry_while_holding(f: HookFacts) -> bool:
    """True while an agent that holds should try CompleteLifecycleAction again (each :data:`HOLD_RETRY` s): a hook is
    set and no attempt has succeeded. Auto Scaling would end the wait by itself at the heartbeat timeout, but
    a rolling update or a scale-in would wait all of it for an outage of a few seconds."""
    return f.hook_name is not None and not f.completed


def heartbeat_due(leave_started_ago: float, last_heartbeat_ago: float | None,
                  interval: float = HEARTBEAT_INTERVAL) -> bool:
    """True when a RecordLifecycleActionHeartbeat is due during a leave (seconds since it started, and since the
    last heartbeat, None for none yet): one each ``interval`` from the leave's start; a short leave sends none."""
    since = leave_started_ago if last_heartbeat_ago is None else last_heartbeat_ago
    return since >= interval
