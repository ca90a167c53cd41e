"""The local AWS: a moto server on loopback, the network around the stack, and the stack itself."""

from __future__ import annotations

import fcntl
import functools
import os
import socket
import subprocess
import sys
import time

import boto3
import botocore.config
import requests

REGION = "eu-central-1"
VPC_CIDR = "127.0.0.0/16"
_LOCK_DIR = "/tmp/etcd-appliance-sim-subnets"
TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "..", "cloudformation", "etcd-cluster.yaml")
MULTIREGION_TEMPLATE = os.path.join(os.path.dirname(TEMPLATE), "etcd-cluster-multiregion.yaml")
ZONE_NAME = "sim.internal."  # each simulator has its own moto: the same name never clashes
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def claim_subnet() -> tuple[int, object]:
    """Claim a free loopback subnet ``127.0.<n>.0/24`` for this simulator.

    Returns (n, lock file); the claim lasts while the lock file stays open (and
    ends with the process), so simulators side by side never share addresses.

    Raises:
        RuntimeError: all 254 subnets are taken.
    """
    os.makedirs(_LOCK_DIR, exist_ok=True)
    for n in range(1, 255):
        lock = open(os.path.join(_LOCK_DIR, f"127.0.{n}.lock"), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        if _subnet_in_use(n):  # left over by a simulator killed without cleaning up
            lock.close()
            continue
        return n, lock
    raise RuntimeError("no free loopback subnet 127.0.1-254.0/24 for the simulator")


def _subnet_in_use(n: int) -> bool:
    for host in range(4, 8):
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((f"127.0.{n}.{host}", 2379)) == 0:
                return True
    return False


def start_moto(port: int, log_path: str, preexec=None, env: dict | None = None) -> subprocess.Popen:
    """Start ``moto_server`` on 127.0.0.1:port and wait (at most 30 s) until it answers.

    ``env``: more environment for moto, e.g. ``MOTO_AMIS_PATH`` (the images it offers).

    Raises:
        RuntimeError: it exited or did not answer in time.
    """
    with open(log_path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=preexec, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with code {proc.returncode}; see {log_path}")
        try:
            requests.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"moto server did not answer on port {port} within 30 s; see {log_path}")


@functools.lru_cache(maxsize=16)
def clients(endpoint: str, region: str = REGION):
    """boto3 clients (ec2, autoscaling, route53, cloudformation, s3) for the local AWS, with timeouts.

    Cached per (endpoint, region): callers poll every fraction of a second, and boto3
    clients are thread-safe and cheap to reuse but not to build.
    """
    config = botocore.config.Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})
    session = boto3.session.Session(region_name=region, **CREDENTIALS)
    return {name: session.client(name, endpoint_url=endpoint, config=config)
            for name in ("ec2", "autoscaling", "route53", "cloudformation", "s3")}


def create_bucket(aws: dict, name: str, region: str = REGION) -> str:
    """Create the simulator's snapshot bucket (the operator's, on AWS: stacks never own it); returns its name."""
    aws["s3"].create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return name


def create_zone(aws: dict, stack: str) -> tuple[str, str]:
    """Create the simulator's hosted zone (Route53 is global: one for every region); returns (id, name)."""
    zone = aws["route53"].create_hosted_zone(Name=ZONE_NAME, CallerReference=f"{stack}-{time.time()}")
    return zone["HostedZone"]["Id"].split("/")[-1], ZONE_NAME


def deploy_stack(aws: dict, subnet_n: int, stack: str, instances: int, grace_period: float,
                 zone: tuple[str, str], region: str = REGION, active_regions: tuple[str, ...] = (),
                 dns_service_name: str = "", snapshot_bucket: str = "") -> dict:
    """Create a region's network (VPC 127.0.0.0/16, subnet 127.0.<n>.0/24) and deploy the template there.

    Args:
        aws: :func:`clients` of ``region``. zone: (id, name) of the hosted zone.
        active_regions: every region of a cluster across regions: the multiregion
            template is deployed, with this ActiveRegions; () for the single-region one.
        dns_service_name: the template's DnsServiceName (regional clusters linked by the mirror).
        snapshot_bucket: the template's SnapshotBucket.

    Returns the facts the simulator keeps: stack, vpc, subnet, hosted zone id and name, ASG name,
    security group id, instance count.

    Raises:
        RuntimeError: the stack did not reach CREATE_COMPLETE.
    """
    ec2 = aws["ec2"]
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"127.0.{subnet_n}.0/24",
                               AvailabilityZone=f"{region}a")["Subnet"]["SubnetId"]
    facts = {"stack": stack, "vpc": vpc, "subnet": subnet, "subnet_cidr": f"127.0.{subnet_n}.0/24",
             "hosted_zone_id": zone[0], "hosted_zone": zone[1], "dns_service_name": dns_service_name,
             "snapshot_bucket": snapshot_bucket}
    return {**facts, **_apply_stack(aws, "create", stack, facts, instances, grace_period, active_regions)}


