"""Every AWS API call of a counted session's clients is reported once, with its outcome: success, the AWS
error code, or the exception's name when AWS did not answer. The answers come through botocore's own
``before-send`` hook (what botocore would have parsed from the wire); the unanswered call really goes to
a closed port."""

import boto3
import botocore.config
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSResponse

from appliance.adapters.aws.calls import counted_session

EMPTY_GROUPS = (b"<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups/>"
                b"</DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>")
DENIED = (b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error>"
          b"<RequestId>r</RequestId></ErrorResponse>")
EC2_UNAVAILABLE = (b"<Response><Errors><Error><Code>ServiceUnavailable</Code><Message>busy</Message></Error>"
                   b"</Errors><RequestID>r</RequestID></Response>")
NO_BODY = b""


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_):
        yield self.data


def _session(seen: list) -> boto3.session.Session:
    plain = boto3.session.Session(region_name="eu-central-1", aws_access_key_id="testing",
                                  aws_secret_access_key="testing")
    return counted_session(lambda *call: seen.append(call), plain)


def _client(session, service: str):
    # A closed port: a call that no hook answers fails fast without an answer.
    return session.client(service, endpoint_url="http://127.0.0.1:9",
                          config=botocore.config.Config(retries={"max_attempts": 0}, connect_timeout=1,
                                                        read_timeout=1))


@pytest.mark.parametrize("service,operation,kwargs,answer,expected", [
    pytest.param("autoscaling", "describe_auto_scaling_groups", {}, (200, EMPTY_GROUPS),
                 ("autoscaling", "DescribeAutoScalingGroups", ""), id="success"),
    pytest.param("autoscaling", "describe_auto_scaling_groups", {}, (403, DENIED),
                 ("autoscaling", "DescribeAutoScalingGroups", "AccessDenied"), id="aws-error-code"),
    pytest.param("ec2", "describe_instances", {}, (503, EC2_UNAVAILABLE),
                 ("ec2", "DescribeInstances", "ServiceUnavailable"), id="ec2-error-code"),
    pytest.param("s3", "head_object", {"Bucket": "b", "Key": "etcd/cluster.json"}, (404, NO_BODY),
                 ("s3", "HeadObject", "404"), id="s3-head-without-body"),
    pytest.param("ec2", "describe_instances", {}, None, ("ec2", "DescribeInstances", "EndpointConnectionError"),
                 id="no-answer"),
])
def test_each_call_is_reported_once(service, operation, kwargs, answer, expected):
    seen: list = []
    client = _client(_session(seen), service)
    if answer is not None:
        status, body = answer
        client.meta.events.register("before-send", lambda request, **_: AWSResponse(request.url, status, {},
                                                                                     _Body(body)))
    try:
        getattr(client, operation)(**kwargs)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
        pass
    assert seen == [expected]


def test_registering_twice_counts_once_and_earlier_clients_are_not_counted():
    seen: list = []
    plain = boto3.session.Session(region_name="eu-central-1", aws_access_key_id="testing",
                                  aws_secret_access_key="testing")
    before = _client(plain, "ec2")
    session = counted_session(lambda *call: seen.append(call), counted_session(lambda *call: seen.append(call),
                                                                                plain))
    for client in (before, _client(session, "ec2")):
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            client.describe_instances()
    assert seen == [("ec2", "DescribeInstances", "EndpointConnectionError")]
