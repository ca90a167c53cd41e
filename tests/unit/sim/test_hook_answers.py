"""The simulator's own Auto Scaling and CloudFormation answers parse as AWS's do: botocore's query parser on
the XML (appliance/sim/query_xml.py), and a real boto3 client against the AWS proxy answering
CompleteLifecycleAction and RecordLifecycleActionHeartbeat (appliance/sim/autoscaling_hooks.py; those two never
reach moto, so no moto runs here)."""

import time

import boto3
import botocore.config
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from appliance.sim import query_xml
from appliance.sim.autoscaling_hooks import TerminationHooks
from appliance.sim.aws_proxy import AwsProxy
from appliance.sim.lifecycle_hooks import Hook, PendingActions
from tests.unit.sim.test_aws_proxy import ASG_ANSWER

SESSION = botocore.session.get_session()


def parse(service: str, operation: str, body: bytes, status: int = 200) -> dict:
    shape = SESSION.get_service_model(service).operation_model(operation).output_shape
    return create_parser("query").parse({"body": body, "headers": {}, "status_code": status}, shape)


def test_terminate_answer_carries_the_activity():
    body = query_xml.answer("TerminateInstanceInAutoScalingGroup", query_xml.AUTOSCALING_NS,
                            query_xml.activity("g", "i-1", "2026-12-01T10:00:00.000000Z", "At … a user request."))
    activity = parse("autoscaling", "TerminateInstanceInAutoScalingGroup", body)["Activity"]
    assert (activity["AutoScalingGroupName"], activity["StatusCode"], activity["Progress"]) == ("g", "InProgress", 0)
    assert activity["Description"] == "Terminating EC2 instance: i-1"
    assert activity["StartTime"].year == 2026


@pytest.mark.parametrize("service,operation,namespace,result", [
    ("autoscaling", "CompleteLifecycleAction", query_xml.AUTOSCALING_NS, ""),
    ("autoscaling", "RecordLifecycleActionHeartbeat", query_xml.AUTOSCALING_NS, ""),
    ("cloudformation", "SignalResource", query_xml.CLOUDFORMATION_NS, None),
])
def test_empty_answers_parse_with_their_request_id(service, operation, namespace, result):
    parsed = parse(service, operation, query_xml.answer(operation, namespace, result))
    assert set(parsed) == {"ResponseMetadata"} and parsed["ResponseMetadata"]["RequestId"]


def test_an_error_parses_with_its_code_and_message():
    status, body = query_xml.error("ValidationError", "No active Lifecycle Action found with instance ID i-1 <&>",
                                   query_xml.AUTOSCALING_NS)
    parsed = parse("autoscaling", "CompleteLifecycleAction", body, status)
    assert status == 400
    assert parsed["Error"]["Code"] == "ValidationError"
    assert parsed["Error"]["Message"] == "No active Lifecycle Action found with instance ID i-1 <&>"


def test_rewritten_listing_shows_terminating_wait_and_the_lowered_capacity():
    body = query_xml.rewrite_groups(ASG_ANSWER, {"i-2": "Terminating:Wait"}, {"g": 1})
    [group] = parse("autoscaling", "DescribeAutoScalingGroups", body)["AutoScalingGroups"]
    assert group["DesiredCapacity"] == 2
    assert {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]} == {
        "i-1": "InService", "i-2": "Terminating:Wait"}


@pytest.fixture
def proxy(tmp_path):
    """The AWS proxy with the hook extension; its upstream is a closed port: nothing may be forwarded."""
    actions = PendingActions(str(tmp_path))
    hooks = TerminationHooks("http://127.0.0.1:9", actions, lambda i: str(tmp_path / i / "target-lifecycle-state"))
    server = AwsProxy("http://127.0.0.1:9", str(tmp_path / "faults.json"), str(tmp_path / "calls.log"),
                      extensions=[hooks])
    config = botocore.config.Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
    client = boto3.client("autoscaling", endpoint_url=server.endpoint, region_name="eu-central-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing", config=config)
    yield actions, client
    server.close()


def test_a_boto3_client_completes_a_pending_action_through_the_proxy(proxy):
    actions, client = proxy
    actions.begin("i-1", "g", "eu-central-1", [Hook("leave", 60.0)], False, "test", time.time())
    answer = client.record_lifecycle_action_heartbeat(LifecycleHookName="leave", AutoScalingGroupName="g",
                                                      InstanceId="i-1")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    client.complete_lifecycle_action(LifecycleHookName="leave", AutoScalingGroupName="g", InstanceId="i-1",
                                     LifecycleActionResult="CONTINUE")
    assert [g.outcome for g in actions.due(time.time())] == ["completed (CONTINUE)"]


@pytest.mark.parametrize("call", [
    pytest.param(lambda c: c.complete_lifecycle_action(LifecycleHookName="leave", AutoScalingGroupName="g",
                                                       InstanceId="i-9", LifecycleActionResult="CONTINUE"),
                 id="complete-unknown-instance"),
    pytest.param(lambda c: c.record_lifecycle_action_heartbeat(LifecycleHookName="leave", AutoScalingGroupName="g",
                                                               InstanceId="i-9"), id="heartbeat-unknown-instance"),
    pytest.param(lambda c: c.complete_lifecycle_action(LifecycleHookName="leave", AutoScalingGroupName="g",
                                                       InstanceId="i-1", LifecycleActionResult="MAYBE"),
                 id="complete-bad-result"),
])
def test_the_proxy_answers_validation_error_where_nothing_is_pending(proxy, call):
    actions, client = proxy
    actions.begin("i-1", "g", "eu-central-1", [Hook("leave", 60.0)], False, "test", time.time())
    with pytest.raises(ClientError) as raised:
        call(client)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert actions.due(time.time()) == []  # still waiting