def update_stack(aws: dict, stack: str, facts: dict, grace_period: float, active_regions: tuple[str, ...]) -> dict:
    """Update a region's stack (as :func:`deploy_stack` made it) to ``active_regions``.

    The InstanceCount stays ``facts["instance_count"]``: moto replaces the whole group (every
    instance) when a stack update changes its sizes; ``Supervisor._scale`` changes them.

    Returns ``facts`` with the new ASG name, security group id and instance count.

    Raises:
        RuntimeError: the stack did not reach UPDATE_COMPLETE.
    """
    updated = {**facts, **_apply_stack(aws, "update", stack, facts, facts["instance_count"], grace_period,
                                       active_regions)}
    # CloudFormation moves the group to the launch template's new version (the template says
    # Version: !GetAtt LaunchTemplate.LatestVersionNumber); moto leaves it on the old one, whose
    # security group moto has replaced, and the group could launch nothing. Do what AWS does; and
    # since moto launches a group's instances from the template's default version whatever the
    # group names, make the new version the default too.
    autoscaling = aws["autoscaling"]
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[updated["asg"]])["AutoScalingGroups"][0]
    template_id = group["LaunchTemplate"]["LaunchTemplateId"]
    latest = aws["ec2"].describe_launch_templates(LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    aws["ec2"].modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(latest["LatestVersionNumber"]))
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=updated["asg"],
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": str(latest["LatestVersionNumber"])})
    return updated


def _apply_stack(aws: dict, verb: str, stack: str, facts: dict, instances: int, grace_period: float,
                 active_regions: tuple[str, ...]) -> dict:
    with open(MULTIREGION_TEMPLATE if active_regions else TEMPLATE) as f:
        template = f.read()
    parameters = {"VpcId": facts["vpc"], "SubnetIds": facts["subnet"], "HostedZone": facts["hosted_zone"],
                  "DockerImage": "etcd-appliance:sim", "InstanceCount": str(instances),
                  "ClientCidr": "127.0.0.0/8", "GracePeriodSeconds": str(int(grace_period)),
                  "SnapshotBucket": facts.get("snapshot_bucket", "")}
    if active_regions:
        parameters["ActiveRegions"] = ",".join(active_regions)
    if facts.get("dns_service_name"):
        parameters["DnsServiceName"] = facts["dns_service_name"]
    cfn = aws["cloudformation"]
    getattr(cfn, f"{verb}_stack")(
        StackName=stack, TemplateBody=template, Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    if description["StackStatus"] != f"{verb.upper()}_COMPLETE":
        raise RuntimeError(f"stack {stack} is {description['StackStatus']}: "
                           f"{description.get('StackStatusReason', '')}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    return {"asg": outputs["AutoScalingGroupName"], "security_group": outputs["SecurityGroupId"],
            "instance_count": instances}


def stack_regions(sim_state: dict) -> dict[str, dict]:
    """Region -> that region's facts (vpc, subnet, asg, security_group, instance_count) of a running
    simulator; its first region is ``sim_state["region"]``."""
    return sim_state["regions"]


def stack_instances(sim_state: dict) -> list[dict]:
    """The instances of the stack in every region, as :func:`group_instances` gives them."""
    return [inst for region, facts in stack_regions(sim_state).items()
            for inst in group_instances(clients(sim_state["aws_endpoint"], region), facts["asg"], region)]


def group_instances(aws: dict, asg: str, region: str = REGION) -> list[dict]:
    """The group's instances with private IPs: [{id, private_ip, public_ip (None without one), lifecycle_state,
    availability_zone, region}]."""
    groups = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[asg])["AutoScalingGroups"]
    members = groups[0]["Instances"] if groups else []
    if not members:
        return []
    ips = {}
    pages = aws["ec2"].get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-id", "Values": [m["InstanceId"] for m in members]}])
    for page in pages:
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                if inst["State"]["Name"] not in ("shutting-down", "terminated"):
                    ips[inst["InstanceId"]] = (inst.get("PrivateIpAddress"), inst.get("PublicIpAddress"))
    return [{"id": m["InstanceId"], "private_ip": ips[m["InstanceId"]][0], "public_ip": ips[m["InstanceId"]][1],
             "lifecycle_state": m["LifecycleState"], "availability_zone": m["AvailabilityZone"], "region": region}
            for m in members if m["InstanceId"] in ips]
