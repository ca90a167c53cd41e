"""The leader's CloudWatch data point, ``HealthyLeader`` (the rule is :mod:`appliance.rules.leader_metric`'s)."""

from __future__ import annotations

import boto3
import botocore.exceptions

from appliance.adapters.aws.common import call, client_config
from appliance.model.errors import AwsPermissionError

ERRORS = (AwsPermissionError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
METRIC_NAME = "HealthyLeader"
DIMENSION = "ClusterName"


class LeaderMetric:
    """PutMetricData of ``HealthyLeader`` = 1 (unit Count) in ``namespace``, dimension ClusterName=``cluster``, in
    each of ``regions``: a cluster across regions has one leader, and each region's stack alarms on the points in
    its own region.

    Args:
        namespace: CLOUDWATCH_NAMESPACE (never ``AWS/…``: the settings refuse AWS's reserved prefix).
        cluster: CLUSTER_NAME. regions: ACTIVE_REGIONS, or this instance's region alone. timeout: seconds per
        call. session: the agent's session.
    """

    def __init__(self, namespace: str, cluster: str, regions: tuple[str, ...], timeout: float = 3.0,
                 session: boto3.session.Session | None = None):
        self.namespace = namespace
        self.cluster = cluster
        session = session or boto3.session.Session()
        self.clients = {region: session.client("cloudwatch", region_name=region, config=client_config(timeout))
                        for region in regions}

    def put(self) -> None:
        """One data point, now, in every region (one region failing does not keep the others from theirs).

        Raises:
            ERRORS: AWS refused or did not answer in a region (the first such error, once every region was tried).
        """
        failed = None
        for client in self.clients.values():
            try:
                call("cloudwatch", client, "put_metric_data", Namespace=self.namespace, MetricData=[{
                    "MetricName": METRIC_NAME, "Dimensions": [{"Name": DIMENSION, "Value": self.cluster}],
                    "Value": 1.0, "Unit": "Count"}])
            except ERRORS as exc:
                failed = failed or exc
        if failed is not None:
            raise failed
