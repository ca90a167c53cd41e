"""``sim rotate``: replace every instance of the stack, one at a time, as a rolling upgrade does.

Two shapes, both waiting for a healthy cluster at full size after each step:

* launch before terminate (default): raise the group's desired capacity by one,
  wait until the new instance is a healthy voting member, then take the old one
  out gracefully while lowering the capacity again — what an ASG instance refresh
  with a maximum healthy percentage above 100% does;
* ``--terminate-first``: take one instance out gracefully, and wait for the
  replacement the ASG launches — what operators of the seed appliance did.

Non-leaders go first and the leader last, so leadership moves once.
"""

from __future__ import annotations

import time
from typing import Callable

from appliance.sim import aws, state, view
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


def rotate(state_dir: str, terminate_first: bool = False, step_timeout: float = 180.0) -> bool:
    """Replace every instance once; prints each step and its duration.

    Args:
        state_dir: the running simulator's state directory.
        terminate_first: take the old instance out before its replacement exists.
        step_timeout: seconds each wait for a healthy cluster may take.

    Returns:
        True when every instance was replaced and the cluster is healthy at full size;
        False (after printing why) when a step timed out. A launch-first step that
        times out takes its new instance out again, so the group is back at its size.
    """
    current = state.load(state_dir)
    size = current["instance_count"]
    report = view.observe(current)
    if not report.healthy:
        print(f"etcd.py: error: not rotating an unhealthy cluster: {report.reason}")
        return False
    old = sorted(r["id"] for r in report.instances if not r["leader"]) + [report.leader]
    autoscaling = aws.clients(current["aws_endpoint"], current["region"])["autoscaling"]
    asg = aws.stack_regions(current)[current["region"]]["asg"]
    started = time.monotonic()
    for step, old_id in enumerate(old, 1):
        step_started = time.monotonic()
        before = _ids(view.observe(state.load(state_dir)))
        print(f"[{step}/{len(old)}] replacing {old_id} "
              f"({'terminate first' if terminate_first else 'launch first'})", flush=True)
        if not terminate_first:
            autoscaling.set_desired_capacity(AutoScalingGroupName=asg, DesiredCapacity=size + 1,
                                             HonorCooldown=False)
            ok, report = _wait(state_dir, size + 1, lambda r, before=before: bool(_ids(r) - before), step_timeout)
            if not ok:
                print(f"etcd.py: error: step {step}: no healthy cluster of {size + 1} within "
                      f"{step_timeout:.0f} s ({report.reason if report else 'no answer'}); "
                      "taking the new instance out again")
                latest = state.load(state_dir)
                for new_id in sorted(set(latest.get("instances", {})) - before):
                    terminate(latest, new_id, graceful=True, decrement=True)
                return False
            print(f"  launched {', '.join(sorted(_ids(report) - before))}: a healthy voting member "
                  f"after {time.monotonic() - step_started:.1f} s", flush=True)
        terminate(state.load(state_dir), old_id, graceful=True, decrement=not terminate_first)
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
