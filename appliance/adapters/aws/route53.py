"""Route53: find the hosted zone, read record sets, change them in one batch, ask whether a change is INSYNC.

Which record sets are the cluster's, and when to change them, is the records rule's and the
agent's records component's (:mod:`appliance.agent.components.records`); this module only talks
to Route53.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import boto3

from appliance.adapters.aws.common import call, client_config
from appliance.model.errors import ConfigError
from appliance.model.records import Change, RecordSet, fqdn


class HostedZone:
    """One Route53 hosted zone, found by name.

    Args:
        zone_name: the zone's name, e.g. ``example.org.`` (the trailing dot is optional).
        timeout: connect and read timeout in seconds of every call.
        session: a boto3 session (default: a new one; ``AWS_ENDPOINT_URL`` applies).
    """

    def __init__(self, zone_name: str, timeout: float = 3.0, session: boto3.session.Session | None = None):
        session = session or boto3.session.Session()
        self.name = fqdn(zone_name)
        self.route53 = session.client("route53", config=client_config(timeout))
        self.zone_id: str | None = None

    def _call(self, operation: str, **kwargs):
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
                       if fqdn(z["Name"]) == self.name]
            if not matches:
                raise ConfigError(f"HOSTED_ZONE: no Route53 hosted zone is named {self.name}")
            if len(matches) > 1:
                raise ConfigError(f"HOSTED_ZONE: several hosted zones are named {self.name} "
                                  f"({', '.join(matches)})")
            self.zone_id = matches[0]
        return self.zone_id

    def read(self, start: str, keep: Callable[[RecordSet], bool],
             srv_names: Iterable[str] = ()) -> dict[tuple[str, ...], RecordSet]:
        """The record sets ``keep`` accepts: those from the name ``start`` to the end of the zone, and
        the SRV sets named each of ``srv_names`` (one more listing each, starting at that name).

        Raises: as :meth:`resolve`, and for ListResourceRecordSets.
        """
        found = self._list(fqdn(start), None, keep)
        for name in srv_names:
            found.update(self._list(fqdn(name), "SRV", keep, stop_after=fqdn(name)))
        return found

    def sets_named(self, name: str, type_: str) -> tuple[RecordSet, ...]:
        """Every record set named ``name`` of type ``type_`` (simple and latency ones), in one short
        listing that starts at that name: no assumption about the zone's order.

        Raises: as :meth:`resolve`, and for ListResourceRecordSets.
        """
        name = fqdn(name)
        found = self._list(name, type_, lambda rs: rs.name == name and rs.type == type_, stop_after=name)
        return tuple(found.values())

    def latency_sets(self, read_name: str) -> dict[str, tuple[str, ...]]:
        """The read record's latency sets: region -> SRV values.

        Raises: as :meth:`resolve`, and for ListResourceRecordSets.
        """
        return {rs.region: rs.values for rs in self.sets_named(read_name, "SRV") if rs.region}

    def addresses(self, hosts: Iterable[str]) -> dict[str, str]:
        """host fqdn -> the first IPv4 address of its A record, for the hosts that have one
        (one short listing per host).

        Raises: as :meth:`resolve`, and for ListResourceRecordSets.
        """
        found: dict[str, str] = {}
        for host in sorted({fqdn(h) for h in hosts}):
            found.update({rs.name: rs.values[0] for rs in self.sets_named(host, "A") if not rs.region and rs.values})
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
                if stop_after is not None and fqdn(item["Name"]) != stop_after:
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
