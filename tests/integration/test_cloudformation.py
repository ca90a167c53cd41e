"""The template passes cfn-lint and keeps its security promises."""

import os
import subprocess
import sys

from cfnlint.decode import decode_str

from tests.integration.conftest import REPO

TEMPLATE = REPO / "cloudformation" / "etcd-cluster.yaml"


def test_cfn_lint_passes():
    cfn_lint = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    done = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_imdsv2_required_and_no_world_ingress():
    template, _ = decode_str(TEMPLATE.read_text())
    resources = template["Resources"]
    data = resources["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(d["Ebs"]["Encrypted"] for d in data["BlockDeviceMappings"])
    ingress = list(resources["SecurityGroup"]["Properties"]["SecurityGroupIngress"])
    ingress += [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert ingress and all(rule.get("CidrIp") != "0.0.0.0/0" for rule in ingress)
    assert template["Parameters"]["InstanceCount"]["AllowedValues"] == ["1", "3", "5", "7"]
