"""The cluster's security group in each active region: read its managed /32 rules, authorize and revoke them.

Each region's group is found by its tag :data:`~appliance.model.instances.CLUSTER_TAG`
(set by the multiregion template), as the groups of instances are. The decisions
are :mod:`appliance.rules.peer_access`'s; this module only talks to EC2.
"""

from __future__ import annotations

import logging
from typing import Iterable

import boto3
import botocore.exceptions

from appliance.adapters.aws.common import call, client_config, error_code
from appliance.model.errors import AwsPermissionError
from appliance.model.instances import CLUSTER_TAG
from appliance.model.security_groups import RULE_DESCRIPTION, GroupRules, RuleChange

log = logging.getLogger(__name__)

PEER_PORTS = (2378, 2380)  # agent status, client, peer: what members of different regions use
# What EC2 answers to adding a rule that exists and to revoking one that does not: done already.
_ALREADY = {"InvalidPermission.Duplicate", "InvalidPermission.NotFound"}


class GroupsUnknown(Exception):
    """The groups could not be read (EC2 failed, or a region has more than one tagged group)."""


# Everything reading or changing the groups may raise; the groups are then as they were.
ERRORS = (GroupsUnknown, AwsPermissionError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class SecurityGroups:
    """The security groups tagged ``CLUSTER_TAG=<cluster_name>`` in the active regions.

    Args:
        cluster_name: the stack's name, the tag's value.
        regions: every active region (this instance's too).
        timeout: connect and read timeout in seconds of every call.
        session: a boto3 session (default: a new one; ``AWS_ENDPOINT_URL`` applies).
    """

    def __init__(self, cluster_name: str, regions: Iterable[str], timeout: float = 3.0,
                 session: boto3.session.Session | None = None):
        session = session or boto3.session.Session()
        self.cluster_name = cluster_name
        self._ec2 = {r: session.client("ec2", region_name=r, config=client_config(timeout)) for r in regions}

    def _call(self, region: str, operation: str, **kwargs):
        return call("ec2", self._ec2[region], operation, **kwargs)

    def observe(self) -> dict[str, GroupRules]:
        """Every active region's group and its rules described :data:`RULE_DESCRIPTION` on the peer ports.

        Returns:
            region -> :class:`GroupRules`; a region without a tagged group is left out
            (the stack is not deployed there yet).

        Raises:
            GroupsUnknown: EC2 did not answer in some region, or a region has two tagged groups.
            AwsPermissionError: the role may not call DescribeSecurityGroups.
        """
        found = {}
        for region in self._ec2:
            try:
                groups = self._call(region, "describe_security_groups", Filters=[
                    {"Name": f"tag:{CLUSTER_TAG}", "Values": [self.cluster_name]}])["SecurityGroups"]
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                raise GroupsUnknown(f"DescribeSecurityGroups in {region} failed: {exc}") from None
            if len(groups) > 1:
                raise GroupsUnknown(f"{len(groups)} security groups in {region} are tagged "
                                    f"{CLUSTER_TAG}={self.cluster_name}: which one is the cluster's is unknown")
            if groups:
                group = groups[0]
                found[region] = GroupRules(region, group["GroupId"], _managed(group.get("IpPermissions", [])),
                                           _managed(group.get("IpPermissionsEgress", [])))
        return found

    def apply(self, change: RuleChange) -> None:
        """Authorize or revoke one rule; a rule already there (or already gone) counts as done.

        Raises:
            AwsPermissionError: the role may not change this group.
            botocore.exceptions.BotoCoreError, ClientError: EC2 refused or did not answer.
        """
        verb = "authorize" if change.add else "revoke"
        permission = {"IpProtocol": "tcp", "FromPort": PEER_PORTS[0], "ToPort": PEER_PORTS[1],
                      "IpRanges": [{"CidrIp": change.cidr, "Description": RULE_DESCRIPTION}]}
        try:
            self._call(change.region, f"{verb}_security_group_{change.direction}",
                       GroupId=change.group_id, IpPermissions=[permission])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) not in _ALREADY:
                raise


def _managed(permissions: list[dict]) -> frozenset[str]:
    return frozenset(r["CidrIp"] for p in permissions
                     if p.get("IpProtocol") == "tcp" and (p.get("FromPort"), p.get("ToPort")) == PEER_PORTS
                     for r in p.get("IpRanges", []) if r.get("Description") == RULE_DESCRIPTION)
