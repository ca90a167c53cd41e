"""Telling CloudFormation that this instance is ready: SignalResource (the decision is
:mod:`appliance.rules.stack_signal`'s)."""

from __future__ import annotations

import re

import boto3
import botocore.exceptions

from appliance.adapters.aws.common import call, client_config, error_code
from appliance.model.errors import AwsPermissionError

ERRORS = (AwsPermissionError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
# CloudFormation's ValidationError for a stack or resource that waits for no signal ("… is in CREATE_COMPLETE state
# and can not be signaled"); its other ValidationErrors (no such stack, no such resource) are mistakes to report.
_NOT_WAITING = re.compile(r"can ?not be signal", re.IGNORECASE)


class StackSignal:
    """SUCCESS signals for ``resource`` (a logical id, e.g. AutoScalingGroup) of ``stack`` (a name or a stack id).

    Args:
        region: the stack's region (the instance's). timeout: seconds per call. session: the agent's boto3 session.
    """

    def __init__(self, stack: str, resource: str, region: str, timeout: float = 3.0,
                 session: boto3.session.Session | None = None):
        self.stack = stack
        self.resource = resource
        session = session or boto3.session.Session()
        self.client = session.client("cloudformation", region_name=region, config=client_config(timeout))

    def send(self, unique_id: str) -> bool:
        """Signal SUCCESS once for ``unique_id`` (the instance id). Returns True when CloudFormation took it, False
        when it answered that the stack waits for no signal (ValidationError "… can not be signaled": e.g. the stack
        is complete, as when an instance replaced outside an update signals): either way there is nothing more to
        send.

        Raises:
            ERRORS: AWS refused (AccessDenied, or a ValidationError naming another cause, such as a stack or
                logical id that does not exist) or did not answer.
        """
        try:
            call("cloudformation", self.client, "signal_resource", StackName=self.stack,
                 LogicalResourceId=self.resource, UniqueId=unique_id, Status="SUCCESS")
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ValidationError" and _NOT_WAITING.search(str(exc)):
                return False
            raise
        return True
