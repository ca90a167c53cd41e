"""The simulator's running state, and its instances' hard and graceful (lifecycle hook) terminations."""

from __future__ import annotations

import os
import signal
import time

import botocore.exceptions

from appliance.model.errors import ConfigError
from appliance.sim import aws, state
from appliance.sim.lifecycle_hooks import load_pending, outcomes


def running_state(state_dir: str) -> dict:
    current = state.load(state_dir)
    if current is None or not state.pid_alive(current.get("supervisor_pid")):
        raise ConfigError(f"no simulator runs in {os.path.abspath(state_dir)} (start one with: etcd.py sim up)")
    return current


def terminate(current: dict, instance_id: str, graceful: bool, timeout: float | None = None,
              decrement: bool = False) -> str:
    """Terminate ``instance_id`` through the AWS API; returns what happened, in one line.

    Not ``graceful``: EC2's TerminateInstances (Auto Scaling's TerminateInstanceInAutoScalingGroup with
    ``decrement``): the machine vanishes at once, no lifecycle hook, as on AWS. ``graceful``: Auto Scaling's
    TerminateInstanceInAutoScalingGroup through the simulator's AWS proxy, so the group's termination hook
    holds the instance in Terminating:Wait until its agent completes the lifecycle action or the heartbeat
    timeout passes; then waits until the instance and its agent are gone.

    Args:
        timeout: seconds a graceful termination may take (default: the hook's HeartbeatTimeout + 30 s).
        decrement: lower the group's desired capacity too (no replacement is launched).

    Raises:
        ConfigError: the instance is not in this simulator's group, or Auto Scaling refused the termination.
        TimeoutError: the graceful termination did not end within ``timeout``.
    """
    known = current.get("instances", {})
    if instance_id not in known:
        raise ConfigError(f"instance {instance_id} is not in this simulator's group "
                          f"(known: {', '.join(sorted(known)) or 'none'})")
    region, pid = known[instance_id]["region"], known[instance_id].get("agent_pid")
    if not graceful:
        clients = aws.clients(current["aws_endpoint"], region)
        if decrement:
            clients["autoscaling"].terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)
        else:
            clients["ec2"].terminate_instances(InstanceIds=[instance_id])
        if pid:  # the machine vanishes now, not at the supervisor's next look
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return f"terminated {instance_id}"
    asked = time.time()
    try:
        aws.clients(current["agent_aws_endpoint"], region)["autoscaling"].terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement)
    except botocore.exceptions.ClientError as exc:
        raise ConfigError(f"Auto Scaling refused to terminate {instance_id}: {exc}") from None
    timeout = current.get("hook_timeout", 300) + 30.0 if timeout is None else timeout
    if not wait_gone(current, instance_id, pid, timeout):
        pending = next((a for a in load_pending(current["state_dir"]) if a["instance_id"] == instance_id), None)
        raise TimeoutError(f"{instance_id} not terminated within {timeout:.0f} s" + (
            f": still Terminating:Wait, its lifecycle action pending until "
            f"{time.strftime('%H:%M:%S', time.localtime(pending['deadline']))}" if pending else ""))
    ended = next((o for o in reversed(outcomes(current["state_dir"]))
                  if o["instance"] == instance_id and o["ended"] >= asked - 1), None)
    return f"terminated {instance_id} " + (f"after its lifecycle action: {ended['outcome']}" if ended
                                           else "at once (its group has no termination hook)")


def wait_gone(current: dict, instance_id: str, pid: int | None, timeout: float) -> bool:
    """Wait until ``instance_id`` is out of its group and its agent's process is gone; False after ``timeout``
    seconds."""
    region = current["instances"][instance_id]["region"]
    asg = aws.stack_regions(current)[region]["asg"]
    clients = aws.clients(current["aws_endpoint"], region)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = {i["id"] for i in aws.group_instances(clients, asg, region)}
        if instance_id not in listed and not state.pid_alive(pid):
            return True
        time.sleep(0.5)
    return False


def down(state_dir: str) -> bool:
    """Stop the supervisor (SIGTERM, then SIGKILL of every recorded process group); False if no state."""
    current = state.load(state_dir)
    if current is None:
        return False
    pid = current.get("supervisor_pid")
    if state.pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while state.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    # Whatever is still alive (a supervisor killed with -9, say) goes now.
    groups = [pid, current.get("moto_pid")] + [i.get("agent_pid") for i in current.get("instances", {}).values()]
    for group in groups:
        if group and state.pid_alive(group):
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    return True
