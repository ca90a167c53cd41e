"""The agent's Prometheus metrics (prometheus-client), served at ``/metrics`` on its status endpoint."""

from __future__ import annotations

import math
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest

from appliance.model.build import APPLIANCE_VERSION


class AgentMetrics:
    """The agent's counters and gauges, in a registry of their own (one agent per process, and tests
    build several)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.snapshots = Counter("etcd_appliance_snapshots", "snapshots attempted by this agent, by outcome (ok, "
                                 "failed)", ["outcome"], registry=r)
        self.snapshot_last_success = Gauge("etcd_appliance_snapshot_last_success_timestamp_seconds",
                                           "when the newest snapshot in S3 was taken (epoch seconds)", registry=r)
        self.snapshot_age = Gauge("etcd_appliance_snapshot_age_seconds",
                                  "seconds since the newest snapshot in S3 was taken, as this agent last saw it "
                                  "(NaN before it saw one)", registry=r)
        self.snapshot_age.set_function(lambda: _age(self.snapshot_last_success))
        self.snapshot_bytes = Gauge("etcd_appliance_snapshot_bytes", "size of the last snapshot taken", registry=r)
        self.recoveries = Counter("etcd_appliance_recoveries", "disaster recoveries this agent carried out, by kind "
                                  "(force-new-cluster, snapshot) and whether acknowledged writes may be lost",
                                  ["kind", "may_lose_writes"], registry=r)
        self.decisions = Counter("etcd_appliance_decisions", "decisions this agent made (one per cycle), by decider "
                                 "(bootstrap: every agent's; housekeeping: the leader's) and action",
                                 ["decider", "action"], registry=r)
        self.aws_calls = Counter("etcd_appliance_aws_api_calls", "AWS API calls this agent made (each counted once, "
                                 "after retries), by service and operation", ["service", "operation"], registry=r)
        self.aws_errors = Counter("etcd_appliance_aws_api_errors", "AWS API calls that ended in an error, by service, "
                                  "operation and code (the AWS error code, or the exception's name when AWS did not "
                                  "answer)", ["service", "operation", "code"], registry=r)
        self.members = Gauge("etcd_appliance_members", "members of the cluster as this agent last saw the member "
                             "list, by role (voting, learner)", ["role"], registry=r)
        self.housekeeping_last_success = Gauge(
            "etcd_appliance_housekeeping_last_success_timestamp_seconds",
            "when this agent last completed a housekeeping cycle as the leader holding the housekeeping lease "
            "(epoch seconds; 0: never)", registry=r)
        self.housekeeping_age = Gauge("etcd_appliance_housekeeping_age_seconds",
                                      "seconds since this agent last completed a housekeeping cycle (NaN: never)",
                                      registry=r)
        self.housekeeping_age.set_function(lambda: _age(self.housekeeping_last_success))
        # This agent's own member's space (every agent reports its own, so that a sum over agents counts each
        # member once) and the leader's maintenance (counted by the agent that did it).
        self.db_size = Gauge("etcd_appliance_db_size_bytes", "this member's database file size (NaN: unknown)",
                             registry=r)
        self.db_size_in_use = Gauge("etcd_appliance_db_size_in_use_bytes", "the part of this member's database "
                                    "file holding data (NaN: unknown)", registry=r)
        self.db_free_ratio = Gauge("etcd_appliance_db_free_ratio", "free pages as a share of this member's database "
                                   "file, 0 to 1: what a defragmentation would give back (NaN: unknown)", registry=r)
        self.quota = Gauge("etcd_appliance_quota_backend_bytes", "the space quota etcd runs with", registry=r)
        self.last_defragmentation = Gauge("etcd_appliance_last_defragmentation_timestamp_seconds",
                                          "when this member was last defragmented (epoch seconds; 0: not recorded)",
                                          registry=r)
        self.compacted_revision = Gauge("etcd_appliance_compacted_revision", "the revision the cluster's history "
                                        "was last compacted to, as recorded by the leader (0: not recorded)",
                                        registry=r)
        self.alarm = Gauge("etcd_appliance_alarm_active", "1 while an alarm of this kind names this member",
                           ["alarm"], registry=r)
        self.compactions = Counter("etcd_appliance_compactions", "compactions this agent asked for as the leader, "
                                   "by reason (retention, pressure, nospace) and outcome (ok, failed)",
                                   ["reason", "outcome"], registry=r)
        self.defragmentations = Counter("etcd_appliance_defragmentations", "defragmentations this agent ran as the "
                                        "leader, by outcome (ok, failed)", ["outcome"], registry=r)
        self.defragmentation_seconds = Gauge("etcd_appliance_last_defragmentation_duration_seconds",
                                             "how long the last defragmentation this agent ran took", registry=r)
        self.defragmentation_freed = Counter("etcd_appliance_defragmentation_freed_bytes",
                                             "bytes the defragmentations this agent ran gave back", registry=r)
        self.leadership_moves = Counter("etcd_appliance_leadership_moves", "leadership handed to another member "
                                        "by this agent, by reason (defragmentation, corruption)", ["reason"],
                                        registry=r)
        self.nospace_cleared = Counter("etcd_appliance_nospace_alarms_cleared", "NOSPACE alarms this agent "
                                       "disarmed after compacting and defragmenting", registry=r)
        self.nospace_clear_seconds = Gauge("etcd_appliance_last_nospace_clear_duration_seconds",
                                           "seconds from this agent seeing the last NOSPACE alarm it cleared to "
                                           "disarming it", registry=r)
        self.corruption_checks = Counter("etcd_appliance_corruption_checks", "comparisons of the members' "
                                         "key-value hashes by this agent as the leader, by verdict", ["verdict"],
                                         registry=r)
        self.corrupt_members_replaced = Counter("etcd_appliance_corrupt_members_replaced", "members removed by this "
                                                "agent because their hash differed from the majority's", registry=r)
        # What an alert rule or a dashboard needs beside the above (monitoring/).
        self.build = Info("etcd_appliance_build", "the appliance's version and the etcd version it runs",
                          registry=r)
        self.build.info({"version": APPLIANCE_VERSION, "etcd_version": "unknown"})
        self.group_desired_capacity = Gauge("etcd_appliance_group_desired_capacity",
                                            "the groups' DesiredCapacity added up, as this agent last listed them "
                                            "(the leader lists them; NaN elsewhere)", registry=r)
        self.snapshot_interval = Gauge("etcd_appliance_snapshot_interval_seconds", "SNAPSHOT_INTERVAL (NaN without "
                                       "SNAPSHOT_BUCKET)", registry=r)
        self.mirror_lag_seconds = Gauge("etcd_appliance_mirror_lag_seconds", "the lag of the inbound mirror this "
                                        "agent runs, seconds (its etcd_mirror_lag_seconds; NaN: it runs none)",
                                        registry=r)
        self.mirror_lag_revisions = Gauge("etcd_appliance_mirror_lag_revisions", "the lag of the inbound mirror "
                                          "this agent runs, revisions (NaN: it runs none)", registry=r)
        self.heartbeat_last = Gauge("etcd_appliance_heartbeat_last_timestamp_seconds",
                                    "when this agent, as the leader, last wrote the cluster's heartbeat or found the "
                                    "cluster passive, where the mirror carries it (epoch seconds; 0: never)",
                                    registry=r)
        self.heartbeat_age = Gauge("etcd_appliance_heartbeat_age_seconds", "seconds since then (NaN: never)",
                                   registry=r)
        self.heartbeat_age.set_function(lambda: _age(self.heartbeat_last))
        self.lifecycle_actions = Counter("etcd_appliance_lifecycle_actions", "CompleteLifecycleAction calls for "
                                         "this instance's termination hook, by outcome (completed, failed)",
                                         ["outcome"], registry=r)
        self.cloudformation_signals = Counter("etcd_appliance_cloudformation_signals", "SignalResource calls, by "
                                              "outcome (sent; refused: the stack waited for none; failed)",
                                              ["outcome"], registry=r)
        for gauge in (self.db_size, self.db_size_in_use, self.db_free_ratio, self.group_desired_capacity,
                      self.snapshot_interval, self.mirror_lag_seconds, self.mirror_lag_revisions):
            gauge.set(math.nan)

    def set_etcd_version(self, version: str) -> None:
        """``etcd_appliance_build_info``'s etcd_version: the binary the agent runs (e.g. "3.5.21")."""
        self.build.info({"version": APPLIANCE_VERSION, "etcd_version": version})

    def aws_call(self, service: str, operation: str, error: str) -> None:
        """Count one AWS API call (see :func:`appliance.adapters.aws.calls.counted_session`); ``error``: "" for
        success."""
        self.aws_calls.labels(service=service, operation=operation).inc()
        if error:
            self.aws_errors.labels(service=service, operation=operation, code=error).inc()

    def aws_calls_made(self) -> int:
        """Every AWS API call counted so far (all services and operations): the status endpoint's figure,
        from the same counter as ``/metrics``."""
        return int(sum(sample.value for metric in self.aws_calls.collect() for sample in metric.samples
                       if sample.name.endswith("_total")))

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


def _age(timestamp: Gauge) -> float:
    """Seconds from ``timestamp``'s value (epoch seconds) to now; NaN while it is 0 (never set)."""
    at = timestamp.collect()[0].samples[0].value
    return time.time() - at if at > 0 else math.nan
