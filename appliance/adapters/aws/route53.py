"""Route53: find the hosted zone, read record sets, change them in one batch, ask whether a change is INSYNC.

Which record sets are the cluster's, and when to change them, is the records rule's and the
agent's records component's (:mod:`appliance.agent.components.records`); this module only talks
to Route53.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Callable, Iterable, Mapping, Sequence

import boto3
import botocore.exceptions

from appliance.adapters.aws.common import call, client_config
from appliance.model.errors import ConfigError
from appliance.model.formats import is_region
from appliance.model.records import Change, RecordSet, fqdn

log = logging.getLogger(__name__)

_TTL_LIMIT = 2 ** 31  # Route53's TTLs are 0 to 2147483647 seconds


class MalformedListing(botocore.exceptions.BotoCoreError):
    """Route53 answered ListResourceRecordSets with something this reader cannot take as a listing: the
    listing is unknown. A BotoCoreError, so that every caller treats it as Route53 not answering."""

    fmt = "Route53 ListResourceRecordSets answered something unexpected: {problem}"


class MalformedRecordSet(ValueError):
    """One listed record set has a shape Route53 never gives (the message names it, in one line)."""


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

        A record set whose shape is malformed (see :func:`record_set`) is left out with a warning: the
        publisher then neither deletes it (it cannot name its values) nor compares it, and at most
        UPSERTs the set it wants under that name, as it would over any hand edit.

        Raises: as :meth:`resolve`, and for ListResourceRecordSets; MalformedListing: a page, or a record
            set's name or type, could not be read.
        """
        found = self._list(fqdn(start), None, keep, strict=False)
        for name in srv_names:
            found.update(self._list(fqdn(name), "SRV", keep, stop_after=fqdn(name), strict=False))
        return found

    def sets_named(self, name: str, type_: str) -> tuple[RecordSet, ...]:
        """Every record set named ``name`` of type ``type_`` (simple and latency ones), in one short
        listing that starts at that name: no assumption about the zone's order.

        Raises: as :meth:`resolve`, and for ListResourceRecordSets; MalformedListing: one of those sets
            (or the listing) is malformed: what the name holds is unknown, never guessed from the rest.
        """
        name = fqdn(name)
        found = self._list(name, type_, lambda rs: rs.name == name and rs.type == type_, stop_after=name)
        return tuple(found.values())

    def latency_sets(self, read_name: str) -> dict[str, tuple[str, ...]]:
        """The read record's latency sets: region -> SRV values.

        Raises: as :meth:`sets_named`.
        """
        return {rs.region: rs.values for rs in self.sets_named(read_name, "SRV") if rs.region}

    def addresses(self, hosts: Iterable[str]) -> dict[str, str]:
        """host fqdn -> the first IPv4 address of its A record, for the hosts that have one
        (one short listing per host).

        Raises: as :meth:`sets_named`.
        """
        found: dict[str, str] = {}
        for host in sorted({fqdn(h) for h in hosts}):
            found.update({rs.name: rs.values[0] for rs in self.sets_named(host, "A") if not rs.region and rs.values})
        return found

    def _list(self, start: str, start_type: str | None, keep: Callable[[RecordSet], bool],
              stop_after: str | None = None, strict: bool = True) -> dict[tuple[str, ...], RecordSet]:
        """ListResourceRecordSets from ``start`` on (to the end, or past the name ``stop_after``). A malformed
        record set raises MalformedListing when ``strict`` (or when it is of ``start_type``), else it is
        left out with a warning."""
        found: dict[tuple[str, ...], RecordSet] = {}
        kwargs = {"HostedZoneId": self.resolve(), "StartRecordName": start}
        if start_type:
            kwargs["StartRecordType"] = start_type
        for _ in range(100):  # 100 pages of 300: far beyond any zone this cluster shares
            items, following = parse_page(self._call("list_resource_record_sets", **kwargs))
            for item in items:
                if stop_after is not None and fqdn(item["Name"]) != stop_after:
                    return found
                try:
                    rs = record_set(item)
                except MalformedRecordSet as exc:
                    if strict and item["Type"] == (start_type or item["Type"]):
                        raise MalformedListing(problem=str(exc)) from None
                    log.warning("Route53: %s: left out of the listing (neither compared nor deleted)", exc)
                    continue
                if rs is not None and keep(rs):
                    found[rs.key] = rs
            if following is None:
                break
            kwargs.update(following)
            if "StartRecordIdentifier" not in following:
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


