"""Termination lifecycle hooks and CloudFormation signals in the simulator, as AWS plays them.

First the simulator's AWS proxy alone in front of a real moto server over HTTP (boto3 clients, no etcd):
Terminating:Wait until CompleteLifecycleAction or the heartbeat timeout, scale-in through the hook, AWS's
refusals, SignalResource recorded. Then one simulated 3-instance stack (real agents and etcd, hook timeout 30 s)
shared by the scenarios, in order: a graceful termination the agent completes; a hard termination that
passes no hook; a dead agent whose hook times out; a scale-in through the hook.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from appliance.sim import aws, state
from appliance.sim.autoscaling_hooks import HOOK_NAME, TerminationHooks, put_termination_hook
from appliance.sim.aws_proxy import AwsProxy
from appliance.sim.cfn_signals import ResourceSignals, read_signals
from appliance.sim.lifecycle_hooks import PendingActions, outcomes
from tests.integration.conftest import REPO, Sim, run_cli, wait_until

REGION = aws.REGION


class Local:
    """moto, and the proxy with the hook and signal extensions in front of it; the hooks' clock can be moved."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        port = aws.free_port()
        self.moto = aws.start_moto(port, os.path.join(tmp, "moto.log"), preexec=os.setsid)
        self.upstream = f"http://127.0.0.1:{port}"
        self.offset = 0.0
        self.actions = PendingActions(tmp)
        self.hooks = TerminationHooks(self.upstream, self.actions, lambda i: os.path.join(tmp, i, "lifecycle"),
                                      clock=lambda: time.time() + self.offset)
        self.proxy = AwsProxy(self.upstream, os.path.join(tmp, "faults.json"), os.path.join(tmp, "calls.log"),
                              extensions=(self.hooks, ResourceSignals(self.upstream, tmp)))
        self.direct = aws.clients(self.upstream, REGION)
        config = botocore.config.Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 1},
                                        user_agent_appid="i-caller")
        session = boto3.session.Session(region_name=REGION, **aws.CREDENTIALS)
        self.via_proxy = {name: session.client(name, endpoint_url=self.proxy.endpoint, config=config)
                          for name in ("autoscaling", "cloudformation")}
        ec2 = self.direct["ec2"]
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24",
                                        AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
        self.template = ec2.create_launch_template(LaunchTemplateName="t", LaunchTemplateData={
            "ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]

    def group(self, name: str, size: int, min_size: int = 1, hook: bool = True) -> list[str]:
        """A new group of ``size`` instances (with the appliance's hook, 30 s); its instance ids."""
        autoscaling = self.direct["autoscaling"]
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=min_size, MaxSize=size + 1,
                                              DesiredCapacity=size, VPCZoneIdentifier=self.subnet,
                                              LaunchTemplate={"LaunchTemplateId": self.template, "Version": "1"})
        if hook:
            put_termination_hook(autoscaling, name, 30)
        return self.members(name, via_proxy=False)

    def members(self, name: str, via_proxy: bool = True) -> dict[str, str]:
        """Instance id -> lifecycle state in the group, as the proxy (or moto itself) lists it."""
        client = self.via_proxy["autoscaling"] if via_proxy else self.direct["autoscaling"]
        [group] = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
        return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}

    def desired(self, name: str, via_proxy: bool = True) -> int:
        client = self.via_proxy["autoscaling"] if via_proxy else self.direct["autoscaling"]
        return client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
            "DesiredCapacity"]

    def close(self) -> None:
        self.proxy.close()
        os.killpg(self.moto.pid, signal.SIGKILL)
        self.moto.wait(10)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    made = Local(str(tmp_path_factory.mktemp("hooks")))
    try:
        yield made
    finally:
        made.close()


def test_terminating_wait_until_the_action_is_completed(local):
    first, second = local.group("complete", 2)
    answer = local.via_proxy["autoscaling"].terminate_instance_in_auto_scaling_group(
        InstanceId=first, ShouldDecrementDesiredCapacity=False)
    assert answer["Activity"]["StatusCode"] == "InProgress"
    assert answer["Activity"]["Description"] == f"Terminating EC2 instance: {first}"
    instances = local.via_proxy["autoscaling"].describe_auto_scaling_instances(InstanceIds=[first])
    assert instances["AutoScalingInstances"][0]["LifecycleState"] == "Terminating:Wait"
    assert local.members("complete") == {first: "Terminating:Wait", second: "InService"}
    assert local.members("complete", via_proxy=False)[first] == "InService"  # moto itself waits for nothing
    with open(os.path.join(local.tmp, first, "lifecycle")) as f:
        assert f.read() == "Terminated"  # what its metadata server answers
    assert local.hooks.advance() == []
    local.via_proxy["autoscaling"].complete_lifecycle_action(
        LifecycleHookName=HOOK_NAME, AutoScalingGroupName="complete", InstanceId=first,
        LifecycleActionResult="CONTINUE")
    assert local.hooks.advance() == [first]
    after = local.members("complete")
    assert first not in after and second in after and len(after) == 2  # replaced: no decrement
    assert outcomes(local.tmp)[-1]["outcome"] == "completed (CONTINUE)"
    with pytest.raises(ClientError, match="No active Lifecycle Action found"):
        local.via_proxy["autoscaling"].complete_lifecycle_action(
            LifecycleHookName=HOOK_NAME, AutoScalingGroupName="complete", InstanceId=first,
            LifecycleActionResult="CONTINUE")


