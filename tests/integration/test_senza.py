"""The senza definitions (single region, and one region of a cluster across regions): each kept equal to
its CloudFormation template, and deployed with the real ``senza create`` (stups-senza, from
``.venv-senza``) into a real moto server.

moto offers a Taupage image through ``MOTO_AMIS_PATH`` (images registered through the API get
the root device type "standard", and senza looks only for EBS-backed ones). ``--force`` skips
senza's check that the Docker image exists in its registry: there is no registry here.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import subprocess
import sys

import boto3
import pytest
import yaml
from cfnlint.decode import decode_str

from appliance.sim import aws
from tests.integration.conftest import REPO, policy_statements

pytestmark = pytest.mark.timeout(300)

TEMPLATE = REPO / "cloudformation" / "etcd-cluster.yaml"
DEFINITION = REPO / "cloudformation" / "senza" / "etcd-cluster.yaml"
MULTI_TEMPLATE = REPO / "cloudformation" / "etcd-cluster-multiregion.yaml"
MULTI_DEFINITION = REPO / "cloudformation" / "senza" / "etcd-cluster-multiregion.yaml"
PAIRS = [(TEMPLATE, DEFINITION), (MULTI_TEMPLATE, MULTI_DEFINITION)]
ACTIVE_REGIONS = "eu-central-1,eu-west-1"
ALARM_TOPIC = "arn:aws:sns:eu-central-1:123456789012:etcd-alarms"
SENZA = REPO / ".venv-senza" / "bin" / "senza"
TAUPAGE_AMI = "ami-0a1b2c3d4e5f60718"
IMAGE = "registry.local/team/etcd-appliance:3.5.1-p1"

# What the two files may differ in: where the network and the image come from, and the boot format.
NETWORK_AND_BOOT = {
    ("SecurityGroup", "VpcId"), ("LaunchTemplate", "ImageId"), ("LaunchTemplate", "UserData"),
    ("AutoScalingGroup", "VPCZoneIdentifier"),
}


def properties(resource: dict) -> dict:
    """A resource's properties, with the launch template's data flattened into them."""
    props = dict(resource.get("Properties", {}))
    props.update(props.pop("LaunchTemplateData", {}))
    return props


@pytest.mark.parametrize("template_path,definition_path", PAIRS, ids=["single-region", "multiregion"])
def test_the_definition_keeps_the_template_s_resources_policy_and_parameters(template_path, definition_path):
    template, _ = decode_str(template_path.read_text())  # short tags (!Ref …) become the long forms
    definition = yaml.safe_load(definition_path.read_text())
    assert set(definition["Resources"]) == set(template["Resources"])
    for name, resource in template["Resources"].items():
        ours = definition["Resources"][name]
        assert ours["Type"] == resource["Type"], name
        # Signals, rolling updates, the alarms' conditions and order: CloudFormation's attributes, kept as they are.
        for attribute in ("Condition", "DependsOn", "CreationPolicy", "UpdatePolicy"):
            assert ours.get(attribute) == resource.get(attribute), (name, attribute)
        theirs, mine = properties(resource), properties(ours)
        assert set(mine) == set(theirs), name
        for key in theirs:
            if (name, key) not in NETWORK_AND_BOOT:
                assert json.dumps(mine[key], sort_keys=True) == json.dumps(theirs[key], sort_keys=True), (name, key)
    for section in ("Conditions", "Rules", "Outputs"):
        assert json.dumps(definition[section], sort_keys=True) == json.dumps(template[section], sort_keys=True)
    assert definition["Mappings"]["GroupMaxSize"] == template["Mappings"]["GroupMaxSize"]
    senza_parameters = {k: v for p in definition["SenzaInfo"]["Parameters"] for k, v in p.items()}
    # The network and the image are senza's to find; every other parameter is the template's.
    assert set(senza_parameters) == set(template["Parameters"]) - {"VpcId", "SubnetIds", "ImageId"}
    for name, parameter in senza_parameters.items():
        for key in ("Default", "AllowedValues", "AllowedPattern"):
            if key in template["Parameters"][name]:
                assert str(parameter.get(key)) == str(template["Parameters"][name][key]), (name, key)


@pytest.fixture
def local_aws(tmp_path):
    """A moto server offering one EBS-backed image named Taupage-AMI-…; the environment senza needs."""
    if not SENZA.exists():
        pytest.fail(f"{SENZA} is missing: `make test` installs it (requirements-senza.txt)")
    images = tmp_path / "amis.json"
    images.write_text(json.dumps([{
        "ami_id": TAUPAGE_AMI, "name": "Taupage-AMI-20261121-120000", "description": "Taupage stand-in",
        "owner_id": "123456789012", "public": False, "virtualization_type": "hvm", "architecture": "x86_64",
        "state": "available", "platform": None, "image_type": "machine", "hypervisor": "xen",
        "root_device_name": "/dev/xvda", "root_device_type": "ebs", "sriov": "simple", "tags": {}}]))
    port = aws.free_port()
    proc = aws.start_moto(port, str(tmp_path / "moto.log"), env={"MOTO_AMIS_PATH": str(images)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_DEFAULT_REGION=aws.REGION,
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", HOME=str(tmp_path))
    yield env
    proc.kill()
    proc.wait(10)


def senza(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SENZA), *args], capture_output=True, text=True, timeout=180, env=env, cwd=REPO)


@pytest.mark.parametrize("template_path,definition_path", PAIRS, ids=["single-region", "multiregion"])
def test_senza_create_deploys_the_stack(local_aws, template_path, definition_path):
    multiregion = definition_path == MULTI_DEFINITION
    done = senza(local_aws, "create", "--force", "--region", aws.REGION, str(definition_path), "1", "sim.internal.",
                 IMAGE, "10.0.0.0/16", *([ACTIVE_REGIONS] if multiregion else []), "DnsServiceName=config",
                 "SnapshotBucket=ops-etcd-backups", f"AlarmTopicArn={ALARM_TOPIC}")
    assert done.returncode == 0, done.stdout + done.stderr
    session = boto3.session.Session(region_name=aws.REGION, aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    client = {name: session.client(name, endpoint_url=local_aws["AWS_ENDPOINT_URL"])
              for name in ("cloudformation", "ec2", "autoscaling", "iam")}
    stack = client["cloudformation"].describe_stacks(StackName="etcd-1")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    summaries = client["cloudformation"].list_stack_resources(StackName="etcd-1")["StackResourceSummaries"]
    template, _ = decode_str(template_path.read_text())
    body = client["cloudformation"].get_template(StackName="etcd-1")["TemplateBody"]
    deployed = json.loads(body) if isinstance(body, str) else body
    assert {k: r["Type"] for k, r in deployed["Resources"].items()} == {
        k: r["Type"] for k, r in template["Resources"].items()}
    # moto lists the SecurityGroupEgress with an empty logical id and type, so the count is what is compared.
    assert len(summaries) == len(template["Resources"])
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in summaries), summaries
    resources = {r["LogicalResourceId"]: r for r in summaries}

    # The instances: the Taupage image found by senza, IMDSv2 only, an encrypted volume, the settings.
    version = client["ec2"].describe_launch_template_versions(
        LaunchTemplateId=resources["LaunchTemplate"]["PhysicalResourceId"])["LaunchTemplateVersions"][0]
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == TAUPAGE_AMI
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(d["Ebs"]["Encrypted"] for d in data["BlockDeviceMappings"])
    boot = base64.b64decode(data["UserData"]).decode()
    assert boot.startswith("#taupage-ami-config\n")
    config = yaml.safe_load(boot)
    assert config["source"] == IMAGE and config["networking"] == "host"
    assert config["environment"] == {"HOSTED_ZONE": "sim.internal.", "CLUSTER_NAME": "etcd-1",
                                     "GRACE_PERIOD": "300", "DNS_SERVICE_NAME": "config",
                                     "SNAPSHOT_BUCKET": "ops-etcd-backups",
                                     # etcd's own flags: the multiregion defaults suit round trips between regions.
                                     "ETCD_HEARTBEAT_INTERVAL": "250" if multiregion else "100",
                                     "ETCD_ELECTION_TIMEOUT": "2500" if multiregion else "1000",
                                     "ETCD_QUOTA_BACKEND_BYTES": "2147483648",
                                     # No TlsDirectory: the files empty, which the agent reads as plain HTTP.
                                     "CLIENT_CA_FILE": "", "CLIENT_CERT_FILE": "", "CLIENT_KEY_FILE": "",
                                     # The agent leaves through the hook and signals the stack.
                                     "LIFECYCLE_HOOK_NAME": "etcd-appliance-leave", "CFN_STACK_NAME": "etcd-1",
                                     "CFN_SIGNAL_RESOURCE": "AutoScalingGroup",
                                     # With AlarmTopicArn, the leader's data point (in every active region).
                                     "CLOUDWATCH_NAMESPACE": "EtcdAppliance",
                                     **({"ACTIVE_REGIONS": ACTIVE_REGIONS, "ADVERTISE_ADDRESS": "private"}
                                        if multiregion else {})}

    # The group: InstanceCount members (one more during a rotation), in the default VPC's subnets.
    group = client["autoscaling"].describe_auto_scaling_groups(
        AutoScalingGroupNames=[resources["AutoScalingGroup"]["PhysicalResourceId"]])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == ((2, 3, 2) if multiregion else (3, 4, 3))
    vpc = client["ec2"].describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = {s["SubnetId"] for s in client["ec2"].describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]}
    assert set(group["VPCZoneIdentifier"].split(",")) == subnets

    # The security group: clients on 2379 from ClientCidr only; 2378-2381 among members.
    sg = client["ec2"].describe_security_groups(GroupIds=[resources["SecurityGroup"]["PhysicalResourceId"]])
    rules = sg["SecurityGroups"][0]["IpPermissions"]
    assert sg["SecurityGroups"][0]["VpcId"] == vpc
    assert {(r["FromPort"], r["ToPort"], tuple(i["CidrIp"] for i in r["IpRanges"])) for r in rules} >= {
        (2379, 2379, ("10.0.0.0/16",))}
    assert all(i["CidrIp"] != "0.0.0.0/0" for r in rules for i in r["IpRanges"])
    # Across regions, the agents find each region's group by its tag.
    tags = {t["Key"]: t["Value"] for t in sg["SecurityGroups"][0].get("Tags", [])}
    assert (tags.get("etcd-appliance:cluster") == "etcd-1") == multiregion

    # The role's policy: the template's, with the stack name and the service name filled in.
    role = resources["Role"]["PhysicalResourceId"]
    policy = client["iam"].get_role_policy(RoleName=role, PolicyName="etcd-appliance-discovery")["PolicyDocument"]
    if isinstance(policy, str):  # moto keeps a policy made by CloudFormation as the Python text of the dict
        policy = ast.literal_eval(policy)
    by_action = {str(st["Action"]): st for st in policy["Statement"]}
    names = by_action["route53:ChangeResourceRecordSets"]["Condition"]["ForAllValues:StringLike"][
        "route53:ChangeResourceRecordSetsNormalizedRecordNames"]
    # The single-region stack's leader may keep the write record too (regional clusters linked by the mirror).
    assert names == ["etcd-1.*", "*.etcd-1.*", "_etcd-client._tcp.config.*", "_etcd-client-ssl._tcp.config.*"] + (
        ["_etcd-client-rw._tcp.config.*", "_etcd-client-ssl-rw._tcp.config.*"]
        if "multiregion" not in str(template_path) else [])
    assert [s["Action"] for s in policy["Statement"]] == [
        (s["Fn::If"][1] if "Fn::If" in s else s)["Action"] for s in policy_statements(template)]
    # The snapshots: the bucket's keys under the stack's name, nothing else of it.
    assert by_action["s3:ListBucket"]["Resource"] == "arn:aws:s3:::ops-etcd-backups"
    assert by_action["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": "etcd-1/*"}}
    objects = next(st for st in policy["Statement"] if "s3:PutObject" in st["Action"])
    assert objects["Resource"] == "arn:aws:s3:::ops-etcd-backups/etcd-1/*"


@pytest.mark.parametrize("definition_path", [DEFINITION, MULTI_DEFINITION], ids=["single-region", "multiregion"])
def test_the_template_senza_generates_passes_cfn_lint(local_aws, tmp_path, definition_path):
    extra = [ACTIVE_REGIONS] if definition_path == MULTI_DEFINITION else []
    done = senza(local_aws, "print", "--force", "--region", aws.REGION, str(definition_path), "1", "sim.internal.",
                 IMAGE, "10.0.0.0/16", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = tmp_path / "senza-etcd-1.json"
    printed.write_text(done.stdout)
    assert "LaunchTemplate" in json.loads(done.stdout)["Resources"]
    # W7001 (a mapping defined but not used): senza always adds the mappings Senza, LoadBalancerSubnets
    # and LoadBalancerInternalSubnets, which this stack has no use for.
    cfn_lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    lint = subprocess.run([cfn_lint, "--ignore-checks", "W7001", "--", str(printed)], capture_output=True, text=True,
                          timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
