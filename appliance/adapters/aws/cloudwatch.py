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
    """PutMetricData of ``HealthyLeader`` = 1 (unit Count) in ``namespace``, dimension ClusterName=``cluster``.

    Args:
        namespace: CLOUDWATCH_NAMESPACE (never ``AWS/…``: the settings refuse AWS's reserved prefix).
        cluster: CLUSTER_NAME. region: this instance's. timeout: seconds per call. session: the agent's session.
    """

    def __init__(self, namespace: str, cluster: str, region: str, timeout: float = 3.0,
                 session: boto3.session.Session | None = None):
        self.namespace = namespace
        self.cluster = cluster
        session = session or boto3.session.Session()
        self.client = session.client("cloudwatch", region_name=region, config=client_config(timeout))

    def put(self) -> None:
        """One data point, now.

        Raises:
            ERRORS: AWS refused or did not answer.
        """
        call("cloudwatch", self.client, "put_metric_data", Namespace=self.namespace, MetricData=[{
            "MetricName": METRIC_NAME, "Dimensions": [{"Name": DIMENSION, "Value": self.cluster}],
            "Value": 1.0, "Unit": "Count"}])
