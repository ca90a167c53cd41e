"""The templates pass cfn-lint and keep their security promises; the multiregion one differs from the
single-region one only where a cluster across regions needs it."""

import os
import subprocess
import sys

import pytest
from cfnlint.decode import decode_str

from tests.integration.conftest import REPO, policy_statements

TEMPLATE = REPO / "cloudformation" / "etcd-cluster.yaml"
MULTIREGION = REPO / "cloudformation" / "etcd-cluster-multiregion.yaml"


def load(path):
    template, _ = decode_str(path.read_text())
    return template


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_cfn_lint_passes(path):
    cfn_lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    done = subprocess.run([cfn_lint, str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_imdsv2_required_and_no_world_ingress(path):
    resources = load(path)["Resources"]
    data = resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(d["Ebs"]["Encrypted"] for d in data["BlockDeviceMappings"])
    ingress = list(resources["SecurityGroup"]["Properties"]["SecurityGroupIngress"])
    ingress += [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert ingress and all(rule.get("CidrIp") != "0.0.0.0/0" for rule in ingress)


def test_instance_counts():
    assert load(TEMPLATE)["Parameters"]["InstanceCount"]["AllowedValues"] == ["1", "3", "5", "7"]
    # Per region in a stretched cluster: 2 + 2 + 1 is the smallest that survives a region's loss.
    assert load(MULTIREGION)["Parameters"]["InstanceCount"]["AllowedValues"] == ["1", "2", "3"]


def record_names(template: dict) -> list:
    """The record names the role may change (its ChangeResourceRecordSets condition)."""
    statement = next(s for s in policy_statements(template) if s["Action"] == "route53:ChangeResourceRecordSets")
    return statement["Condition"]["ForAllValues:StringLike"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"]


def test_the_multiregion_template_adds_only_what_a_cluster_across_regions_needs():
    single, multi = load(TEMPLATE), load(MULTIREGION)
    assert set(multi["Parameters"]) - set(single["Parameters"]) == {"ActiveRegions", "AdvertiseAddress"}
    assert set(multi["Resources"]) == set(single["Resources"])
    different = {name for name in single["Resources"] if single["Resources"][name] != multi["Resources"][name]}
    assert different == {"SecurityGroup", "Role", "LaunchTemplate"}
    # The group carries the tag the agents find it by, and nothing else changed in it.
    group = dict(multi["Resources"]["SecurityGroup"]["Properties"])
    assert group.pop("Tags") == [{"Key": "etcd-appliance:cluster", "Value": {"Ref": "AWS::StackName"}}]
    assert group == single["Resources"]["SecurityGroup"]["Properties"]
    # The single-region stack's leader may also keep the write record (MIRROR_PREFIX, which a cluster across
    # regions does not take); otherwise the record names are the same.
    single_names, multi_names = (record_names(t) for t in (single, multi))
    assert [n for n in single_names if n not in multi_names] == [
        {"Fn::If": ["HasDnsServiceName", {"Fn::Sub": "_etcd-client-rw._tcp.${DnsServiceName}.*"},
                    {"Ref": "AWS::NoValue"}]}]
    assert all(n in single_names for n in multi_names)
    # The role may change rules only in groups carrying that tag, and describe groups.
    added = [s for s in policy_statements(multi) if s not in policy_statements(single)
             and s["Action"] != "route53:ChangeResourceRecordSets"]
    rules = next(s for s in added if "ec2:AuthorizeSecurityGroupIngress" in s["Action"])
    assert sorted(rules["Action"]) == ["ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
                                       "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress"]
    assert rules["Condition"] == {"StringEquals": {"aws:ResourceTag/etcd-appliance:cluster":
                                                   {"Ref": "AWS::StackName"}}}
    describe = next(s for s in added if s is not rules)
    assert set(describe["Action"]) - set(policy_statements(single)[0]["Action"]) == {"ec2:DescribeSecurityGroups"}
    assert len(added) == 2
    user_data = multi["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    assert "-e ACTIVE_REGIONS=${ActiveRegions}" in user_data["Fn::Base64"]["Fn::Sub"]
    assert "-e ADVERTISE_ADDRESS=${AdvertiseAddress}" in user_data["Fn::Base64"]["Fn::Sub"]
