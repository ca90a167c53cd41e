"""The templates pass cfn-lint and checkov and keep their security promises; the multiregion one differs from the
single-region one only where a cluster across regions needs it."""

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode_str

from tests.integration.cfn_resolve import kept, rendered_user_data, resolve
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
    # The same resources: the leader of a cluster across regions puts HealthyLeader in every active region, so each
    # region's stack has its NoHealthyLeaderAlarm too.
    assert set(multi["Resources"]) == set(single["Resources"])
    # The group stays the same: the migration to two regions updates one stack into the other (and moto, the
    # simulator's AWS, replaces a group whose definition changes, with every instance).
    different = {name for name in multi["Resources"] if single["Resources"][name] != multi["Resources"][name]}
    assert different == {"SecurityGroup", "Role", "LaunchTemplate"}  # the alarms are the same
    # The group carries the tag the agents find it by, and nothing else changed in it.
    group = dict(multi["Resources"]["SecurityGroup"]["Properties"])
    assert group.pop("Tags") == [{"Key": "etcd-appliance:cluster", "Value": {"Ref": "AWS::StackName"}}]
    assert group == single["Resources"]["SecurityGroup"]["Properties"]
    # The single-region stack's leader may also keep the write record (MIRROR_PREFIX, which a cluster across
    # regions does not take); otherwise the record names are the same.
    single_names, multi_names = (record_names(t) for t in (single, multi))
    assert [n for n in single_names if n not in multi_names] == [
        {"Fn::If": ["HasDnsServiceName", {"Fn::Sub": f"_etcd-client{ssl}-rw._tcp.${{DnsServiceName}}.*"},
                    {"Ref": "AWS::NoValue"}]} for ssl in ("", "-ssl")]
    assert all(n in single_names for n in multi_names)
    # The role may change rules only in groups carrying that tag, and describe groups; it puts no metric.
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
    removed = [s for s in policy_statements(single) if s not in policy_statements(multi)
               and s.get("Action") != "route53:ChangeResourceRecordSets"
               and s is not policy_statements(single)[0]]
    assert removed == []
    script, variables = user_data(multi)
    assert "-e ACTIVE_REGIONS=${ActiveRegions}" in script
    assert "-e ADVERTISE_ADDRESS=${AdvertiseAddress}" in script
    single_script, single_variables = user_data(single)
    # The script is the same but for those two settings.
    assert single_script == script.replace(
        "  -e ACTIVE_REGIONS=${ActiveRegions} \\\n  -e ADVERTISE_ADDRESS=${AdvertiseAddress} \\\n", "")
    assert set(single_variables) == set(variables)


def user_data(template: dict) -> tuple[str, dict]:
    """The launch template's UserData: the script as written (``${…}`` unresolved) and its Fn::Sub variables."""
    script, variables = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"][
        "Fn::Base64"]["Fn::Sub"]
    return script, variables


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


ROLLING_PROCESSES = {"HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification", "ScheduledActions"}


