"""Route53: find the hosted zone, read the cluster's record sets, change them in one batch, wait for INSYNC.

:class:`RecordPublisher` is the leader's side: it reads the zone only when the
wanted records changed (or every ``refresh_interval`` seconds, to repair a hand
edit), sends one ChangeResourceRecordSets batch for the difference, and sends
nothing while an earlier change is still PENDING or when nothing differs.
Waiting for INSYNC spans agent cycles (GetChange once a cycle) so that the agent
loop never blocks on DNS propagation.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Mapping, Sequence

import boto3

from appliance.aws.common import call, client_config
from appliance.cluster import records
from appliance.cluster.records import Change, RecordSet
from appliance.errors import ConfigError

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 300.0   # seconds between reads of an unchanged zone (repairs hand edits)
PENDING_TIMEOUT = 600.0    # seconds after which a change still PENDING is given up and the zone re-read
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 300.0  # seconds between attempts after Route53 failed, doubling


class HostedZone:
    """One Route53 hosted zone, found by name.

    Args:
        zone_name: the zone's name, e.g. ``example.org.`` (the trailing dot is optional).
        timeout: connect and read timeout in seconds of every call.
        session: a boto3 session (default: a new one; ``AWS_ENDPOINT_URL`` applies).
    """

    def __init__(self, zone_name: str, timeout: float = 3.0, session: boto3.session.Session | None = None):
        session = session or boto3.session.Session()
        self.name = records.fqdn(zone_name)
        self.route53 = session.client("route53", config=client_config(timeout))
        self.zone_id: str | None = None
        self.calls = 0  # Route53 API calls made

    def _call(self, operation: str, **kwargs):
        self.calls += 1
        return call("route53", self.route53, operation, **kwargs)

    def resolve(self) -> str:
        """The zone's id (ListHostedZonesByName), cached.

        Raises:
            ConfigError: no hosted zone has this name, or several do (a public and a
                private zone of the same name: the id cannot be guessed).
            AwsPermissionError: the role may not call ListHostedZonesByName.
            botocore.exceptions.BotoCoreError, ClientError: Route53 did not answer.
        """
        if self.zone_id is None:
            answer = self._call("list_hosted_zones_by_name", DNSName=self.name, MaxItems="10")
            matches = [z["Id"].split("/")[-1] for z in answer.get("HostedZones", [])
                       if records.fqdn(z["Name"]) == self.name]
            if not matches:
                raise ConfigError(f"HOSTED_ZONE: no Route53 hosted zone is named {self.name}")
            if len(matches) > 1:
                raise ConfigError(f"HOSTED_ZONE: several hosted zones are named {self.name} "
                                  f"({', '.join(matches)})")
            self.zone_id = matches[0]
        return self.zone_id

    def read(self, domain_name: str, read_name: str = "", region: str = "",
             write_name: str = "") -> dict[tuple[str, ...], RecordSet]:
        """The record sets the cluster owns (see :func:`records.owned`): those under
        ``domain_name``, with ``read_name`` its region's read record, and with ``write_name``
        the write record (one more listing each, starting at that name).

        Raises: as :meth:`resolve`, and for ListResourceRecordSets.
        """
        found = self._list(domain_name, None, lambda rs: records.owned(rs, domain_name))
        for name in filter(None, (read_name, write_name)):
            found.update(self._list(name, "SRV", lambda rs: records.owned(rs, domain_name, read_name, region,
                                                                          write_name), stop_after=name))
        return found

    def latency_sets(self, read_name: str) -> dict[str, tuple[str, ...]]:
        """The read record's latency sets: region -> SRV values (one listing from ``read_name``).

        Raises: as :meth:`resolve`, and for ListResourceRecordSets.
        """
        name = records.fqdn(read_name)
        found = self._list(name, "SRV", lambda rs: rs.name == name and rs.type == "SRV" and bool(rs.region),
                           stop_after=name)
        return {rs.region: rs.values for rs in found.values()}

    def addresses(self, hosts: Iterable[str]) -> dict[str, str]:
        """host fqdn -> the first IPv4 address of its A record, for the hosts that have one
        (one short listing per host, starting at its name: no assumption about the zone's order).

        Raises: as :meth:`resolve`, and for ListResourceRecordSets.
        """
        found: dict[str, str] = {}
        for host in sorted({records.fqdn(h) for h in hosts}):
            sets = self._list(host, "A", lambda rs, host=host: rs.name == host and rs.type == "A" and not rs.region,
                              stop_after=host)
            found.update({rs.name: rs.values[0] for rs in sets.values() if rs.values})
        return found

    def _list(self, start: str, start_type: str | None, keep: Callable[[RecordSet], bool],
              stop_after: str | None = None) -> dict[tuple[str, ...], RecordSet]:
        """ListResourceRecordSets from ``start`` on (to the end, or past the name ``stop_after``)."""
        found: dict[tuple[str, ...], RecordSet] = {}
        kwargs = {"HostedZoneId": self.resolve(), "StartRecordName": start}
        if start_type:
            kwargs["StartRecordType"] = start_type
        for _ in range(100):  # 100 pages of 300: far beyond any zone this cluster shares
            page = self._call("list_resource_record_sets", **kwargs)
            for item in page.get("ResourceRecordSets", []):
                if stop_after is not None and records.fqdn(item["Name"]) != stop_after:
                    return found
                rs = _record_set(item)
                if rs is not None and keep(rs):
                    found[rs.key] = rs
            if not page.get("IsTruncated"):
                break
            kwargs.update(StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"])
            if "NextRecordIdentifier" in page:
                kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
            else:
                kwargs.pop("StartRecordIdentifier", None)
        return found

    def change(self, changes: Sequence[Change], comment: str) -> str:
        """Send ``changes`` as one ChangeResourceRecordSets batch; returns the change id.

        Raises: as :meth:`resolve`, and ClientError e.g. InvalidChangeBatch when the
        zone changed since it was read.
        """
        batch = {"Comment": comment[:256], "Changes": [
            {"Action": c.action, "ResourceRecordSet": _route53_form(c.record)} for c in changes]}
        answer = self._call("change_resource_record_sets", HostedZoneId=self.resolve(), ChangeBatch=batch)
        return answer["ChangeInfo"]["Id"].split("/")[-1]

    def change_status(self, change_id: str) -> str:
        """GetChange: "PENDING" or "INSYNC"."""
        return self._call("get_change", Id=change_id)["ChangeInfo"]["Status"]


def _record_set(item: Mapping) -> RecordSet | None:
    """A ListResourceRecordSets item as a :class:`RecordSet`; None for what the appliance never
    writes (alias records; weighted, failover or geolocation sets; latency sets whose
    SetIdentifier is not their region)."""
    if "ResourceRecords" not in item:
        return None
    region = ""
    if "SetIdentifier" in item:
        if item.get("Region") != item["SetIdentifier"]:
            return None
        region = item["Region"]
    return RecordSet.of(item["Name"], item["Type"], item.get("TTL", 0),
                        (r["Value"] for r in item["ResourceRecords"]), region)


def _route53_form(record: RecordSet) -> dict:
    """``record`` as a ChangeResourceRecordSets ResourceRecordSet."""
    form = {"Name": record.name, "Type": record.type, "TTL": record.ttl,
            "ResourceRecords": [{"Value": v} for v in record.values]}
    if record.region:
        form.update(SetIdentifier=record.region, Region=record.region)
    return form


class RecordPublisher:
    """Keeps the zone's record sets equal to the wanted ones, with as few Route53 calls as possible.

    Args:
        zone: the hosted zone. refresh_interval: seconds between reads when nothing changed.
    """

    def __init__(self, zone: HostedZone, refresh_interval: float = REFRESH_INTERVAL):
        self.zone = zone
        self.refresh_interval = refresh_interval
        self.synced: Mapping | None = None   # what the zone was last seen (or made) to hold
        self.synced_at = -float("inf")
        self.pending: tuple[str, Mapping, float] | None = None  # (change id, wanted, sent at)
        self.failures = 0
        self.retry_at = -float("inf")

    def sync(self, domain_name: str, wanted: Mapping[tuple[str, ...], RecordSet],
             now: float | None = None, read_name: str = "", region: str = "", write_name: str = "") -> str:
        """One step towards ``wanted`` (the record sets owned under ``domain_name``, with
        ``read_name`` the read record of ``region``, with ``write_name`` the write record);
        returns what it did, as one line to log.

        Raises:
            AwsPermissionError: a Route53 call is not allowed.
            botocore.exceptions.BotoCoreError, ClientError: Route53 failed; the zone is
                read again on the next call.
        """
        now = time.monotonic() if now is None else now
        if now < self.retry_at:
            return f"Route53 failed {self.failures} times in a row: next attempt in {self.retry_at - now:.0f} s"
        try:
            outcome = self._sync(domain_name, dict(wanted), now, read_name, region, write_name)
        except Exception:
            # Trust nothing cached, and back off: a batch Route53 refuses every time (a record
            # someone else made at one of our names) must not cost two calls every cycle.
            self.synced = None
            self.failures += 1
            self.retry_at = now + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self.failures - 1))
            raise
        self.failures = 0
        return outcome

    def _sync(self, domain_name: str, wanted: dict, now: float, read_name: str, region: str,
              write_name: str) -> str:
        if self.pending is not None:
            change_id, pending_wanted, sent_at = self.pending
            status = self.zone.change_status(change_id)
            if status != "INSYNC":
                if now - sent_at < PENDING_TIMEOUT:
                    return f"change {change_id} is {status}: waiting for INSYNC"
                log.warning("Route53 change %s still %s after %.0f s: reading the zone again",
                            change_id, status, now - sent_at)
                self.pending, self.synced = None, None
            else:
                self.pending = None
                self.synced, self.synced_at = pending_wanted, now
        if wanted == self.synced and now - self.synced_at < self.refresh_interval:
            return "records up to date"
        current = self.zone.read(domain_name, read_name, region, write_name)
        changes = records.diff(current, wanted)
        if not changes:
            self.synced, self.synced_at = wanted, now
            return "records up to date (zone read)"
        summary = ", ".join(f"{c.action} {c.record.type} {c.record.name}" for c in changes)
        change_id = self.zone.change(changes, "etcd appliance: " + summary)
        self.pending = (change_id, wanted, now)
        return f"sent change {change_id}: {summary}"
