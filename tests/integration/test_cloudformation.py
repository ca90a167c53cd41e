"""The templates pass cfn-lint and checkov and keep their security promises; the multiregion one differs from the
single-region one only where a cluster across regions needs it."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

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
        {"Fn::If": ["HasDnsServiceName", {"Fn::Sub": f"_etcd-client-rw{ssl}._tcp.${{DnsServiceName}}.*"},
                    {"Ref": "AWS::NoValue"}]} for ssl in ("", "-ssl")]
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
    script = multi["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"][
        "Fn::Sub"][0]
    assert "-e ACTIVE_REGIONS=${ActiveRegions}" in script
    assert "-e ADVERTISE_ADDRESS=${AdvertiseAddress}" in script


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_tls_directory_gives_the_agent_its_certificate_files(path):
    """TlsDirectory: mounted read-only, its three files as CLIENT_*_FILE; empty: no option at all."""
    template = load(path)
    script, variables = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"][
        "Fn::Base64"]["Fn::Sub"]
    assert "-v /var/lib/etcd-appliance:/data ${TlsOptions}" in script
    condition, with_tls, without = variables["TlsOptions"]["Fn::If"]
    assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "TlsDirectory"}, ""]}]}
    assert with_tls["Fn::Sub"].split() == [
        "-v", "${TlsDirectory}:${TlsDirectory}:ro", "-e", "CLIENT_CA_FILE=${TlsDirectory}/ca.pem",
        "-e", "CLIENT_CERT_FILE=${TlsDirectory}/instance.pem", "-e", "CLIENT_KEY_FILE=${TlsDirectory}/instance-key.pem"]
    assert without == ""
    # With TLS the leader publishes the -ssl names: the role may change those too.
    names = json.dumps(record_names(template))
    assert "_etcd-client-ssl._tcp.${DnsServiceName}.*" in names


CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
# checkov's IAM policy checks, which it runs only on policies whose statements it can read.
IAM_POLICY_CHECKS = {"CKV_AWS_107", "CKV_AWS_108", "CKV_AWS_109", "CKV_AWS_110", "CKV_AWS_111"}
# Both templates and both senza definitions (checkov reads their Resources as CloudFormation's).
CHECKED = sorted((REPO / "cloudformation").rglob("*.yaml"))


def if_resolved(node):
    """The template as deployed with every condition true: each Fn::If replaced by its first value, and
    AWS::NoValue removed."""
    if isinstance(node, dict):
        if list(node) == ["Fn::If"]:
            return if_resolved(node["Fn::If"][1])
        return {k: v for k, v in ((k, if_resolved(v)) for k, v in node.items()) if v != {"Ref": "AWS::NoValue"}}
    if isinstance(node, list):
        return [v for v in (if_resolved(v) for v in node) if v != {"Ref": "AWS::NoValue"}]
    return node


@pytest.fixture(scope="module")
def checkov(tmp_path_factory) -> dict:
    """checkov's CloudFormation checks, in one run (each costs seconds): path -> its checks (``passed_checks``,
    ``failed_checks``, ``skipped_checks``), for every file in ``CHECKED`` and for each template with every
    condition true (``resolved[path]``)."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make test` installs it (requirements-checkov.txt)")
    resolved = {}
    for path in (TEMPLATE, MULTIREGION):
        resolved[path] = tmp_path_factory.mktemp("resolved") / path.with_suffix(".json").name
        resolved[path].write_text(json.dumps(if_resolved(load(path))))
    files = [*CHECKED, *resolved.values()]
    # --skip-download: no call to Prisma Cloud for guidelines or custom policies; the checks are checkov's own.
    done = subprocess.run([str(CHECKOV), "--framework", "cloudformation", "--output", "json", "--skip-download",
                           *(a for f in files for a in ("--file", str(f)))], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    report = json.loads(done.stdout)
    assert report["check_type"] == "cloudformation" and report["summary"]["parsing_errors"] == 0, done.stderr
    assert done.returncode == (1 if report["summary"]["failed"] else 0), done.stderr
    by_file = {Path(f): {kind: [] for kind in ("passed_checks", "failed_checks", "skipped_checks")} for f in files}
    for kind, checks in report["results"].items():
        for check in checks if kind in ("passed_checks", "failed_checks", "skipped_checks") else []:
            by_file[Path(check["file_abs_path"])][kind].append(check)
    return {"checks": by_file, "resolved": resolved}


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: str(p.relative_to(REPO / "cloudformation")))
def test_checkov_fails_no_check_and_every_skip_says_why(checkov, path):
    results = checkov["checks"][path]
    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    # The launch template's IMDSv2 and public address, the group's rules, the role's trust are among the checks.
    assert {"CKV_AWS_79", "CKV_AWS_88", "CKV_AWS_23", "CKV_AWS_24", "CKV_AWS_60"} <= {
        c["check_id"] for c in results["passed_checks"]}
    assert all(c["suppress_comment"].strip() for c in results["skipped_checks"])
    # Every skip written in the file names a check and says why.
    for name, resource in load(path).get("Resources", {}).items():
        for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]) and skip["comment"].strip(), name


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_checkov_s_iam_checks_pass_with_every_condition_true(checkov, path):
    # checkov does not evaluate a policy whose statements include Fn::If (the snapshot bucket's), so the
    # IAM checks run on the template as deployed with SnapshotBucket and DnsServiceName set.
    results = checkov["checks"][checkov["resolved"][path]]
    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    role = {c["check_id"] for c in results["passed_checks"] if c["resource"] == "AWS::IAM::Role.Role"}
    assert IAM_POLICY_CHECKS <= role
