"""Both templates deployed through CloudFormation into a real moto server over HTTP, with every optional part on
(MonitoringCidr, AlarmTopicArn naming a moto SNS topic, SessionManagerAccess, TLS) and with the defaults.

What moto 5.2.5 models is checked against the template as ``cfn_resolve`` renders it: the stack completes, the
conditional resources are there exactly when their condition holds, the security group's rules, the role's
policy and the launch template's UserData as moto resolved them, and the outputs. What it does not model, said
here so that nobody reads more into a green run: it runs no UserData (tests/integration/test_user_data.py runs it
against stubs), it waits for no signal (CreationPolicy and UpdatePolicy are ignored), it does not create the
group's LifecycleHookSpecificationList hook or MetricsCollection (the simulator puts its own hook with
PutLifecycleHook), it warns "not supported" for AWS::CloudWatch::Alarm and lists the alarms without ids, and it
ignores the role's ManagedPolicyArns. Where moto may start modelling one of those, the test accepts its absence or
the template's values, nothing else.
"""

from __future__ import annotations

import ast
import base64

import boto3
import botocore.config
import pytest

from appliance.sim import aws
from tests.integration.cfn_resolve import kept, rendered_user_data, resolve
from tests.integration.conftest import policy_statements
from tests.integration.test_cloudformation import MULTIREGION, TEMPLATE, load

pytestmark = pytest.mark.timeout(120)
ACCOUNT = "123456789012"  # moto's default account
REGIONS = "eu-central-1,eu-west-1"
# Resource types moto 5.2.5's CloudFormation skips with a warning ("not supported by moto's CloudFormation").
UNMODELLED = {"AWS::EC2::SecurityGroupEgress", "AWS::CloudWatch::Alarm"}


@pytest.fixture(scope="module")
def local_aws(tmp_path_factory):
    """boto3 clients of a moto server on 127.0.0.1 with a VPC, a subnet and an SNS topic: (clients, network)."""
    port = aws.free_port()
    proc = aws.start_moto(port, str(tmp_path_factory.mktemp("moto") / "moto.log"))
    try:
        session = boto3.session.Session(region_name=aws.REGION, **aws.CREDENTIALS)
        config = botocore.config.Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 2})
        clients = {name: session.client(name, endpoint_url=f"http://127.0.0.1:{port}", config=config)
                   for name in ("cloudformation", "ec2", "autoscaling", "iam", "sns", "cloudwatch")}
        vpc = clients["ec2"].create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = clients["ec2"].create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24",
                                              AvailabilityZone=f"{aws.REGION}a")["Subnet"]["SubnetId"]
        topic = clients["sns"].create_topic(Name="etcd-alarms")["TopicArn"]
        yield clients, {"VpcId": vpc, "SubnetIds": subnet, "topic": topic}
    finally:
        proc.kill()
        proc.wait(10)


