"""Answering the group's termination lifecycle hook for this instance: heartbeats, and the completion.

The decisions are :mod:`appliance.rules.termination_hook`'s; this module only talks to Auto Scaling. Both calls
take the instance id instead of the lifecycle action token, which the agent never sees (Auto Scaling API
reference, CompleteLifecycleAction and RecordLifecycleActionHeartbeat: InstanceId or LifecycleActionToken).
"""

from __future__ import annotations

from typing import Callable

import boto3
import botocore.exceptions

from appliance.adapters.aws.common import call, client_config, error_code
from appliance.model.errors import AwsPermissionError

# Everything these calls may raise; the lifecycle action is then as it was.
ERRORS = (AwsPermissionError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class NoPendingAction(Exception):
    """Auto Scaling holds no lifecycle action of this hook for this instance (already completed, timed out,
    or the instance is not being terminated through the hook)."""


class LifecycleActions:
    """The termination hook ``hook_name`` of this instance's group.

    Args:
        instance_id, region: this instance. hook_name: LIFECYCLE_HOOK_NAME. group_name: returns this instance's
            group name (the discovery's, cached; it may raise as an AWS call does). timeout: seconds per call.
        session: a boto3 session (the agent's counted one).
    """

    def __init__(self, instance_id: str, region: str, hook_name: str, group_name: Callable[[], str],
                 timeout: float = 3.0, session: boto3.session.Session | None = None):
        self.instance_id = instance_id
        self.hook_name = hook_name
        self.group_name = group_name
        session = session or boto3.session.Session()
        self.client = session.client("autoscaling", region_name=region, config=client_config(timeout))

    def _call(self, operation: str, **kwargs) -> None:
        try:
            call("autoscaling", self.client, operation, LifecycleHookName=self.hook_name,
                 AutoScalingGroupName=self.group_name(), InstanceId=self.instance_id, **kwargs)
        except botocore.exceptions.ClientError as exc:
            # AWS answers ValidationError "No active Lifecycle Action found with instance ID …" when none waits.
            if error_code(exc) == "ValidationError" and "no active lifecycle action" in str(exc).lower():
                raise NoPendingAction(str(exc)) from None
            raise

    def heartbeat(self) -> None:
        """RecordLifecycleActionHeartbeat: the hook's heartbeat timeout starts again.

        Raises:
            NoPendingAction: nothing waits for this instance. ERRORS: AWS refused or did not answer.
        """
        self._call("record_lifecycle_action_heartbeat")

    def complete(self) -> None:
        """CompleteLifecycleAction with CONTINUE: Auto Scaling goes on terminating the instance (for a
        termination, ABANDON would terminate it too; CONTINUE also lets any other hook run).

        Raises:
            NoPendingAction: nothing waits for this instance. ERRORS: AWS refused or did not answer.
        """
        self._call("complete_lifecycle_action", LifecycleActionResult="CONTINUE")
