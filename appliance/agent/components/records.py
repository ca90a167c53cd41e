"""The leader's Route53 discovery records: what they should be (:mod:`appliance.rules.records`), and one step
towards that each cycle (:class:`~appliance.agent.components.record_publisher.RecordPublisher`)."""

from __future__ import annotations

import logging

import botocore.exceptions

from appliance.adapters.aws.route53 import HostedZone
from appliance.agent.components.reasons import ReasonLog
from appliance.agent.components.record_publisher import RecordPublisher
from appliance.model.errors import AwsPermissionError, ConfigError
from appliance.model.modes import Mode
from appliance.model.observation import Observation
from appliance.model.records import fqdn
from appliance.model.settings import AgentSettings
from appliance.rules import records

log = logging.getLogger(__name__)



class Records:
    """The records component of the leader's agent.

    Args:
        zone: the hosted zone (HOSTED_ZONE). settings: the agent's (ports, TTL, cluster and service names).
        region: this instance's region (its read record's Region).
    """

    def __init__(self, zone: HostedZone, settings: AgentSettings, region: str):
        self.publisher = RecordPublisher(zone)
        self.settings = settings
        self.region = region
        tls = settings.client_tls is not None
        self.tls = tls
        self.domain = records.domain(settings.cluster_name, zone.name)
        self.read_name = records.read_record_name(settings.dns_service_name, zone.name, tls) \
            if settings.dns_service_name else ""
        # Regional clusters linked by the mirror: the active one's leader keeps the write record.
        self.write_domain = fqdn(f"{settings.dns_service_name}.{zone.name}") \
            if settings.mirror_prefix and settings.dns_service_name else ""
        self.reason = ReasonLog(logging.getLogger("agent"), "records")

    def tick(self, s: Observation) -> str:
        """On the leader: bring the records one step closer to the healthy members; returns what it did."""
        # Only an explicit active record counts: before cluster-mode, both linked clusters count as
        # active, and two leaders would take the write record from each other.
        active = s.mode is not None and s.mode[0] is Mode.ACTIVE and s.mode[1] > 0
        write_domain = self.write_domain if active else ""
        plan = records.plan(records.RecordsFacts(
            domain=self.domain, listing=s.listing, members=s.member_health, upgrade_lock_holder=s.upgrade_lock_holder,
            ttl=self.settings.dns_ttl, peer_port=self.settings.peer_port, client_port=self.settings.client_port,
            read_name=self.read_name, region=self.region, write_domain=write_domain, tls=self.tls))
        outcome = plan.reason
        if plan.desired is not None:
            try:
                outcome = f"{plan.reason}; " + self.publisher.sync(
                    self.domain, plan.desired, read_name=self.read_name, region=self.region,
                    write_name=records.write_record_name(write_domain, self.tls) if write_domain else "")
            except (AwsPermissionError, ConfigError) as exc:
                outcome = f"Route53: {exc}"
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                outcome = f"Route53 failed, retrying next cycle: {exc}"
        self.reason.say(outcome)
        return outcome