def parse_page(page: object) -> tuple[list[dict], dict | None]:
    """One ListResourceRecordSets answer: its record sets (each an object with a string Name and Type), and
    the arguments that ask for the next page (StartRecordName, StartRecordType and, where given,
    StartRecordIdentifier), None on the last page.

    Raises:
        MalformedListing: the page has another shape; where one record set has no name or type, nothing
            says where it belongs (nor whether a listing that stops at a name has ended), so the listing is
            unknown.
    """
    if not isinstance(page, dict) or not isinstance(page.get("ResourceRecordSets", []), list):
        raise MalformedListing(problem="a page without a list of ResourceRecordSets")
    items = page.get("ResourceRecordSets", [])
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("Name"), str) and item["Name"]
                and isinstance(item.get("Type"), str) and item["Type"]):
            raise MalformedListing(problem=f"a record set without a name or type: {_shown(item)}")
    truncated = page.get("IsTruncated", False)
    if not isinstance(truncated, bool):
        raise MalformedListing(problem=f"IsTruncated is {_shown(truncated)}")
    if not truncated:
        return items, None
    following = {"StartRecordName": page.get("NextRecordName"), "StartRecordType": page.get("NextRecordType")}
    if "NextRecordIdentifier" in page:
        following["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    if not all(isinstance(v, str) and v for v in following.values()):
        # Reading on from a guess could skip record sets; ending here would take a part for the whole.
        raise MalformedListing(problem="a truncated page that does not say where the next one starts")
    return items, following


def record_set(item: Mapping) -> RecordSet | None:
    """A ListResourceRecordSets item (with a string Name and Type, see :func:`parse_page`) as a
    :class:`RecordSet`; None for what the appliance never writes (alias records, traffic policy records;
    weighted, failover or geolocation sets; latency sets whose SetIdentifier is not their region).

    Raises:
        MalformedRecordSet: ResourceRecords is not a non-empty list of string values, TTL is not an integer
            of Route53's range, a latency set's region is not a region name, an A value is not an IPv4
            address, or an SRV value is not "priority weight port target" (RFC 2782, as Route53 takes it).
    """
    where = f"{item['Type']} {item['Name']}"
    if "ResourceRecords" not in item:
        if "AliasTarget" in item or "TrafficPolicyInstanceId" in item:
            return None
        raise MalformedRecordSet(f"{where} has no ResourceRecords and is no alias")
    listed = item["ResourceRecords"]
    if not isinstance(listed, list) or not listed or not all(
            isinstance(r, dict) and isinstance(r.get("Value"), str) and r["Value"] for r in listed):
        raise MalformedRecordSet(f"{where}: ResourceRecords is {_shown(listed)}, not a list of values")
    region = ""
    if "SetIdentifier" in item:
        if item.get("Region") != item["SetIdentifier"]:
            return None
        region = item["Region"]
        if not is_region(region):
            raise MalformedRecordSet(f"{where}: Region is {_shown(region)}, not a region name")
    ttl = item.get("TTL")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl < _TTL_LIMIT:
        raise MalformedRecordSet(f"{where}: TTL is {_shown(ttl)}, not a number of seconds")
    values = [r["Value"] for r in listed]
    wrong = next((v for v in values if not _value_fits(item["Type"], v)), None)
    if wrong is not None:
        raise MalformedRecordSet(f"{where}: {_shown(wrong)} is not an {item['Type']} value")
    return RecordSet.of(item["Name"], item["Type"], ttl, values, region)


def _value_fits(type_: str, value: str) -> bool:
    """``value`` has the text form of a ``type_`` value (checked for the types the appliance writes)."""
    if type_ == "A":
        try:
            return str(ipaddress.IPv4Address(value)) == value
        except ValueError:
            return False
    if type_ == "SRV":
        parts = value.split()
        # priority weight port target; port 0 would name no service (and no URL a mirror could reach)
        return (len(parts) == 4 and all(p.isascii() and p.isdigit() and int(p) < 65536 for p in parts[:3])
                and int(parts[2]) > 0)
    return True


def _shown(value: object) -> str:
    """``value`` for a one-line message: its repr, cut short (it comes from elsewhere)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _route53_form(record: RecordSet) -> dict:
    """``record`` as a ChangeResourceRecordSets ResourceRecordSet."""
    form = {"Name": record.name, "Type": record.type, "TTL": record.ttl,
            "ResourceRecords": [{"Value": v} for v in record.values]}
    if record.region:
        form.update(SetIdentifier=record.region, Region=record.region)
    return form
