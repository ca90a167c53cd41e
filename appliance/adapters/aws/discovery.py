"""Peers from the AutoScaling and EC2 APIs, in this instance's region and in the other active regions.

A listing that failed, or whose answers do not fit together, is *incomplete*:
callers treat what it does not show as unknown, never as gone (docs/design.md,
"An incomplete listing is unknown, never gone"). With other active regions (``ACTIVE_REGIONS``), the group of
the same stack in each of them is found by its tag :data:`CLUSTER_TAG`; a
region that fails to answer makes the whole listing incomplete, while a region
with no such group (a stack not deployed there yet) simply has no instances.
"""

from __future__ import annotations

import logging
from typing import Iterable

import boto3
import botocore.exceptions

from appliance.adapters.aws.common import call, client_config, is_denied, permission_error
from appliance.model.errors import AwsPermissionError, ConfigError
from appliance.model.formats import is_instance_id, is_instance_ipv4
from appliance.model.instances import CLUSTER_TAG, Instance, Listing

log = logging.getLogger(__name__)

# EC2 instance states of a machine that is going or gone.
_EC2_GONE = {"shutting-down", "terminated"}


class _Incomplete(Exception):
    """A region's answer that makes the listing incomplete (the message says why)."""


class Discovery:
    """Lists this instance's autoscaling group, and the same stack's groups in the other active
    regions, through the AWS APIs.

    Args:
        instance_id: this instance.
        region: AWS region of this instance and its group.
        timeout: connect and read timeout in seconds of every call.
        session: a boto3 session (default: a new one; endpoints and credentials
            from the environment, e.g. ``AWS_ENDPOINT_URL``).
        cluster_name: the value of :data:`CLUSTER_TAG` on the other regions' groups.
        other_regions: the other active regions (not ``region``), listed too.
    """

    def __init__(self, instance_id: str, region: str, timeout: float = 3.0,
                 session: boto3.session.Session | None = None, cluster_name: str = "",
                 other_regions: Iterable[str] = (), advertise_public: bool = False):
        session = session or boto3.session.Session()
        config = client_config(timeout)
        self.instance_id = instance_id
        self.region = region
        self.cluster_name = cluster_name
        self.other_regions = tuple(r for r in other_regions if r != region)
        self.advertise_public = advertise_public
        self._clients = {r: (session.client("autoscaling", region_name=r, config=config),
                             session.client("ec2", region_name=r, config=config))
                         for r in (region, *self.other_regions)}
        self.autoscaling, self.ec2 = self._clients[region]
        self._group_name: str | None = None
        self._desired = 0  # the groups' DesiredCapacity, added up during one list()

    def _call(self, service: str, client, operation: str, **kwargs):
        return call(service, client, operation, **kwargs)

    def _describe_self(self) -> dict | None:
        answer = self._call("autoscaling", self.autoscaling, "describe_auto_scaling_instances",
                            InstanceIds=[self.instance_id])
        found = answer.get("AutoScalingInstances", [])
        return found[0] if found else None

    def group_name(self) -> str:
        """This instance's autoscaling group name (DescribeAutoScalingInstances), cached.

        Raises:
            ConfigError: the instance belongs to no autoscaling group.
            AwsPermissionError: the role may not call DescribeAutoScalingInstances.
            botocore.exceptions.BotoCoreError, ClientError: AWS did not answer.
        """
        if self._group_name is None:
            me = self._describe_self()
            if me is None:
                raise ConfigError(f"instance {self.instance_id} belongs to no autoscaling group")
            self._group_name = me["AutoScalingGroupName"]
        return self._group_name

    def own_lifecycle_state(self) -> str | None:
        """This instance's ASG lifecycle state, or None if AWS did not answer or lists it nowhere.

        Raises:
            AwsPermissionError: the role may not call DescribeAutoScalingInstances.
        """
        try:
            me = self._describe_self()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            log.warning("could not read own lifecycle state: %s", exc)
            return None
        return me["LifecycleState"] if me else None

    def list(self, confirm: Iterable[str] = ()) -> Listing:
        """List the groups: DescribeAutoScalingGroups, then DescribeInstances for addresses, per region.

        Args:
            confirm: instance ids outside the groups' answers to ask EC2 about (the
                names of etcd members), in every active region, so that ``Listing.gone``
                can say which are really gone. An id EC2 still reports running makes the
                listing incomplete: a group's answer may have left it out.

        Returns:
            A :class:`Listing`; incomplete (never raising) when AWS fails in any active
            region or the answers disagree.

        Raises:
            AwsPermissionError: the role may not make one of these calls.
        """
        try:
            return self._list(confirm)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # botocore parses by the service's model, so this is a proxy's or an emulator's answer: unknown.
            return Listing.unknown(f"AWS answered in an unexpected shape ({type(exc).__name__}: {exc})"[:300])

    def _list(self, confirm: Iterable[str]) -> Listing:
        try:
            self._desired = 0
            members = {self.region: self._own_members()}
            for region in self.other_regions:
                members[region] = self._tagged_members(region)
            listed = {item["InstanceId"] for items in members.values() for item in items}
            extra = sorted(set(confirm) - listed)
            ec2_state: dict[str, tuple[str, str | None, str | None]] = {}
            for region, items in members.items():
                # Each region's own instances, and there too the ids no group listed (an instance
                # id exists in one region only, so the answers never overlap).
                ec2_state.update(self._ec2_states(region, sorted(i["InstanceId"] for i in items) + extra))
        except _Incomplete as exc:
            return Listing.unknown(str(exc))
        except AwsPermissionError:
            raise
        except botocore.exceptions.ClientError as exc:
            if is_denied(exc):
                raise permission_error("ec2", "DescribeInstances") from None
            return Listing.unknown(f"AWS error: {exc}")
        except botocore.exceptions.BotoCoreError as exc:
            return Listing.unknown(f"AWS unreachable: {exc}")

        instances = []
        problems = []
        for region, items in members.items():
            for item in items:
                if not is_instance_id(item["InstanceId"]):
                    raise ValueError(f"{item['InstanceId']!r} is not an instance id")
                state, ip, public_ip = ec2_state.get(item["InstanceId"], (None, None, None))
                instance = Instance(item["InstanceId"], ip, item["LifecycleState"], item.get("AvailabilityZone", ""),
                                    region, public_ip, self.advertise_public)
                if state is None or (instance.address is None and state not in _EC2_GONE):
                    # An instance whose address is unknown cannot be told apart from a member's:
                    # the listing is incomplete (no seeding, no removal) until EC2 says.
                    problems.append(f"EC2 does not describe {item['InstanceId']} of the group"
                                    + (" with a public IPv4 address" if state is not None and self.advertise_public
                                       else ""))
                instances.append(instance)
        gone = set()
        for instance_id in extra:
            state, _, _ = ec2_state.get(instance_id, ("absent", None, None))
            if state in _EC2_GONE or state == "absent":
                gone.add(instance_id)
            else:
                problems.append(f"{instance_id} is {state} in EC2 but not listed in the group")
        return Listing(complete=not problems, instances=tuple(instances),
                       gone=frozenset(gone), problem="; ".join(problems), desired_capacity=self._desired)

    def _own_members(self) -> list[dict]:
        group_name = self.group_name()
        groups = self._call("autoscaling", self.autoscaling, "describe_auto_scaling_groups",
                            AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
        if not groups:
            raise _Incomplete(f"DescribeAutoScalingGroups does not know group {group_name}")
        self._desired += int(groups[0].get("DesiredCapacity", 0))
        return groups[0].get("Instances", [])

    def _tagged_members(self, region: str) -> list[dict]:
        """The instances of the group tagged ``CLUSTER_TAG=<cluster_name>`` in ``region``; [] if none is."""
        autoscaling, _ = self._clients[region]
        groups = self._call("autoscaling", autoscaling, "describe_auto_scaling_groups",
                            Filters=[{"Name": f"tag:{CLUSTER_TAG}", "Values": [self.cluster_name]}]
                            )["AutoScalingGroups"]
        if len(groups) > 1:
            names = ", ".join(g["AutoScalingGroupName"] for g in groups)
            raise _Incomplete(f"{len(groups)} groups in {region} are tagged {CLUSTER_TAG}={self.cluster_name} "
                              f"({names}): which one is the cluster's is unknown")
        if groups:
            self._desired += int(groups[0].get("DesiredCapacity", 0))
        return groups[0].get("Instances", []) if groups else []

    def _ec2_states(self, region: str, instance_ids: list[str]) -> dict[str, tuple[str, str | None, str | None]]:
        """DescribeInstances in ``region``: instance id -> (EC2 state, private IP, public IP)."""
        found: dict[str, tuple[str, str | None, str | None]] = {}
        if not instance_ids:
            return found
        for page in self._describe_instances(region, instance_ids):
            for reservation in page["Reservations"]:
                for inst in reservation["Instances"]:
                    # An address of another form is no address: the instance then makes the listing incomplete.
                    private, public = (ip if ip and is_instance_ipv4(ip) else None
                                       for ip in (inst.get("PrivateIpAddress"), inst.get("PublicIpAddress")))
                    found[inst["InstanceId"]] = (inst["State"]["Name"], private, public)
        return found

    def _describe_instances(self, region: str, instance_ids: list[str]) -> Iterable[dict]:
        """DescribeInstances' pages for ``instance_ids`` in ``region``."""
        _, ec2 = self._clients[region]
        return ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "instance-id",
                                                                           "Values": instance_ids}])
