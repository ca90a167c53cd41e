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
    """boto3 clients (ec2, autoscaling, route53, cloudformation) for the local AWS, with timeouts.

    Cached per (endpoint, region): callers poll every fraction of a second, and boto3
    clients are thread-safe and cheap to reuse but not to build.
    """
    config = botocore.config.Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})
    session = boto3.session.Session(region_name=region, **CREDENTIALS)
    return {name: session.client(name, endpoint_url=endpoint, config=config)
            for name in ("ec2", "autoscaling", "route53", "cloudformation")}


def deploy_stack(aws: dict, subnet_n: int, stack: str, instances: int, grace_period: float) -> dict:
    """Create the network (VPC 127.0.0.0/16, subnet 127.0.<n>.0/24, hosted zone) and deploy the template.

    Returns the facts the simulator keeps: vpc, subnet, hosted zone id and name, ASG name.

    Raises:
        RuntimeError: the stack did not reach CREATE_COMPLETE.
    """
    ec2 = aws["ec2"]
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"127.0.{subnet_n}.0/24",
                               AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    zone_name = "sim.internal."  # each simulator has its own moto: the same name never clashes
    zone = aws["route53"].create_hosted_zone(Name=zone_name, CallerReference=f"{stack}-{time.time()}")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    with open(TEMPLATE) as f:
        template = f.read()
    parameters = {"VpcId": vpc, "SubnetIds": subnet, "HostedZone": zone_name,
                  "DockerImage": "etcd-appliance:sim", "InstanceCount": str(instances),
                  "ClientCidr": "127.0.0.0/8", "GracePeriodSeconds": str(int(grace_period))}
    cfn = aws["cloudformation"]
    cfn.create_stack(StackName=stack, TemplateBody=template, Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    description = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    if description["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {stack} is {description['StackStatus']}: "
                           f"{description.get('StackStatusReason', '')}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    return {"vpc": vpc, "subnet": subnet, "subnet_cidr": f"127.0.{subnet_n}.0/24",
            "hosted_zone_id": zone_id, "hosted_zone": zone_name, "asg": outputs["AutoScalingGroupName"]}


def group_instances(aws: dict, asg: str) -> list[dict]:
    """The group's instances with private IPs: [{id, private_ip, lifecycle_state, availability_zone}]."""
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
                    ips[inst["InstanceId"]] = inst.get("PrivateIpAddress")
    return [{"id": m["InstanceId"], "private_ip": ips.get(m["InstanceId"]),
             "lifecycle_state": m["LifecycleState"], "availability_zone": m["AvailabilityZone"]}
            for m in members if m["InstanceId"] in ips]
