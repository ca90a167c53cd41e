"""The calls the agent makes to answer the termination hook, signal CloudFormation and report the leader to
CloudWatch: what each sends (read off the request botocore puts on the wire) and how each of AWS's answers comes
back. Answers come through botocore's ``before-send`` hook, as in test_aws_calls.py; the simulator's tests send
the same calls to its AWS for real."""

from urllib.parse import parse_qs

import boto3
import botocore.config
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSResponse

from appliance.adapters.aws.cloudwatch import LeaderMetric
from appliance.adapters.aws.lifecycle_actions import LifecycleActions, NoPendingAction
from appliance.adapters.aws.stack_signal import StackSignal
from appliance.model.errors import AwsPermissionError


def error(code: str, message: str) -> bytes:
    return (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>r</RequestId></ErrorResponse>").encode()


OK = {"autoscaling": b"<CompleteLifecycleActionResponse><CompleteLifecycleActionResult/>"
                     b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></CompleteLifecycleActionResponse>",
      "cloudformation": b"<SignalResourceResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                        b"</SignalResourceResponse>",
      "monitoring": b"<PutMetricDataResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                    b"</PutMetricDataResponse>"}
NO_ACTION = error("ValidationError", "No active Lifecycle Action found with instance ID i-1")
NOT_WAITING = error("ValidationError", "Stack arn:aws:cloudformation:… is in CREATE_COMPLETE state and cannot be "
                                       "signaled")
DENIED = error("AccessDenied", "not allowed")


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_):
        yield self.data


def session() -> boto3.session.Session:
    return boto3.session.Session(region_name="eu-central-1", aws_access_key_id="testing",
                                 aws_secret_access_key="testing")


def answering(adapter, status: int, body: bytes | None = None, sent: list | None = None) -> list[dict]:
    """Answer every call of ``adapter.client`` with (status, body); returns the requests' parameters."""
    sent = [] if sent is None else sent
    # The adapter's own client, less its retries: one answer, one call.
    adapter.client = client = session().client(adapter.client.meta.service_model.service_name,
                                               config=botocore.config.Config(retries={"max_attempts": 0}))
    client.meta.events.register("before-send", lambda request, **_: (
        sent.append({k: v[0] for k, v in parse_qs(request.body if isinstance(request.body, str)
                                                   else request.body.decode()).items()}),
        AWSResponse(request.url, status, {}, _Body(body if body is not None else
                                                   OK[client.meta.service_model.endpoint_prefix])))[1])
    return sent


def actions() -> LifecycleActions:
    return LifecycleActions("i-1", "eu-central-1", "etcd-appliance-leave", lambda: "etcd-asg", session=session())


def test_completion_and_heartbeat_name_the_hook_the_group_and_the_instance():
    adapter = actions()
    sent = answering(adapter, 200)
    adapter.complete()
    answering(adapter, 200, b"<RecordLifecycleActionHeartbeatResponse><RecordLifecycleActionHeartbeatResult/>"
                            b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                            b"</RecordLifecycleActionHeartbeatResponse>", sent)
    adapter.heartbeat()
    common = {"LifecycleHookName": "etcd-appliance-leave", "AutoScalingGroupName": "etcd-asg", "InstanceId": "i-1"}
    assert sent[0] == {"Action": "CompleteLifecycleAction", "Version": "2011-01-01", **common,
                       "LifecycleActionResult": "CONTINUE"}
    assert sent[1] == {"Action": "RecordLifecycleActionHeartbeat", "Version": "2011-01-01", **common}


@pytest.mark.parametrize("status, body, raised", [
    (400, NO_ACTION, NoPendingAction),
    (403, DENIED, AwsPermissionError),
    (400, error("ValidationError", "Group etcd-asg not found"), botocore.exceptions.ClientError),
    (503, error("ServiceUnavailable", "busy"), botocore.exceptions.ClientError),
])
def test_what_auto_scaling_answers(status, body, raised):
    adapter = actions()
    answering(adapter, status, body)
    with pytest.raises(raised):
        adapter.complete()
    with pytest.raises(raised):
        adapter.heartbeat()


def test_the_signal_says_success_for_the_instance():
    adapter = StackSignal("etcd", "AutoScalingGroup", "eu-central-1", session=session())
    sent = answering(adapter, 200)
    assert adapter.send("i-1") is True
    assert sent == [{"Action": "SignalResource", "Version": "2010-05-15", "StackName": "etcd",
                     "LogicalResourceId": "AutoScalingGroup", "UniqueId": "i-1", "Status": "SUCCESS"}]


@pytest.mark.parametrize("status, body, result", [
    (400, NOT_WAITING, False), (403, DENIED, AwsPermissionError),
    (400, error("Throttling", "slow"), botocore.exceptions.ClientError),
    # A wrong CFN_STACK_NAME or CFN_SIGNAL_RESOURCE is a mistake to report, not "nothing waits".
    (400, error("ValidationError", "Stack with id etcd does not exist"), botocore.exceptions.ClientError),
    (400, error("ValidationError", "Resource AutoScaling does not exist"), botocore.exceptions.ClientError),
])
def test_what_cloudformation_answers(status, body, result):
    adapter = StackSignal("etcd", "AutoScalingGroup", "eu-central-1", session=session())
    answering(adapter, status, body)
    if result is False:
        assert adapter.send("i-1") is False
    else:
        with pytest.raises(result):
            adapter.send("i-1")


def test_the_leader_metric_is_one_count_in_the_namespace_for_the_cluster(moto_server):
    """CloudWatch speaks CBOR now: this one goes to a real moto server and is read back from it."""
    plain = session()
    regions = ("eu-central-1", "eu-west-1")
    adapter = LeaderMetric("EtcdAppliance", "etcd-prod", regions, session=plain)
    adapter.clients = {r: plain.client("cloudwatch", region_name=r, endpoint_url=moto_server) for r in regions}
    adapter.put()
    for client in adapter.clients.values():  # one cluster across regions: a point in each region's CloudWatch
        assert client.list_metrics(Namespace="EtcdAppliance")["Metrics"] == [{
            "Namespace": "EtcdAppliance", "MetricName": "HealthyLeader",
            "Dimensions": [{"Name": "ClusterName", "Value": "etcd-prod"}]}]


def test_one_region_failing_does_not_keep_the_others_from_their_point(moto_server):
    plain = session()
    adapter = LeaderMetric("EtcdAppliance", "etcd-prod", ("eu-north-1", "eu-west-1"), session=plain)
    dead = botocore.config.Config(retries={"max_attempts": 0}, connect_timeout=1, read_timeout=1)
    adapter.clients = {"eu-north-1": plain.client("cloudwatch", region_name="eu-north-1",
                                                  endpoint_url="http://127.0.0.1:9", config=dead),
                       "eu-west-1": plain.client("cloudwatch", region_name="eu-west-1", endpoint_url=moto_server)}
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        adapter.put()
    assert adapter.clients["eu-west-1"].list_metrics(Namespace="EtcdAppliance")["Metrics"]


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
