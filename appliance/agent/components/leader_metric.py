"""The leader's CloudWatch data point, for an alarm that fires when no member leads (rule:
:mod:`appliance.rules.leader_metric`)."""

from __future__ import annotations

import logging
import time
from typing import Callable

from appliance.adapters.aws import cloudwatch
from appliance.adapters.aws.cloudwatch import LeaderMetric
from appliance.model.decisions import Action, Decision
from appliance.model.observation import Observation
from appliance.rules.leader_metric import due

log = logging.getLogger("agent")


class HealthyLeaderMetric:
    """Puts ``HealthyLeader`` once a minute while this member leads a cluster with quorum.

    Args:
        metric: the PutMetricData call, None without CLOUDWATCH_NAMESPACE. clock: monotonic seconds.
    """

    def __init__(self, metric: LeaderMetric | None, clock: Callable[[], float] = time.monotonic):
        self.metric = metric
        self.clock = clock
        self.last_put: float | None = None
        self.failing = False

    def tick(self, s: Observation, decision: Decision) -> bool:
        """Put a data point if one is due; True if one was put."""
        serving_leader = decision.action is Action.SERVE and s.is_leader and s.quorum_lost_for is None
        now = self.clock()
        if not due(self.metric is not None, serving_leader, None if self.last_put is None else now - self.last_put):
            return False
        self.last_put = now  # a failure waits for the next interval too: no burst of retries against CloudWatch
        try:
            self.metric.put()
        except cloudwatch.ERRORS as exc:
            if not self.failing:
                log.warning("CloudWatch data point HealthyLeader not put (%s): the NoHealthyLeader alarm may fire",
                            exc)
            self.failing = True
            return False
        if self.failing:
            log.info("CloudWatch data point HealthyLeader put again")
        self.failing = False
        return True
