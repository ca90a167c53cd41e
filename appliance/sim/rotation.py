"""``sim rotate``: replace every instance of the stack, one at a time, as a rolling update does.

moto has no instance refresh and ignores a group's UpdatePolicy, so the simulator plays what
CloudFormation does for the templates' ``UpdatePolicy: AutoScalingRollingUpdate`` with
MinInstancesInService = the group's size, MaxBatchSize 1 and WaitOnResourceSignals:

* launch before terminate (default): raise the group's desired capacity by one, wait for the new
  instance's SUCCESS signal (``cloudformation:SignalResource``, which its agent sends once its member is
  a healthy voter; :mod:`.cfn_signals`), then terminate one old instance with
  TerminateInstanceInAutoScalingGroup(ShouldDecrementDesiredCapacity=true) through the termination hook
  and wait until it is gone;
* ``--terminate-first``: terminate one instance through the hook (no decrement), and wait for the signal
  of the replacement the group launches — what operators of the seed appliance did.

Each step then waits for a healthy cluster at full size. Non-leaders go first and the leader last, so
leadership moves once.
"""

from __future__ import annotations

import time
from typing import Callable

from appliance.sim import aws, state, view
from appliance.sim.cfn_signals import wait_for_signal
from appliance.sim.instances import terminate

POLL_INTERVAL = 0.5  # seconds


def _wait(state_dir: str, expected: int, done: Callable[[view.ClusterReport], bool], timeout: float,
          ) -> tuple[bool, view.ClusterReport | None]:
    """Poll until the cluster is healthy with ``expected`` InService instances and ``done(report)``."""
    deadline = time.monotonic() + timeout
    report = None
    while time.monotonic() < deadline:
        try:
            report = view.observe(state.load(state_dir), expected=expected)
        except Exception as exc:  # noqa: BLE001 - the local AWS may hiccup; the deadline bounds the wait
            report = view.ClusterReport([], False, f"local AWS not answering: {exc}", None)
        if report.healthy and done(report):
            return True, report
        time.sleep(POLL_INTERVAL)
    return False, report


def _ids(report: view.ClusterReport) -> set[str]:
    return {r["id"] for r in report.instances}


def _signal(state_dir: str, before: set[str], since: float, timeout: float) -> tuple[str, str]:
    """(instance, "") once an instance launched after ``since`` and not in ``before`` signalled SUCCESS, else
    ("", why not) after ``timeout`` seconds or a FAILURE signal."""
    found = wait_for_signal(state_dir, lambda s: s["unique_id"] not in before and s["time"] >= since, timeout)
    if found is None:
        return "", f"no signal from a new instance within {timeout:.0f} s"
    if found["status"] != "SUCCESS":
        return "", f"{found['unique_id']} signalled {found['status']}"
    return found["unique_id"], ""


def rotate(state_dir: str, terminate_first: bool = False, step_timeout: float = 180.0) -> bool:
    """Replace every instance once; prints each step and its duration.

    Args:
        state_dir: the running simulator's state directory.
        terminate_first: take the old instance out before its replacement exists.
        step_timeout: seconds each wait (for a signal, a termination, a healthy cluster) may take.

    Returns:
        True when every instance was replaced and the cluster is healthy at full size;
        False (after printing why) when a step failed or timed out. A launch-first step whose new
        instance does not signal SUCCESS in time takes it out again, so the group is back at its size.
    """
    current = state.load(state_dir)
    size = current["instance_count"]
    report = view.observe(current)
    if not report.healthy:
        print(f"etcd.py: error: not rotating an unhealthy cluster: {report.reason}")
        return False
    old = sorted(r["id"] for r in report.instances if not r["leader"]) + [report.leader]
    # Through the proxy, as CloudFormation's own calls: the termination hook holds the old instances.
    autoscaling = aws.clients(current["agent_aws_endpoint"], current["region"])["autoscaling"]
    asg = aws.stack_regions(current)[current["region"]]["asg"]
    started = time.monotonic()
    for step, old_id in enumerate(old, 1):
        step_started, since = time.monotonic(), time.time()
        before = _ids(view.observe(state.load(state_dir)))
        print(f"[{step}/{len(old)}] replacing {old_id} "
              f"({'terminate first' if terminate_first else 'launch first'})", flush=True)
        try:
            if not terminate_first:
                autoscaling.set_desired_capacity(AutoScalingGroupName=asg, DesiredCapacity=size + 1,
                                                 HonorCooldown=False)
                new_id, problem = _signal(state_dir, before, since, step_timeout)
                if problem:
                    print(f"etcd.py: error: step {step}: {problem}; taking the new instance out again", flush=True)
                    latest = state.load(state_dir)
                    for new_id in sorted(set(latest.get("instances", {})) - before):
                        terminate(latest, new_id, graceful=True, timeout=step_timeout, decrement=True)
                    return False
                print(f"  launched {new_id}: SUCCESS signal after {time.monotonic() - step_started:.1f} s",
                      flush=True)
            print("  " + terminate(state.load(state_dir), old_id, graceful=True, timeout=step_timeout,
                                   decrement=not terminate_first), flush=True)
            if terminate_first:
                new_id, problem = _signal(state_dir, before, since, step_timeout)
                if problem:
                    print(f"etcd.py: error: step {step}: {problem}")
                    return False
                print(f"  replacement {new_id}: SUCCESS signal after {time.monotonic() - step_started:.1f} s",
                      flush=True)
        except TimeoutError as exc:
            print(f"etcd.py: error: step {step}: {exc}")
            return False
        ok, report = _wait(state_dir, size, lambda r, old_id=old_id: old_id not in _ids(r), step_timeout)
        if not ok:
            print(f"etcd.py: error: step {step}: no healthy cluster of {size} within {step_timeout:.0f} s "
                  f"after taking {old_id} out ({report.reason if report else 'no answer'})")
            return False
        new = sorted(_ids(report) - before)
        print(f"  {old_id} replaced by {', '.join(new) or '-'} in {time.monotonic() - step_started:.1f} s",
              flush=True)
    print(f"rotated {len(old)} instances in {time.monotonic() - started:.1f} s\n")
    print(view.format_table(report))
    return True