def deploy(clients: dict, path, name: str, parameters: dict[str, str]) -> dict:
    """Create the stack; returns its description (StackStatus, StackId, Outputs)."""
    clients["cloudformation"].create_stack(
        StackName=name, TemplateBody=path.read_text(), Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    return clients["cloudformation"].describe_stacks(StackName=name)["Stacks"][0]


def without_none(node):
    """``node`` without the None entries of its lists, at any depth."""
    if isinstance(node, dict):
        return {k: without_none(v) for k, v in node.items()}
    if isinstance(node, list):
        return [without_none(v) for v in node if v is not None]
    return node


SHAPES = {
    "everything": lambda topic: {"MonitoringCidr": "10.20.0.0/24", "AlarmTopicArn": topic,
                                 "SessionManagerAccess": "true", "TlsDirectory": "/etc/etcd-tls",
                                 "DnsServiceName": "config"},
    "defaults": lambda topic: {},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_the_stack_deploys_and_moto_resolves_it_as_the_template_says(local_aws, path, shape):
    clients, network = local_aws
    name = f"etcd-{'multi' if path == MULTIREGION else 'single'}-{shape}"
    parameters = {"VpcId": network["VpcId"], "SubnetIds": network["SubnetIds"], "HostedZone": "example.org.",
                  "DockerImage": "registry.example.org/etcd-appliance:3.5.21-abc1234", "ClientCidr": "10.0.0.0/16",
                  **SHAPES[shape](network["topic"]), **({"ActiveRegions": REGIONS} if path == MULTIREGION else {})}
    stack = deploy(clients, path, name, parameters)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    template = load(path)
    as_deployed = {**parameters, "AWS::StackName": name, "AWS::StackId": stack["StackId"],
                   "AWS::AccountId": ACCOUNT, "AWS::Region": aws.REGION}
    summaries = clients["cloudformation"].list_stack_resources(StackName=name)["StackResourceSummaries"]
    # Exactly the resources whose condition holds (moto lists those it skips or does not model without an id).
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in summaries), summaries
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries if r["LogicalResourceId"]}
    assert set(physical) == {n for n, r in kept(template, parameters).items() if r["Type"] not in UNMODELLED}

    # The outputs, with the names the leader publishes.
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    wanted = {k: v["Value"] for k, v in resolve(template, template["Outputs"], as_deployed).items()}
    assert outputs["AutoScalingGroupName"] == physical["AutoScalingGroup"]
    assert outputs["SecurityGroupId"] == physical["SecurityGroup"]
    assert {k: v for k, v in outputs.items() if k not in ("AutoScalingGroupName", "SecurityGroupId")} == {
        k: v for k, v in wanted.items() if k not in ("AutoScalingGroupName", "SecurityGroupId")}
    assert outputs["DiscoveryDomain"] == f"{name}.example.org."

    # The UserData moto resolved is the one tests/integration/test_user_data.py runs and lints.
    version = clients["ec2"].describe_launch_template_versions(
        LaunchTemplateId=physical["LaunchTemplate"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert base64.b64decode(version["UserData"]).decode() == rendered_user_data(template, as_deployed)

    # The security group: the monitoring network reaches 2378 and 2381 only, and only when given.
    group = clients["ec2"].describe_security_groups(GroupIds=[physical["SecurityGroup"]])["SecurityGroups"][0]
    scraped = {(p["FromPort"], p["ToPort"]) for p in group["IpPermissions"] for r in p.get("IpRanges", [])
               if r["CidrIp"] == "10.20.0.0/24"}
    assert scraped == ({(2378, 2378), (2381, 2381)} if "MonitoringCidr" in parameters else set())
    assert all(r["CidrIp"] != "0.0.0.0/0" for p in group["IpPermissions"] for r in p.get("IpRanges", []))

    # The role's policy as moto resolved it: the template's, the stack's own id and account filled in.
    role = physical["Role"]
    policy = clients["iam"].get_role_policy(RoleName=role, PolicyName="etcd-appliance-discovery")["PolicyDocument"]
    if isinstance(policy, str):  # moto keeps a policy made by CloudFormation as the Python text of the dict
        policy = ast.literal_eval(policy)
    policy = without_none(policy)  # moto leaves AWS::NoValue in a list as None
    assert policy["Statement"] == resolve(template, policy_statements(template), as_deployed)
    signal = next(s for s in policy["Statement"] if s["Action"] == "cloudformation:SignalResource")
    assert signal["Resource"] == stack["StackId"]
    metric = [s for s in policy["Statement"] if s["Action"] == "cloudwatch:PutMetricData"]
    assert len(metric) == (1 if "AlarmTopicArn" in parameters else 0)

    # The group, and what moto may or may not model of it.
    asg = clients["autoscaling"].describe_auto_scaling_groups(
        AutoScalingGroupNames=[physical["AutoScalingGroup"]])["AutoScalingGroups"][0]
    count = int(template["Parameters"]["InstanceCount"]["Default"])
    assert (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]) == (count, count + 1, count)
    assert {"Key": "etcd-appliance:cluster", "Value": name} in [
        {"Key": t["Key"], "Value": t["Value"]} for t in asg["Tags"]]
    hooks = clients["autoscaling"].describe_lifecycle_hooks(AutoScalingGroupName=asg["AutoScalingGroupName"])
    assert [(h["LifecycleHookName"], h["LifecycleTransition"], h["HeartbeatTimeout"], h["DefaultResult"])
            for h in hooks["LifecycleHooks"]] in (
        [], [("etcd-appliance-leave", "autoscaling:EC2_INSTANCE_TERMINATING", 300, "CONTINUE")])
    alarms = clients["cloudwatch"].describe_alarms(AlarmNamePrefix=name)["MetricAlarms"]
    assert alarms == [] or {a["MetricName"] for a in alarms} == {
        r["Properties"]["MetricName"] for r in kept(template, parameters).values()
        if r["Type"] == "AWS::CloudWatch::Alarm"}
