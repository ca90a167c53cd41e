"""Termination lifecycle hooks honoured as Auto Scaling does, for the terminations Auto Scaling makes.

moto (5.2.5) stores lifecycle hooks but never waits for them, and has no CompleteLifecycleAction or
RecordLifecycleActionHeartbeat. :class:`TerminationHooks` is an :class:`~appliance.sim.aws_proxy.Extension`
of the simulator's AWS proxy that plays them, for a group with a hook on ``autoscaling:EC2_INSTANCE_TERMINATING``:

* TerminateInstanceInAutoScalingGroup, and a scale-in (SetDesiredCapacity, or UpdateAutoScalingGroup lowering
  the capacity below the group's instances; the instances chosen by :mod:`.termination_policy`), put the
  instance in ``Terminating:Wait`` (:mod:`.lifecycle_hooks`) instead of terminating it: the proxy's
  DescribeAutoScalingGroups and DescribeAutoScalingInstances answers show that state (and the group's new
  DesiredCapacity), the instance's metadata says target lifecycle state ``Terminated``, its agent gets no signal;
* it answers CompleteLifecycleAction and RecordLifecycleActionHeartbeat itself;
* :meth:`TerminationHooks.advance`, called by the supervisor's loop, terminates in moto each instance whose
  actions ended (TerminateInstanceInAutoScalingGroup with the ShouldDecrementDesiredCapacity asked for; a
  scale-in decrements); the supervisor then makes the machine vanish as for any termination.

EC2's TerminateInstances is no Auto Scaling termination: it never waits for a hook, here as on AWS.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable

import botocore.exceptions

from appliance.sim import aws, query_xml, termination_policy
from appliance.sim.aws_proxy import Call, Forward, Reply
from appliance.sim.lifecycle_hooks import Hook, NoPendingAction, PendingActions
from appliance.sim.metadata_server import write_lifecycle

log = logging.getLogger("sim")

HOOK_NAME = "etcd-appliance-leave"  # the templates' hook, and the agents' LIFECYCLE_HOOK_NAME
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
NS = query_xml.AUTOSCALING_NS


def put_termination_hook(autoscaling, group: str, heartbeat_timeout: int) -> None:
    """Give ``group`` the appliance's termination hook (PutLifecycleHook creates or replaces it)."""
    autoscaling.put_lifecycle_hook(LifecycleHookName=HOOK_NAME, AutoScalingGroupName=group,
                                   LifecycleTransition=TERMINATING, HeartbeatTimeout=heartbeat_timeout,
                                   DefaultResult="CONTINUE")


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TerminationHooks:
    """The proxy extension and the driver of pending actions.

    Args:
        upstream: moto's endpoint (the extension's own calls go there, never through the proxy).
        actions: the shared pending actions.
        lifecycle_file: instance id -> the file its metadata server reads the target lifecycle state from.
        clock: seconds since the epoch (tests pass their own).
    """

    def __init__(self, upstream: str, actions: PendingActions, lifecycle_file: Callable[[str], str],
                 clock: Callable[[], float] = time.time):
        self.upstream = upstream
        self.actions = actions
        self.lifecycle_file = lifecycle_file
        self.clock = clock

    def _autoscaling(self, region: str):
        return aws.clients(self.upstream, region or aws.REGION)["autoscaling"]

    def intercept(self, call: Call) -> Reply | Forward | None:
        handler = {"TerminateInstanceInAutoScalingGroup": self._terminate, "SetDesiredCapacity": self._capacity,
                   "UpdateAutoScalingGroup": self._capacity, "CompleteLifecycleAction": self._complete,
                   "RecordLifecycleActionHeartbeat": self._heartbeat}.get(call.operation)
        return handler(call) if call.service == "autoscaling" and handler else None

    def rewrite(self, call: Call, body: bytes) -> bytes:
        if call.service != "autoscaling" or call.operation not in ("DescribeAutoScalingGroups",
                                                                   "DescribeAutoScalingInstances"):
            return body
        pending = self.actions.pending()
        if not pending:
            return body
        states = {a.instance_id: self.actions.state_of(a.instance_id) or "" for a in pending}
        lower = {a.group: self.actions.decrements(a.group) for a in pending}
        return query_xml.rewrite_groups(body, states, lower)

    def hooks_of(self, region: str, group: str) -> list[Hook]:
        """The group's termination hooks, as moto stores them."""
        found = self._autoscaling(region).describe_lifecycle_hooks(AutoScalingGroupName=group)["LifecycleHooks"]
        return [Hook(h["LifecycleHookName"], float(h["HeartbeatTimeout"]), h.get("DefaultResult", "ABANDON"))
                for h in found if h["LifecycleTransition"] == TERMINATING]

    def _group(self, region: str, name: str) -> dict | None:
        groups = self._autoscaling(region).describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        return (groups["AutoScalingGroups"] or [None])[0]

    def _wait(self, instance_id: str, group: str, region: str, hooks: list[Hook], decrement: bool,
              cause: str) -> None:
        if self.actions.begin(instance_id, group, region, hooks, decrement, cause, self.clock()):
            write_lifecycle(self.lifecycle_file(instance_id), "Terminated")
            log.info("%s: %s Terminating:Wait for hook %s", cause, instance_id, ", ".join(h.name for h in hooks))

    def _terminate(self, call: Call) -> Reply | None:
        """TerminateInstanceInAutoScalingGroup of an instance whose group has a termination hook: Terminating:Wait
        and AWS's in-progress Activity; a decrement that would take the group below MinSize is refused."""
        instance_id = call.params.get("InstanceId", "")
        decrement = call.params.get("ShouldDecrementDesiredCapacity", "false").lower() == "true"
        found = self._autoscaling(call.region).describe_auto_scaling_instances(
            InstanceIds=[instance_id])["AutoScalingInstances"] if instance_id else []
        hooks = self.hooks_of(call.region, found[0]["AutoScalingGroupName"]) if found else []
        if not hooks:
            return None  # no hook (or no such instance): moto terminates at once, or answers its error
        name = found[0]["AutoScalingGroupName"]
        group = self._group(call.region, name)
        desired = group["DesiredCapacity"] - self.actions.decrements(name)
        already = self.actions.state_of(instance_id) is not None
        if decrement and not already and desired - 1 < group["MinSize"]:
            # AWS's answer to a termination that would take the group below its minimum.
            return Reply(*query_xml.error("ValidationError", (
                f"Currently, desired-capacity is {desired} and min-size is {group['MinSize']}. Terminating "
                "instance without replacement will violate group's min-size constraint. Either set "
                "shouldDecrementDesiredCapacity flag to false or lower group's min-size."), NS))
        self._wait(instance_id, name, call.region, hooks, decrement, "TerminateInstanceInAutoScalingGroup")
        now = self.clock()
        cause = (f"At {_iso(now)[:19]}Z instance {instance_id} taken out of service in response to a user request"
                 + (f", shrinking the capacity from {desired} to {desired - 1}." if decrement and not already
                    else "."))
        return Reply(200, query_xml.answer("TerminateInstanceInAutoScalingGroup", NS,
                                           query_xml.activity(name, instance_id, _iso(now), cause)))

    def _capacity(self, call: Call) -> Forward | None:
        """SetDesiredCapacity or UpdateAutoScalingGroup of a hooked group: the instances beyond the new capacity
        go to Terminating:Wait, and moto is asked for a capacity that keeps them until their hooks end."""
        name = call.params.get("AutoScalingGroupName", "")
        group = self._group(call.region, name) if name else None
        if group is None or not self.hooks_of(call.region, name):
            return None
        current = group["DesiredCapacity"] - self.actions.decrements(name)
        asked = int(call.params.get("DesiredCapacity", current))
        if "DesiredCapacity" not in call.params:  # AWS keeps the capacity within new bounds
            asked = min(asked, int(call.params.get("MaxSize", asked)))
            asked = max(asked, int(call.params.get("MinSize", asked)))
        staying = [i for i in group["Instances"] if self.actions.state_of(i["InstanceId"]) is None]
        if len(staying) > asked:
            hooks = self.hooks_of(call.region, name)
            for victim in termination_policy.choose(self._candidates(call.region, staying), len(staying) - asked):
                self._wait(victim, name, call.region, hooks, True, "scale-in")
        # moto must keep the terminating instances until their hooks end: each lowers the capacity as it goes.
        return Forward({**call.params, "DesiredCapacity": str(asked + self.actions.decrements(name))})

    def _candidates(self, region: str, members: list[dict]) -> list[termination_policy.Candidate]:
        ec2 = aws.clients(self.upstream, region or aws.REGION)["ec2"]
        launched = {i["InstanceId"]: i["LaunchTime"].timestamp()
                    for r in ec2.describe_instances(InstanceIds=[m["InstanceId"] for m in members])["Reservations"]
                    for i in r["Instances"]}
        return [termination_policy.Candidate(
            m["InstanceId"], m["AvailabilityZone"], launched.get(m["InstanceId"], 0.0),
            None if m.get("LaunchConfigurationName")
            else termination_policy.template_version(m.get("LaunchTemplate", {}).get("Version")),
            m.get("ProtectedFromScaleIn", False)) for m in members]

    def _complete(self, call: Call) -> Reply:
        result = call.params.get("LifecycleActionResult", "")
        if result not in ("CONTINUE", "ABANDON"):
            return Reply(*query_xml.error("ValidationError", f"Invalid LifecycleActionResult {result!r}: "
                                          "must be CONTINUE or ABANDON", NS))
        return self._act(call, lambda *ids: self.actions.complete(*ids, result, self.clock()))

    def _heartbeat(self, call: Call) -> Reply:
        return self._act(call, lambda *ids: self.actions.heartbeat(*ids, self.clock()))

    def _act(self, call: Call, act: Callable) -> Reply:
        p = call.params
        if not p.get("InstanceId") and not p.get("LifecycleActionToken"):
            return Reply(*query_xml.error("ValidationError", "Either InstanceId or LifecycleActionToken "
                                          "must be specified", NS))
        try:
            act(p.get("AutoScalingGroupName", ""), p.get("LifecycleHookName", ""), p.get("InstanceId"),
                p.get("LifecycleActionToken"))
        except NoPendingAction as exc:
            return Reply(*query_xml.error("ValidationError", str(exc), NS))
        return Reply(200, query_xml.answer(call.operation, NS))

    def advance(self) -> list[str]:
        """Terminate in moto every instance whose lifecycle actions ended; forget those that vanished otherwise
        (EC2's TerminateInstances). Returns the instances that went. A failing moto call is retried at the
        next call."""
        now, gone = self.clock(), []
        for going in self.actions.due(now):
            try:
                if self._in_a_group(going.region, going.instance_id):
                    self._autoscaling(going.region).terminate_instance_in_auto_scaling_group(
                        InstanceId=going.instance_id, ShouldDecrementDesiredCapacity=going.decrement)
                    outcome = going.outcome
                else:
                    outcome = "vanished before its lifecycle actions ended"
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                log.warning("terminating %s after its lifecycle actions: %s; retrying", going.instance_id, exc)
                continue
            self.actions.finish(going.instance_id, outcome, now)
            log.info("%s Terminating:Proceed after its lifecycle action: %s", going.instance_id, outcome)
            gone.append(going.instance_id)
        for action in self.actions.pending():
            if action.instance_id not in gone and not self._in_a_group(action.region, action.instance_id):
                self.actions.finish(action.instance_id, "terminated outside Auto Scaling while waiting", now)
                gone.append(action.instance_id)
        return gone

    def _in_a_group(self, region: str, instance_id: str) -> bool:
        """The instance still runs in a group (moto lists an instance EC2 terminated until it replaces it)."""
        listed = self._autoscaling(region).describe_auto_scaling_instances(
            InstanceIds=[instance_id])["AutoScalingInstances"]
        if not listed:
            return False
        ec2 = aws.clients(self.upstream, region or aws.REGION)["ec2"]
        found = [i for r in ec2.describe_instances(InstanceIds=[instance_id])["Reservations"] for i in r["Instances"]]
        return bool(found) and found[0]["State"]["Name"] not in ("shutting-down", "terminated")