def minutes(duration: str) -> float:
    """An ISO 8601 duration of CloudFormation's policies (PT#H#M#S) in minutes."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", duration)
    assert match and any(match.groups()), duration
    hours, mins, secs = (int(g or 0) for g in match.groups())
    return hours * 60 + mins + secs / 60


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_the_termination_hook_gives_the_agent_time_to_leave_and_only_its_own_group_to_complete(path):
    template = load(path)
    group = template["Resources"]["AutoScalingGroup"]["Properties"]
    hook, = group["LifecycleHookSpecificationList"]
    # The agent's leave is about 60 s at worst (5 s leadership, 30 s MemberRemove, 5 s lock, 10 s etcd, AWS calls).
    assert hook["HeartbeatTimeout"] >= 120 and hook["DefaultResult"] == "CONTINUE"
    assert (hook["LifecycleHookName"], hook["LifecycleTransition"]) == (
        "etcd-appliance-leave", "autoscaling:EC2_INSTANCE_TERMINATING")
    script = rendered_user_data(template, {"ActiveRegions": "eu-central-1,eu-west-1"})
    assert f"-e LIFECYCLE_HOOK_NAME={hook['LifecycleHookName']} " in script
    # SIGTERM without the hook (docker stop, a shutdown): Docker waits for the same leave before its SIGKILL.
    assert int(re.search(r"--stop-timeout (\d+) ", script)[1]) >= 75
    statement, = [s for s in policy_statements(template)
                  if "autoscaling:CompleteLifecycleAction" in s.get("Action", ())]
    assert sorted(statement["Action"]) == ["autoscaling:CompleteLifecycleAction",
                                           "autoscaling:RecordLifecycleActionHeartbeat"]
    assert resolve(template, statement["Resource"], {}) == (
        "arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:*:autoScalingGroupName/*")
    # Only the group tagged with the stack's name, as this stack's group is.
    tag = {"autoscaling:ResourceTag/etcd-appliance:cluster": {"Ref": "AWS::StackName"}}
    assert statement["Condition"] == {"StringEquals": tag}
    assert {"Key": "etcd-appliance:cluster", "Value": {"Ref": "AWS::StackName"}, "PropagateAtLaunch": False} in group[
        "Tags"]


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_updates_roll_one_signalled_member_at_a_time_and_creation_waits_for_every_member(path):
    template = load(path)
    group = template["Resources"]["AutoScalingGroup"]
    rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert rolling["MinInstancesInService"] == {"Ref": "InstanceCount"} and rolling["MaxBatchSize"] == 1
    assert rolling["WaitOnResourceSignals"] is True and set(rolling["SuspendProcesses"]) == ROLLING_PROCESSES
    # Room for the new member to join as a learner and be promoted; one more instance than members meanwhile.
    assert 10 <= minutes(rolling["PauseTime"]) <= 60
    for count in template["Parameters"]["InstanceCount"]["AllowedValues"]:
        assert template["Mappings"]["GroupMaxSize"][count]["Max"] == int(count) + 1
    creation = group["CreationPolicy"]
    assert creation["AutoScalingCreationPolicy"] == {"MinSuccessfulInstancesPercent": 100}
    assert creation["ResourceSignal"]["Count"] == {"Ref": "InstanceCount"}
    assert minutes(creation["ResourceSignal"]["Timeout"]) >= minutes(rolling["PauseTime"])
    # Every instance signals the resource carrying the policies, of this stack; the role may signal this stack only.
    script = rendered_user_data(template, {"ActiveRegions": "eu-central-1,eu-west-1"})
    assert "-e CFN_STACK_NAME=etcd-prod " in script and "-e CFN_SIGNAL_RESOURCE=AutoScalingGroup " in script
    signal, = [s for s in policy_statements(template) if s.get("Action") == "cloudformation:SignalResource"]
    assert signal["Resource"] == {"Ref": "AWS::StackId"} and "Condition" not in signal


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_monitoring_cidr_opens_exactly_the_status_and_metrics_ports(path):
    template = load(path)
    parameter = template["Parameters"]["MonitoringCidr"]
    assert parameter["Default"] == ""
    for text, accepted in (("", True), ("10.20.0.0/24", True), ("10.20.0.0", False), ("10.20.0.0/33", False),
                           ("any", False)):
        assert bool(re.fullmatch(parameter["AllowedPattern"], text)) == accepted, text
    refused = [a["Assert"] for rule in template["Rules"].values() for a in rule["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "MonitoringCidr"}, "0.0.0.0/0"]}]} in refused
    for cidr, ports in (("", set()), ("10.20.0.0/24", {(2378, 2378), (2381, 2381)})):
        resources = kept(template, {"MonitoringCidr": cidr, "ActiveRegions": "eu-central-1,eu-west-1"})
        rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
        rules += resources["SecurityGroup"]["Properties"]["SecurityGroupIngress"]
        opened = {(r["FromPort"], r["ToPort"]) for r in rules if r.get("CidrIp") == {"Ref": "MonitoringCidr"}}
        assert opened == ports, cidr


def alarms(template: dict) -> dict:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_alarms_and_group_metrics_exist_only_with_an_alarm_topic(path):
    template = load(path)
    extra = {"ActiveRegions": "eu-central-1,eu-west-1"}
    topic = "arn:aws:sns:eu-central-1:123456789012:etcd-alarms"
    pattern = template["Parameters"]["AlarmTopicArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, topic) and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "arn:aws:sqs:eu-central-1:123456789012:q")
    assert set(alarms(template)) == {"InstancesOutOfServiceAlarm", "NoHealthyLeaderAlarm"}
    assert not set(alarms(template)) & set(kept(template, extra))
    assert set(alarms(template)) <= set(kept(template, {"AlarmTopicArn": topic, **extra}))
    for alarm in alarms(template).values():
        assert alarm["Properties"]["AlarmActions"] == alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopicArn"}]
    group = template["Resources"]["AutoScalingGroup"]["Properties"]
    assert "MetricsCollection" not in resolve(template, group, extra)
    collected, = resolve(template, group, {"AlarmTopicArn": topic, **extra})["MetricsCollection"]
    assert collected["Granularity"] == "1Minute" and "GroupInServiceInstances" in collected["Metrics"]
    out = alarms(template)["InstancesOutOfServiceAlarm"]["Properties"]
    assert (out["Namespace"], out["MetricName"], out["Statistic"]) == (
        "AWS/AutoScaling", "GroupInServiceInstances", "Minimum")
    assert out["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": {"Ref": "AutoScalingGroup"}}]
    assert (out["Threshold"], out["ComparisonOperator"]) == ({"Ref": "InstanceCount"}, "LessThanThreshold")
    assert out["Period"] * out["EvaluationPeriods"] == 600
    scripts = {arn: rendered_user_data(template, {"AlarmTopicArn": arn, **extra}) for arn in ("", topic)}
    puts = [s for s in policy_statements(template) if "Fn::If" in s and
            s["Fn::If"][1]["Action"] == "cloudwatch:PutMetricData"]
    assert "CLOUDWATCH_NAMESPACE" not in scripts[""]
    leader = alarms(template)["NoHealthyLeaderAlarm"]
    assert leader["DependsOn"] == "AutoScalingGroup"  # created once every member signalled: not while forming
    leader = leader["Properties"]
    namespace = re.search(r"-e CLOUDWATCH_NAMESPACE=(\S+) ", scripts[topic])[1]
    assert (leader["Namespace"], leader["MetricName"]) == (namespace, "HealthyLeader")
    assert leader["Dimensions"] == [{"Name": "ClusterName", "Value": {"Ref": "AWS::StackName"}}]
    assert (leader["Statistic"], leader["Period"], leader["EvaluationPeriods"], leader["Threshold"]) == (
        "Sum", 60, 5, 1)
    assert (leader["ComparisonOperator"], leader["TreatMissingData"]) == ("LessThanThreshold", "breaching")
    put, = puts
    assert put["Fn::If"][0] == "HasAlarmTopic"
    assert put["Fn::If"][1]["Condition"] == {"StringEquals": {"cloudwatch:namespace": namespace}}


@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_session_manager_access_adds_only_aws_s_managed_instance_policy(path):
    template = load(path)
    role = template["Resources"]["Role"]["Properties"]
    extra = {"ActiveRegions": "eu-central-1,eu-west-1"}
    assert "ManagedPolicyArns" not in resolve(template, role, {**extra, "SessionManagerAccess": "false"})
    assert resolve(template, role, {**extra, "SessionManagerAccess": "true"})["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    assert template["Parameters"]["SessionManagerAccess"]["Default"] == "false"


@pytest.mark.parametrize("tls", ["", "/etc/etcd-tls"], ids=["plain", "tls"])
@pytest.mark.parametrize("path", [TEMPLATE, MULTIREGION], ids=lambda p: p.name)
def test_outputs_name_what_the_leader_publishes_and_the_role_may_change(path, tls):
    from appliance.rules import records

    template = load(path)
    parameters = {"HostedZone": "example.org.", "TlsDirectory": tls, "DnsServiceName": "config",
                  "ActiveRegions": "eu-central-1,eu-west-1"}
    outputs = {k: v["Value"] for k, v in resolve(template, template["Outputs"], parameters).items()}
    domain = records.domain("etcd-prod", "example.org.")
    published = records.desired(domain, [records.PublishedMember("i-0abc", "10.0.1.4")], 60, tls=bool(tls))
    srv = {name for name, kind, *_ in published if kind == "SRV"}
    assert outputs["DiscoveryDomain"] == domain
    assert {outputs["ClientSrvRecord"], outputs["ServerSrvRecord"]} == srv
    assert outputs["ClientSrvRecord"] == records.client_srv_name(domain, bool(tls))
    command = outputs["EtcdctlCommand"].split()
    assert command[:3] == ["etcdctl", "--discovery-srv", domain] and command[-2:] == ["endpoint", "health"]
    assert ("--cacert" in command) == bool(tls)
    assert {"AutoScalingGroupName", "SecurityGroupId"} <= set(outputs)
    # Every name the leader publishes is one the role may change (normalized names carry no trailing dot).
    names = [n for n in resolve(template, record_names(template), parameters)]
    wanted = [*(name for name, *_ in published), records.read_record_name("config", "example.org.", bool(tls))]
    if path == TEMPLATE:  # the write record: regional clusters linked by the mirror
        wanted.append(records.write_record_name("config.example.org.", bool(tls)))
    for name in wanted:
        assert any(fnmatch.fnmatchcase(name.rstrip("."), pattern) for pattern in names), name
