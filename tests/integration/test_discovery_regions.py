"""Discovery across active regions (``ACTIVE_REGIONS``) against a real moto server, through the
simulator's AWS proxy (which injects a failing region).

Groups of the stack in eu-central-1 (this instance's) and eu-west-1 (found by its tag), none in
us-east-1; an untagged group in eu-west-1 that is someone else's.
"""

from __future__ import annotations

import boto3
import pytest

from appliance.adapters.aws.discovery import Discovery
from appliance.model.instances import CLUSTER_TAG
from appliance.sim import aws
from appliance.sim.aws_proxy import AwsProxy, write_faults

pytestmark = pytest.mark.timeout(120)

OWN, OTHER, EMPTY = "eu-central-1", "eu-west-1", "us-east-1"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """A moto server behind the simulator's AWS proxy; yields the proxy (its faults file is ``faults``)."""
    directory = tmp_path_factory.mktemp("regions")
    port = aws.free_port()
    moto = aws.start_moto(port, str(directory / "moto.log"))
    made = AwsProxy(f"http://127.0.0.1:{port}", str(directory / "faults.json"), str(directory / "calls.log"))
    made.faults = str(directory / "faults.json")
    try:
        yield made
    finally:
        made.close()
        moto.kill()
        moto.wait(10)


def client(proxy: AwsProxy, service: str, region: str):
    return boto3.session.Session(region_name=region, **aws.CREDENTIALS).client(service, endpoint_url=proxy.endpoint)


def make_group(proxy: AwsProxy, region: str, name: str, size: int, tagged: bool = True) -> list[str]:
    """An ASG of ``size`` instances in ``region``; returns their ids."""
    ec2, autoscaling = client(proxy, "ec2", region), client(proxy, "autoscaling", region)
    template = f"{name}-template"
    ec2.create_launch_template(LaunchTemplateName=template,
                               LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small"})
    tags = [{"Key": CLUSTER_TAG, "Value": "etcd", "PropagateAtLaunch": False}] if tagged else []
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": template},
                                          MinSize=size, MaxSize=size + 1, DesiredCapacity=size,
                                          AvailabilityZones=[f"{region}a"], Tags=tags)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return sorted(i["InstanceId"] for i in group["Instances"])


@pytest.fixture(scope="module")
def stacks(proxy):
    """The groups, made once: {region: instance ids} of the cluster's groups."""
    made = {OWN: make_group(proxy, OWN, "etcd-own", 2), OTHER: make_group(proxy, OTHER, "etcd-other", 2)}
    make_group(proxy, OTHER, "someone-else", 1, tagged=False)
    return made


@pytest.fixture
def discovery(proxy, stacks, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    write_faults(proxy.faults, [])
    session = boto3.session.Session(region_name=OWN, **aws.CREDENTIALS)
    return Discovery(stacks[OWN][0], OWN, timeout=5, session=session, cluster_name="etcd",
                     other_regions=(OWN, OTHER, EMPTY))


def test_the_listing_spans_every_active_region(discovery, stacks):
    listing = discovery.list()
    assert listing.complete, listing.problem
    assert {(i.instance_id, i.region) for i in listing.instances} == {
        (instance_id, region) for region, ids in stacks.items() for instance_id in ids}
    assert all(i.in_service and i.private_ip for i in listing.instances)


def test_a_region_that_fails_makes_the_whole_listing_incomplete(discovery, proxy):
    write_faults(proxy.faults, [{"operation": "DescribeAutoScalingGroups", "region": OTHER,
                                 "error": "ServiceUnavailable"}])
    listing = discovery.list()
    assert not listing.complete and "ServiceUnavailable" in listing.problem
    write_faults(proxy.faults, [{"operation": "DescribeInstances", "region": EMPTY, "error": "ServiceUnavailable"}])
    # us-east-1 has no group, so nothing is asked of its EC2: only a confirmation would fail there.
    assert discovery.list().complete
    assert not discovery.list(confirm=["i-0123456789abcdef0"]).complete


def test_a_member_s_instance_is_gone_only_if_no_region_runs_it(discovery, proxy):
    elsewhere = client(proxy, "ec2", OTHER).run_instances(ImageId="ami-12c6146b", MinCount=1,
                                                           MaxCount=1)["Instances"][0]["InstanceId"]
    listing = discovery.list(confirm=["i-0123456789abcdef0", elsewhere])
    assert listing.gone == {"i-0123456789abcdef0"}
    assert not listing.complete and f"{elsewhere} is running in EC2 but not listed" in listing.problem
    client(proxy, "ec2", OTHER).terminate_instances(InstanceIds=[elsewhere])
    listing = discovery.list(confirm=["i-0123456789abcdef0", elsewhere])
    assert listing.complete and listing.gone == {"i-0123456789abcdef0", elsewhere}


def test_two_tagged_groups_in_a_region_make_the_listing_incomplete(discovery, proxy):
    make_group(proxy, EMPTY, "etcd-one", 0)
    make_group(proxy, EMPTY, "etcd-two", 0)
    try:
        listing = discovery.list()
        assert not listing.complete and f"2 groups in {EMPTY} are tagged {CLUSTER_TAG}=etcd" in listing.problem
    finally:  # us-east-1 stays without a group for the other tests
        for name in ("etcd-one", "etcd-two"):
            client(proxy, "autoscaling", EMPTY).delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)


def test_without_other_regions_only_the_own_group_is_listed(proxy, stacks, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    write_faults(proxy.faults, [{"operation": "*", "region": OTHER, "error": "ServiceUnavailable"}])
    session = boto3.session.Session(region_name=OWN, **aws.CREDENTIALS)
    listing = Discovery(stacks[OWN][0], OWN, timeout=5, session=session).list()
    assert listing.complete and {i.instance_id for i in listing.instances} == set(stacks[OWN])
