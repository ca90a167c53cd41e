"""Telling CloudFormation that this instance is ready: SignalResource (the decision is
:mod:`appliance.rules.stack_signal`'s)."""

from __future__ import annotations

import boto3
import botocore.exceptions

from appliance.adapters.aws.common import call, client_config, error_code
from appliance.model.errors import AwsPermissionError

ERRORS = (AwsPermissionError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


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
        when it answered that the stack waits for no signal (ValidationError: e.g. the stack is complete, as when
        an instance replaced outside an update signals): either way there is nothing more to send.

        Raises:
            ERRORS: AWS refused (AccessDenied) or did not answer: worth another try.
        """
        try:
            call("cloudformation", self.client, "signal_resource", StackName=self.stack,
                 LogicalResourceId=self.resource, UniqueId=unique_id, Status="SUCCESS")
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "ValidationError":
                return False
            raise
        return True
