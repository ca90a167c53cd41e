"""Route53 listings of unexpected shapes, as boto3 would return their dicts: the reader never crashes, the
publisher never deletes what it could not read, and a reader for a decision takes a malformed set as unknown.

Decisions: a page, or a record set without a name or type, makes the whole listing unknown (MalformedListing,
a BotoCoreError: the publisher does nothing that cycle). A record set with a name but a malformed body is left
out of the publisher's read with a warning (never deleted; at most the set wanted under that name is UPSERTed
over it, as over any hand edit), while ``sets_named``, ``latency_sets`` and ``addresses`` refuse the listing.
"""

from __future__ import annotations

import botocore.exceptions
import pytest

from appliance.adapters.aws.route53 import HostedZone, MalformedListing, MalformedRecordSet, parse_page, record_set
from appliance.agent.components.record_publisher import RecordPublisher
from appliance.model.records import PublishedMember, RecordSet, fqdn
from appliance.rules import records

DOMAIN = "etcd.example.org."
SRV = "_etcd-client._tcp.etcd.example.org."
READ = "_etcd-client._tcp.svc.example.org."


def item(name=SRV, type_="SRV", ttl=60, values=("1 1 2379 i-1.etcd.example.org.",), **more) -> dict:
    """A ListResourceRecordSets item in boto3's shape."""
    return {"Name": name, "Type": type_, "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values], **more}


def without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


UNDERSTOOD = [
    ("an SRV set", item(), RecordSet(SRV, "SRV", 60, ("1 1 2379 i-1.etcd.example.org.",))),
    ("an A set", item(DOMAIN, "A", values=("127.0.1.5", "10.0.0.1")), RecordSet(DOMAIN, "A", 60,
                                                                                  ("10.0.0.1", "127.0.1.5"))),
    ("a latency set", item(READ, SetIdentifier="eu-west-1", Region="eu-west-1"),
     RecordSet(READ, "SRV", 60, ("1 1 2379 i-1.etcd.example.org.",), "eu-west-1")),
    ("TTL 0", item(ttl=0), RecordSet(SRV, "SRV", 0, ("1 1 2379 i-1.etcd.example.org.",))),
    ("a TXT set: values not checked", item("x." + DOMAIN, "TXT", values=('"anything at all"',)),
     RecordSet("x." + DOMAIN, "TXT", 60, ('"anything at all"',))),
    ("an alias: not ours", without(item(DOMAIN, "A"), "ResourceRecords", "TTL") | {"AliasTarget": {}}, None),
    ("a traffic policy record: not ours", without(item(), "ResourceRecords") | {"TrafficPolicyInstanceId": "t"},
     None),
    ("a weighted set: not ours", item(SetIdentifier="blue", Weight=10), None),
]


@pytest.mark.parametrize("given, expected", [c[1:] for c in UNDERSTOOD], ids=[c[0] for c in UNDERSTOOD])
def test_a_record_set_as_route53_gives_it(given, expected):
    assert record_set(given) == expected


MALFORMED = [
    ("no ResourceRecords and no alias", without(item(), "ResourceRecords"), "no ResourceRecords"),
    ("ResourceRecords empty", item(values=()), "not a list of values"),
    ("ResourceRecords a dict", item() | {"ResourceRecords": {"Value": "1 1 2379 x."}}, "not a list of values"),
    ("a value that is not a string", item() | {"ResourceRecords": [{"Value": 5}]}, "not a list of values"),
    ("a record without Value", item() | {"ResourceRecords": [{}]}, "not a list of values"),
    ("TTL missing", without(item(), "TTL"), "TTL is None"),
    ("TTL a string", item(ttl="60"), "TTL is '60'"),
    ("TTL true", item(ttl=True), "TTL is True"),
    ("TTL negative", item(ttl=-1), "TTL is -1"),
    ("TTL a float", item(ttl=60.5), "TTL is 60.5"),
    ("SRV of three fields", item(values=("1 2379 i-1.etcd.example.org.",)), "is not an SRV value"),
    ("SRV with a word for a port", item(values=("1 1 http i-1.etcd.example.org.",)), "is not an SRV value"),
    ("SRV with a port over 65535", item(values=("1 1 70000 i-1.etcd.example.org.",)), "is not an SRV value"),
    ("SRV with port 0", item(values=("1 1 0 i-1.etcd.example.org.",)), "is not an SRV value"),
    ("SRV with a negative weight", item(values=("1 -1 2379 i-1.etcd.example.org.",)), "is not an SRV value"),
    ("one bad SRV value among good ones", item(values=("1 1 2379 i-1.etcd.example.org.", "junk")),
     "'junk' is not an SRV value"),
    ("A that is a host name", item(DOMAIN, "A", values=("i-1.etcd.example.org.",)), "is not an A value"),
    ("A that is IPv6", item(DOMAIN, "A", values=("::1",)), "is not an A value"),
    ("A with a leading zero", item(DOMAIN, "A", values=("127.0.1.05",)), "is not an A value"),
    ("a latency set whose region is not one", item(READ, SetIdentifier="mars", Region="mars"),
     "Region is 'mars'"),
]


@pytest.mark.parametrize("given, words", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_a_malformed_record_set_is_refused_in_one_line(given, words):
    with pytest.raises(MalformedRecordSet) as caught:
        record_set(given)
    assert words in str(caught.value) and "\n" not in str(caught.value)


PAGES = [
    ("the last page", {"ResourceRecordSets": [item()], "IsTruncated": False}, ([item()], None)),
    ("an empty zone's page", {"ResourceRecordSets": []}, ([], None)),
    ("a truncated page", {"ResourceRecordSets": [], "IsTruncated": True, "NextRecordName": DOMAIN,
                          "NextRecordType": "A"}, ([], {"StartRecordName": DOMAIN, "StartRecordType": "A"})),
    ("a truncated page among latency sets", {"ResourceRecordSets": [], "IsTruncated": True, "NextRecordName": READ,
                                             "NextRecordType": "SRV", "NextRecordIdentifier": "eu-west-1"},
     ([], {"StartRecordName": READ, "StartRecordType": "SRV", "StartRecordIdentifier": "eu-west-1"})),
]


@pytest.mark.parametrize("page, expected", [c[1:] for c in PAGES], ids=[c[0] for c in PAGES])
def test_a_page_as_route53_gives_it(page, expected):
    assert parse_page(page) == expected


BAD_PAGES = [
    ("not a dict", [item()], "without a list"),
    ("ResourceRecordSets a dict", {"ResourceRecordSets": item()}, "without a list"),
    ("a record set that is a string", {"ResourceRecordSets": ["x"]}, "without a name or type"),
    ("a record set without Name", {"ResourceRecordSets": [without(item(), "Name")]}, "without a name or type"),
    ("a record set whose Type is a number", {"ResourceRecordSets": [item(type_=33)]}, "without a name or type"),
    ("IsTruncated a string", {"ResourceRecordSets": [], "IsTruncated": "false"}, "IsTruncated is 'false'"),
    ("truncated without NextRecordName", {"ResourceRecordSets": [], "IsTruncated": True, "NextRecordType": "A"},
     "does not say where"),
    ("truncated with a null identifier", {"ResourceRecordSets": [], "IsTruncated": True, "NextRecordName": DOMAIN,
                                          "NextRecordType": "A", "NextRecordIdentifier": None}, "does not say where"),
]


@pytest.mark.parametrize("page, words", [c[1:] for c in BAD_PAGES], ids=[c[0] for c in BAD_PAGES])
def test_a_malformed_page_makes_the_listing_unknown(page, words):
    with pytest.raises(MalformedListing) as caught:
        parse_page(page)
    assert words in str(caught.value) and isinstance(caught.value, botocore.exceptions.BotoCoreError)


class PagedZone(HostedZone):
    """A HostedZone whose ListResourceRecordSets answers are the given items, in Route53's order from the
    requested start; every other call is recorded. Nothing of boto3 is built or called."""

    def __init__(self, items: list, page: dict | None = None):
        self.name, self.zone_id, self.route53 = "example.org.", "Z1", None
        self.items, self.page, self.calls = items, page, []

    def _call(self, operation: str, **kwargs):
        self.calls.append(operation)
        if operation == "change_resource_record_sets":
            self.sent = kwargs["ChangeBatch"]["Changes"]
            return {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING"}}
        assert operation == "list_resource_record_sets"
        if self.page is not None:
            return self.page
        start = order(kwargs["StartRecordName"], kwargs.get("StartRecordType", ""))
        listed = [i for i in self.items if order(str(i.get("Name")), str(i.get("Type"))) >= start]
        return {"ResourceRecordSets": sorted(listed, key=lambda i: order(str(i.get("Name")), str(i.get("Type")))),
                "IsTruncated": False}


def order(name: str, type_: str) -> tuple:
    """Route53's listing order: by the name's labels from the right, then by type."""
    return tuple(reversed(fqdn(name).rstrip(".").split("."))), type_


MEMBERS = [PublishedMember("i-1", "127.0.1.4"), PublishedMember("i-2", "127.0.1.5")]
WANTED = records.desired(DOMAIN, MEMBERS, 60)


def zone_as_wanted() -> list[dict]:
    """The zone's items as the publisher last made them."""
    return [item(rs.name, rs.type, rs.ttl, rs.values) for rs in WANTED.values()]


def owned(rs: RecordSet) -> bool:
    return records.owned(rs, DOMAIN)


def test_the_publishers_read_leaves_a_malformed_set_out_with_a_warning(caplog):
    gone = item("i-9." + DOMAIN, "A", values=("not-an-address",))  # a departed member's record, hand-broken
    zone = PagedZone(zone_as_wanted() + [gone])
    assert zone.read(DOMAIN, owned) == WANTED
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "A i-9.etcd.example.org.: 'not-an-address' is not an A value" in caplog.records[0].getMessage()


def test_the_publisher_never_deletes_a_set_it_could_not_read():
    broken = [i if i["Name"] != "i-2." + DOMAIN else item("i-2." + DOMAIN, "A", ttl="60", values=("127.0.1.5",))
              for i in zone_as_wanted()]
    zone = PagedZone(broken)
    outcome = RecordPublisher(zone).sync(DOMAIN, records.desired(DOMAIN, MEMBERS[:1], 60), now=0.0)
    deleted = {c["ResourceRecordSet"]["Name"] for c in zone.sent if c["Action"] == "DELETE"}
    assert "i-2." + DOMAIN not in deleted and "sent change C1" in outcome
    assert all(c["ResourceRecordSet"]["Name"] != "i-2." + DOMAIN for c in zone.sent)


def test_the_publisher_repairs_a_malformed_set_it_wants_by_upsert():
    broken = [i if i["Name"] != SRV else item(SRV, "SRV", values=("garbage",)) for i in zone_as_wanted()]
    zone = PagedZone(broken)
    RecordPublisher(zone).sync(DOMAIN, WANTED, now=0.0)
    assert [(c["Action"], c["ResourceRecordSet"]["Name"]) for c in zone.sent] == [("UPSERT", SRV)]


def test_a_malformed_page_makes_the_publisher_do_nothing_this_cycle():
    zone = PagedZone([], page={"ResourceRecordSets": [{"Type": "A"}], "IsTruncated": False})
    publisher = RecordPublisher(zone)
    with pytest.raises(botocore.exceptions.BotoCoreError):
        publisher.sync(DOMAIN, WANTED, now=0.0)
    assert zone.calls == ["list_resource_record_sets"] and publisher.synced is None


@pytest.mark.parametrize("broken", [
    item(READ, SetIdentifier="eu-west-1", Region="eu-west-1", values=("1 1 2379",)),
    item(READ, SetIdentifier="eu-west-1", Region="eu-west-1", ttl=None),
    without(item(READ, SetIdentifier="eu-west-1", Region="eu-west-1"), "ResourceRecords"),
], ids=["an SRV value of three fields", "TTL null", "no ResourceRecords"])
def test_a_malformed_read_record_makes_the_latency_sets_unknown(broken):
    fine = item(READ, SetIdentifier="eu-central-1", Region="eu-central-1")
    with pytest.raises(MalformedListing):
        PagedZone([fine, broken]).latency_sets(READ)
    assert PagedZone([fine]).latency_sets(READ) == {"eu-central-1": ("1 1 2379 i-1.etcd.example.org.",)}


def test_a_malformed_a_record_makes_the_addresses_unknown():
    hosts = ["i-1." + DOMAIN, "i-2." + DOMAIN]
    good = [item(hosts[0], "A", values=("127.0.1.4",)), item(hosts[1], "A", values=("127.0.1.5",))]
    assert PagedZone(good).addresses(hosts) == {hosts[0]: "127.0.1.4", hosts[1]: "127.0.1.5"}
    with pytest.raises(MalformedListing):
        PagedZone([good[0], item(hosts[1], "A", values=("127.0.1",))]).addresses(hosts)


def test_a_malformed_set_of_another_type_at_the_name_does_not_matter_to_sets_named():
    txt = item(SRV, "TXT", ttl="x", values=('"note"',))
    assert len(PagedZone([item(), txt]).sets_named(SRV, "SRV")) == 1
