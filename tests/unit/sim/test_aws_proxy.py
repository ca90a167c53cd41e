"""The simulator's partial-listing fault removes exactly the named instance from an AWS answer."""

import botocore.session
from botocore.parsers import create_parser

from appliance.sim.aws_proxy import omit_instances

ASG_ANSWER = b"""<?xml version="1.0" encoding="UTF-8"?>
<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
<DescribeAutoScalingGroupsResult><AutoScalingGroups><member>
<AutoScalingGroupName>g</AutoScalingGroupName><MinSize>3</MinSize><MaxSize>4</MaxSize><DesiredCapacity>3</DesiredCapacity>
<DefaultCooldown>300</DefaultCooldown><AvailabilityZones><member>eu-central-1a</member></AvailabilityZones>
<HealthCheckType>EC2</HealthCheckType><CreatedTime>2026-01-01T00:00:00Z</CreatedTime>
<Instances>
<member><InstanceId>i-1</InstanceId><AvailabilityZone>eu-central-1a</AvailabilityZone><LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>
<member><InstanceId>i-2</InstanceId><AvailabilityZone>eu-central-1a</AvailabilityZone><LifecycleState>InService</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member>
</Instances></member></AutoScalingGroups></DescribeAutoScalingGroupsResult>
</DescribeAutoScalingGroupsResponse>"""


def _parse(body: bytes) -> dict:
    model = botocore.session.get_session().get_service_model("autoscaling")
    op = model.operation_model("DescribeAutoScalingGroups")
    return create_parser("query").parse({"body": body, "headers": {}, "status_code": 200}, op.output_shape)


def test_omit_instances_leaves_a_valid_answer_without_the_instance():
    before = _parse(ASG_ANSWER)["AutoScalingGroups"][0]["Instances"]
    after = _parse(omit_instances(ASG_ANSWER, {"i-2"}))["AutoScalingGroups"][0]["Instances"]
    assert [i["InstanceId"] for i in before] == ["i-1", "i-2"]
    assert [i["InstanceId"] for i in after] == ["i-1"]