def test_a_second_termination_is_idempotent_and_the_timeout_terminates_anyway(local):
    victim, _ = local.group("timeout", 2)
    for _ in range(2):
        local.via_proxy["autoscaling"].terminate_instance_in_auto_scaling_group(
            InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert [a.instance_id for a in local.actions.pending()] == [victim]
    assert local.desired("timeout") == 1 and local.desired("timeout", via_proxy=False) == 2
    local.offset = 29.0
    assert local.hooks.advance() == []
    local.via_proxy["autoscaling"].record_lifecycle_action_heartbeat(
        LifecycleHookName=HOOK_NAME, AutoScalingGroupName="timeout", InstanceId=victim)
    local.offset = 58.0
    assert local.hooks.advance() == []  # the heartbeat at 29 s moved the deadline to 59 s
    local.offset = 60.0
    try:
        assert local.hooks.advance() == [victim]
    finally:
        local.offset = 0.0
    assert victim not in local.members("timeout") and local.desired("timeout", via_proxy=False) == 1
    assert outcomes(local.tmp)[-1]["outcome"] == "heartbeat timeout (DefaultResult CONTINUE)"


def test_a_group_without_hook_terminates_at_once(local):
    victim, _ = local.group("nohook", 2, hook=False)
    local.via_proxy["autoscaling"].terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert victim not in local.members("nohook") and local.actions.pending() == []


def test_terminating_below_the_minimum_is_refused(local):
    victim, _ = local.group("minimum", 2, min_size=2)
    with pytest.raises(ClientError, match="violate group's min-size constraint"):
        local.via_proxy["autoscaling"].terminate_instance_in_auto_scaling_group(
            InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert local.actions.pending() == []


def test_scale_in_goes_through_the_hook(local):
    ids = local.group("scale", 3)
    local.via_proxy["autoscaling"].set_desired_capacity(AutoScalingGroupName="scale", DesiredCapacity=2)
    waiting = [i for i, s in local.members("scale").items() if s == "Terminating:Wait"]
    assert len(waiting) == 1 and local.desired("scale") == 2
    assert len(local.members("scale", via_proxy=False)) == 3  # moto keeps it until the hook ends
    [action] = local.actions.pending()
    assert action.cause == "scale-in" and action.decrement
    local.via_proxy["autoscaling"].complete_lifecycle_action(
        LifecycleHookName=HOOK_NAME, AutoScalingGroupName="scale", InstanceId=waiting[0],
        LifecycleActionResult="ABANDON")
    assert local.hooks.advance() == waiting
    assert set(local.members("scale", via_proxy=False)) == set(ids) - set(waiting)
    assert local.desired("scale", via_proxy=False) == 2


def test_signal_resource_is_recorded_and_unknown_targets_refused(local):
    local.direct["cloudformation"].create_stack(StackName="st", TemplateBody=(
        '{"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}'))
    cfn = local.via_proxy["cloudformation"]
    cfn.signal_resource(StackName="st", LogicalResourceId="Bucket", UniqueId="i-caller", Status="SUCCESS")
    for stack, resource in (("st", "Nothing"), ("no-such-stack", "Bucket")):
        with pytest.raises(ClientError) as refused:
            cfn.signal_resource(StackName=stack, LogicalResourceId=resource, UniqueId="i-x", Status="SUCCESS")
        assert refused.value.response["Error"]["Code"] == "ValidationError"
    [signalled] = read_signals(local.tmp)
    assert {k: v for k, v in signalled.items() if k != "time"} == {
        "stack": "st", "resource": "Bucket", "unique_id": "i-caller", "status": "SUCCESS", "caller": "i-caller"}


def test_a_hook_timeout_aws_would_refuse_exits_2_before_anything_starts(tmp_path):
    done = run_cli("sim", "up", "--hook-timeout", "10", "--state-dir", str(tmp_path / "sim"), timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "etcd.py: error: --hook-timeout: must be 30 to 7200 seconds, as AWS allows (got 10)"
    assert not (tmp_path / "sim").exists()


# The simulated stack: hook timeout 30 s (AWS's minimum), so that the dead agent's scenario stays short.

@pytest.fixture(scope="module")
def hooked(tmp_path_factory):
    sim = Sim(tmp_path_factory.mktemp("hooked"))
    try:
        # GRACE_PERIOD 10 s: the leader removes a terminating member after it; the agents' own leave takes ~3 s.
        done = sim.cli("up", "--detach", "--hook-timeout", "30", "--grace-period", "10", "--agent-env",
                       "LOOP_INTERVAL=1", "--timeout", "120", timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        yield sim
    finally:
        sim.down()


def terminating(sim: Sim, instance_id: str) -> bool:
    """The proxy's DescribeAutoScalingInstances (what the agents see) shows the instance in Terminating:Wait."""
    config = botocore.config.Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
    client = boto3.client("autoscaling", endpoint_url=sim.state["agent_aws_endpoint"], region_name=REGION,
                          config=config, **aws.CREDENTIALS)
    found = client.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return bool(found) and found[0]["LifecycleState"] == "Terminating:Wait"


def graceful(sim: Sim, instance_id: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "etcd.py"), "sim", "terminate", "--graceful", instance_id,
                             "--state-dir", sim.state_dir, "--timeout", "90"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def completions(sim: Sim, instance_id: str) -> int:
    return sum(1 for _, caller, op in sim.aws_calls() if caller == instance_id
               and op == "autoscaling:CompleteLifecycleAction")


def member_names_of(sim: Sim) -> set[str]:
    return {m["name"] for m in sim.members()}


def removals(sim: Sim, member_hex: str) -> bool:
    return any(f"housekeeping: removed member {member_hex}" in sim.agent_log(i) for i in sim.state["instances"])


# Extended (`make test-all`), for the suite's length: in `make test`, test_cluster.py's graceful termination of
# the leader goes through the same hook and checks the completion, and its hard termination the vanishing.
@pytest.mark.extended  # test_cluster.py: the leader's graceful termination, completed through the hook
def test_graceful_termination_waits_for_the_agent_to_leave_and_complete(hooked):
    victim = hooked.non_leader()["id"]
    member = int({m["name"]: m["ID"] for m in hooked.members()}[victim])
    cli = graceful(hooked, victim)
    try:
        wait_until(lambda: terminating(hooked, victim), 20, f"{victim} in Terminating:Wait", interval=0.1)
        out, err = cli.communicate(timeout=100)
    finally:
        cli.kill()
    assert cli.returncode == 0, out + err
    assert f"terminated {victim} after its lifecycle action: completed (CONTINUE)" in out
    assert completions(hooked, victim) >= 1
    assert f"removed this instance's member {member:x}" in hooked.agent_log(victim)
    assert victim not in member_names_of(hooked)
    hooked.wait_healthy(60)
    assert not removals(hooked, f"{member:x}")  # it left by itself: the leader removed nothing


@pytest.mark.extended  # test_cluster.py: the hard termination vanishes at once, with no lifecycle action
def test_plain_terminate_vanishes_at_once_without_the_hook(hooked):
    victim = hooked.non_leader()["id"]
    pid = hooked.agent_pid(victim)
    done = hooked.cli("terminate", victim)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: not state.pid_alive(pid), 3, "the agent to vanish", interval=0.1)
    assert completions(hooked, victim) == 0
    assert victim not in {o["instance"] for o in outcomes(hooked.state_dir)}
    hooked.wait_healthy(60)


@pytest.mark.soak  # the hook's 30 s heartbeat timeout waited out; make test: the proxy's timeout against moto above
def test_a_dead_agent_is_terminated_after_the_heartbeat_timeout(hooked, stopped_group):
    victim = hooked.non_leader()["id"]
    member = int({m["name"]: m["ID"] for m in hooked.members()}[victim])
    pgid = hooked.agent_pid(victim)
    # Stopped first, so that the supervisor cannot restart it (as Docker would) before its target lifecycle
    # state turns Terminated; then killed, agent and etcd: nothing on the machine can complete the action.
    os.killpg(pgid, signal.SIGSTOP)
    stopped_group.append(pgid)
    started = time.monotonic()
    cli = graceful(hooked, victim)
    try:
        wait_until(lambda: terminating(hooked, victim), 20, f"{victim} in Terminating:Wait", interval=0.2)
        os.killpg(pgid, signal.SIGKILL)
        out, err = cli.communicate(timeout=100)
    finally:
        cli.kill()
    assert cli.returncode == 0, out + err
    assert "after its lifecycle action: heartbeat timeout (DefaultResult CONTINUE)" in out
    assert time.monotonic() - started >= 29
    assert completions(hooked, victim) == 0
    wait_until(lambda: removals(hooked, f"{member:x}"), 60, "the leader to remove the dead member")
    hooked.wait_healthy(60)


def test_scale_in_takes_the_oldest_instances_through_the_hook(hooked):
    ec2 = hooked.aws("ec2")
    launched = {i["InstanceId"]: i["LaunchTime"] for r in ec2.describe_instances(
        InstanceIds=list(hooked.state["instances"]))["Reservations"] for i in r["Instances"]}
    survivor = max(launched, key=lambda i: (launched[i], i))  # the default policy's oldest go first
    since = time.time()
    done = hooked.cli("scale", "1", "--timeout", "90", timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    ended = [o for o in outcomes(hooked.state_dir) if o["ended"] >= since]
    assert sorted(o["instance"] for o in ended) == sorted(set(launched) - {survivor})
    assert {(o["cause"], o["outcome"]) for o in ended} == {("scale-in", "completed (CONTINUE)")}
    assert member_names_of(hooked) == {survivor}
    assert all(completions(hooked, o["instance"]) >= 1 for o in ended)
