"""The simulator's running state, and its instances' hard and graceful terminations."""

from __future__ import annotations

import os
import signal
import time

from appliance.model.errors import ConfigError
from appliance.sim import aws, state
from appliance.sim.metadata_server import write_lifecycle


def running_state(state_dir: str) -> dict:
    current = state.load(state_dir)
    if current is None or not state.pid_alive(current.get("supervisor_pid")):
        raise ConfigError(f"no simulator runs in {os.path.abspath(state_dir)} (start one with: etcd.py sim up)")
    return current


def terminate(current: dict, instance_id: str, graceful: bool, timeout: float = 60.0,
              decrement: bool = False) -> None:
    """Terminate ``instance_id`` through the AWS API; ``graceful`` first plays a termination lifecycle hook.

    Args:
        timeout: seconds the agent gets to leave the cluster (graceful only).
        decrement: lower the group's desired capacity too (no replacement is launched).

    Raises:
        ConfigError: the instance is not in this simulator's group.
    """
    known = current.get("instances", {})
    if instance_id not in known:
        raise ConfigError(f"instance {instance_id} is not in this simulator's group "
                          f"(known: {', '.join(sorted(known)) or 'none'})")
    clients = aws.clients(current["aws_endpoint"], known[instance_id]["region"])
    pid = known[instance_id].get("agent_pid")
    if graceful:
        # What a termination lifecycle hook gives on AWS: the target lifecycle state
        # turns Terminated and the agent gets SIGTERM and time before the machine goes.
        write_lifecycle(state.lifecycle_file(current["state_dir"], instance_id), "Terminated")
        if pid and state.pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while state.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if state.pid_alive(pid):
                print(f"agent of {instance_id} did not exit within {timeout:.0f} s; terminating anyway")
        clients["autoscaling"].terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement)
    else:
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
