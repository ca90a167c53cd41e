"""The Route53 record publisher against a real moto server.

Checks that HostedZone finds its zone by name (and refuses an unknown or ambiguous one), that the first
sync sends exactly one ChangeResourceRecordSets batch after which the zone holds exactly the desired record
sets while foreign record sets in the same zone stay untouched, that a steady state makes no Route53 call
at all, that a replaced member costs exactly one batch (DELETE of the old per-member A record with its
exact values, UPSERT of the SRV and A sets), that a hand edit is repaired once ``refresh_interval`` has
passed and not before, and that after a refused change the next sync reads the zone again; that two
regions' leaders each keep their own latency read record of a shared service name, never the other's.
"""

from __future__ import annotations

import boto3
import botocore.exceptions
import pytest
import requests

from appliance.adapters.aws.route53 import HostedZone
from appliance.agent.components.record_publisher import RecordPublisher
from appliance.model.errors import ConfigError
from appliance.model.records import PublishedMember, RecordSet
from appliance.rules import records
from appliance.sim import aws

pytestmark = pytest.mark.timeout(120)

ZONE = "sim.internal."
DOMAIN = records.domain("etcd", ZONE)  # etcd.sim.internal.
MEMBERS = [PublishedMember("i-1", "127.0.1.4"), PublishedMember("i-2", "127.0.1.5"),
           PublishedMember("i-3", "127.0.1.6")]
REPLACED = [PublishedMember("i-1", "127.0.1.4"), PublishedMember("i-2", "127.0.1.5"),
            PublishedMember("i-4", "127.0.1.7")]
WANTED = records.desired(DOMAIN, MEMBERS, 60)
FOREIGN = {
    ("other.sim.internal.", "A"): RecordSet("other.sim.internal.", "A", 300, ("10.1.2.3",)),
    ("x.etcd.sim.internal.", "TXT"): RecordSet("x.etcd.sim.internal.", "TXT", 300, ('"keep me"',)),
    ("_etcd-server._tcp.other.sim.internal.", "SRV"): RecordSet(
        "_etcd-server._tcp.other.sim.internal.", "SRV", 300, ("1 1 2380 other.sim.internal.",)),
}


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    """The endpoint of a real moto server, killed at the end of the module."""
    port = aws.free_port()
    proc = aws.start_moto(port, str(tmp_path_factory.mktemp("moto") / "moto.log"))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def session(moto_endpoint, monkeypatch):
    """A boto3 session whose clients reach moto (HostedZone builds its client without an endpoint_url, so
    ``AWS_ENDPOINT_URL`` points it there); moto is reset first so every test starts from an empty account."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    return boto3.session.Session(region_name=aws.REGION, **aws.CREDENTIALS)


def upsert(route53, zone_id: str, rs: RecordSet) -> None:
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": rs.name, "Type": rs.type, "TTL": rs.ttl,
                                                   "ResourceRecords": [{"Value": v} for v in rs.values]}}]})


def delete(route53, zone_id: str, rs: RecordSet) -> None:
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "DELETE", "ResourceRecordSet": {"Name": rs.name, "Type": rs.type, "TTL": rs.ttl,
                                                   "ResourceRecords": [{"Value": v} for v in rs.values]}}]})


@pytest.fixture
def admin(session):
    """A route53 client of our own (not the publisher's, so its calls are not counted)."""
    return session.client("route53")


@pytest.fixture
def zone_id(admin) -> str:
    """The hosted zone ``sim.internal.``, holding the foreign record sets."""
    answer = admin.create_hosted_zone(Name=ZONE, CallerReference="publisher-test")
    zone_id = answer["HostedZone"]["Id"].split("/")[-1]
    for rs in FOREIGN.values():
        upsert(admin, zone_id, rs)
    return zone_id


class Recorder:
    """The Route53 operations a HostedZone sends (one entry per HTTP request) and its change batches."""

    def __init__(self, zone: HostedZone):
        self.operations: list[str] = []
        self.batches: list[list[dict]] = []
        zone.route53.meta.events.register("before-send.route53", self._sent)
        zone.route53.meta.events.register("before-parameter-build.route53.ChangeResourceRecordSets", self._batch)

    def _sent(self, event_name: str, **_):
        self.operations.append(event_name.split(".")[-1])

    def _batch(self, params: dict, **_):
        self.batches.append(params["ChangeBatch"]["Changes"])

    def take(self) -> list[str]:
        """The operations since the last take."""
        taken, self.operations = self.operations, []
        return taken


@pytest.fixture
def zone(session, zone_id):
    return HostedZone(ZONE, timeout=5, session=session)


@pytest.fixture
def recorder(zone):
    return Recorder(zone)


def zone_records(admin, zone_id: str) -> dict:
    """Every record set of the zone except its SOA and NS, read with our own client."""
    found = {}
    kwargs = {"HostedZoneId": zone_id}
    for _ in range(20):
        page = admin.list_resource_record_sets(**kwargs)
        for item in page["ResourceRecordSets"]:
            if item["Type"] in ("SOA", "NS"):
                continue
            rs = RecordSet.of(item["Name"], item["Type"], item["TTL"], (r["Value"] for r in item["ResourceRecords"]),
                              item.get("Region", ""))
            found[rs.key] = rs
        if not page.get("IsTruncated"):
            return found
        kwargs.update(StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"])
    raise AssertionError("more than 20 pages of record sets")


def test_resolve_finds_the_zone_id(zone, zone_id, recorder):
    assert zone.resolve() == zone_id
    assert zone.resolve() == zone_id  # cached
    assert recorder.take() == ["ListHostedZonesByName"]  # one call: the second resolve is cached


def test_resolve_of_a_name_without_dot_and_in_upper_case(session, zone_id):
    assert HostedZone("SIM.Internal", timeout=5, session=session).resolve() == zone_id


def test_resolve_of_an_unknown_zone(session, zone_id):
    with pytest.raises(ConfigError, match="HOSTED_ZONE: no Route53 hosted zone is named example.org."):
        HostedZone("example.org", timeout=5, session=session).resolve()


def test_resolve_does_not_take_a_zone_whose_name_merely_starts_alike(session, admin, zone_id):
    admin.create_hosted_zone(Name="internal.", CallerReference="parent")
    with pytest.raises(ConfigError, match="no Route53 hosted zone is named x.sim.internal."):
        HostedZone("x.sim.internal.", timeout=5, session=session).resolve()


def test_resolve_of_an_ambiguous_zone(session, admin, zone_id):
    second = admin.create_hosted_zone(Name=ZONE, CallerReference="second")["HostedZone"]["Id"].split("/")[-1]
    with pytest.raises(ConfigError, match="several hosted zones are named sim.internal.") as caught:
        HostedZone(ZONE, timeout=5, session=session).resolve()
    assert zone_id in str(caught.value) and second in str(caught.value)


def test_first_sync_sends_one_batch_then_nothing(zone, zone_id, admin, recorder):
    publisher = RecordPublisher(zone, refresh_interval=300)
    outcome = publisher.sync(DOMAIN, WANTED, now=1000.0)
    assert outcome.startswith("sent change ")
    assert recorder.take() == ["ListHostedZonesByName", "ListResourceRecordSets", "ChangeResourceRecordSets"]
    assert len(recorder.batches) == 1
    assert sorted((c["Action"], c["ResourceRecordSet"]["Name"], c["ResourceRecordSet"]["Type"])
                  for c in recorder.batches[0]) == sorted(("UPSERT", name, type_) for name, type_ in WANTED)
    assert zone_records(admin, zone_id) == {**WANTED, **FOREIGN}
    assert zone.read(DOMAIN, lambda rs: records.owned(rs, DOMAIN)) == WANTED
    recorder.take()

    # the pending change is confirmed once, then nothing at all is asked
    assert publisher.sync(DOMAIN, WANTED, now=1001.0) == "records up to date"
    assert recorder.take() == ["GetChange"]
    for step in range(10):
        assert publisher.sync(DOMAIN, dict(WANTED), now=1002.0 + step * 29) == "records up to date"
    assert recorder.take() == []  # not one Route53 call in ten cycles
    assert len(recorder.batches) == 1


def test_first_sync_of_a_zone_already_right_sends_no_change(zone, zone_id, admin, recorder):
    for rs in WANTED.values():
        upsert(admin, zone_id, rs)
    publisher = RecordPublisher(zone, refresh_interval=300)
    assert publisher.sync(DOMAIN, WANTED, now=0.0) == "records up to date (zone read)"
    assert recorder.take() == ["ListHostedZonesByName", "ListResourceRecordSets"]
    assert publisher.sync(DOMAIN, WANTED, now=1.0) == "records up to date"
    assert recorder.take() == []
    assert recorder.batches == []


def test_replaced_member_costs_one_batch(zone, zone_id, admin, recorder):
    publisher = RecordPublisher(zone, refresh_interval=300)
    publisher.sync(DOMAIN, WANTED, now=0.0)
    publisher.sync(DOMAIN, WANTED, now=5.0)
    recorder.take()
    recorder.batches.clear()

    new = records.desired(DOMAIN, REPLACED, 60)
    assert publisher.sync(DOMAIN, new, now=10.0).startswith("sent change ")
    assert recorder.take() == ["ListResourceRecordSets", "ChangeResourceRecordSets"]
    assert len(recorder.batches) == 1
    old_a = WANTED[("i-3.etcd.sim.internal.", "A")]
    assert recorder.batches[0] == [
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "_etcd-client._tcp.etcd.sim.internal.", "Type": "SRV", "TTL": 60, "ResourceRecords": [
                {"Value": f"1 1 2379 i-{n}.etcd.sim.internal."} for n in (1, 2, 4)]}},
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "_etcd-server._tcp.etcd.sim.internal.", "Type": "SRV", "TTL": 60, "ResourceRecords": [
                {"Value": f"1 1 2380 i-{n}.etcd.sim.internal."} for n in (1, 2, 4)]}},
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "etcd.sim.internal.", "Type": "A", "TTL": 60, "ResourceRecords": [
                {"Value": ip} for ip in ("127.0.1.4", "127.0.1.5", "127.0.1.7")]}},
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "i-4.etcd.sim.internal.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "127.0.1.7"}]}},
        {"Action": "DELETE", "ResourceRecordSet": {
            "Name": old_a.name, "Type": "A", "TTL": old_a.ttl, "ResourceRecords": [{"Value": "127.0.1.6"}]}},
    ]
    assert zone_records(admin, zone_id) == {**new, **FOREIGN}
    assert publisher.sync(DOMAIN, new, now=15.0) == "records up to date"
    assert recorder.take() == ["GetChange"]
    assert publisher.sync(DOMAIN, new, now=20.0) == "records up to date"
    assert recorder.take() == []


def test_wanted_changed_while_a_change_is_pending(zone, zone_id, admin, recorder):
    publisher = RecordPublisher(zone, refresh_interval=300)
    publisher.sync(DOMAIN, WANTED, now=0.0)
    recorder.take()
    new = records.desired(DOMAIN, REPLACED, 60)
    assert publisher.sync(DOMAIN, new, now=1.0).startswith("sent change ")
    assert recorder.take() == ["GetChange", "ListResourceRecordSets", "ChangeResourceRecordSets"]
    assert zone_records(admin, zone_id) == {**new, **FOREIGN}


def test_hand_edits_are_repaired_after_refresh_interval(zone, zone_id, admin, recorder):
    publisher = RecordPublisher(zone, refresh_interval=300)
    publisher.sync(DOMAIN, WANTED, now=0.0)
    publisher.sync(DOMAIN, WANTED, now=5.0)  # confirms INSYNC at 5.0
    recorder.take()
    recorder.batches.clear()

    member_a = WANTED[("i-2.etcd.sim.internal.", "A")]
    delete(admin, zone_id, member_a)
    upsert(admin, zone_id, RecordSet("etcd.sim.internal.", "A", 60, ("10.9.9.9",)))
    assert member_a.key not in zone_records(admin, zone_id)

    assert publisher.sync(DOMAIN, WANTED, now=5.0 + 299.0) == "records up to date"  # not yet
    assert recorder.take() == []

    assert publisher.sync(DOMAIN, WANTED, now=5.0 + 300.0).startswith("sent change ")
    assert recorder.take() == ["ListResourceRecordSets", "ChangeResourceRecordSets"]
    assert [(c["Action"], c["ResourceRecordSet"]["Name"]) for c in recorder.batches[0]] == [
        ("UPSERT", "etcd.sim.internal."), ("UPSERT", "i-2.etcd.sim.internal.")]
    assert zone_records(admin, zone_id) == {**WANTED, **FOREIGN}

    # an unchanged zone read on refresh costs one read and no change
    publisher.sync(DOMAIN, WANTED, now=310.0)
    recorder.take()
    assert publisher.sync(DOMAIN, WANTED, now=310.0 + 300.0) == "records up to date (zone read)"
    assert recorder.take() == ["ListResourceRecordSets"]
    assert len(recorder.batches) == 1


def test_foreign_records_are_never_touched(zone, zone_id, admin, recorder):
    """Even a publisher told to publish other members, several times over, leaves them alone."""
    publisher = RecordPublisher(zone, refresh_interval=1)
    for step, members in enumerate([MEMBERS, REPLACED, MEMBERS[:1], MEMBERS]):
        publisher.sync(DOMAIN, records.desired(DOMAIN, members, 30), now=step * 10.0)
        publisher.sync(DOMAIN, records.desired(DOMAIN, members, 30), now=step * 10.0 + 5)
    held = zone_records(admin, zone_id)
    for key, rs in FOREIGN.items():
        assert held[key] == rs
    assert held == {**records.desired(DOMAIN, MEMBERS, 30), **FOREIGN}
    for batch in recorder.batches:
        for change in batch:
            assert (change["ResourceRecordSet"]["Name"], change["ResourceRecordSet"]["Type"]) not in FOREIGN


def test_a_refused_change_raises_and_the_next_sync_reads_the_zone(zone, zone_id, admin, recorder):
    publisher = RecordPublisher(zone, refresh_interval=300)
    publisher.sync(DOMAIN, WANTED, now=0.0)
    publisher.sync(DOMAIN, WANTED, now=1.0)
    recorder.take()

    outside = RecordSet("etcd.example.org.", "A", 60, ("127.0.1.4",))  # not in zone sim.internal.
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        publisher.sync(DOMAIN, {**WANTED, outside.key: outside}, now=2.0)
    assert caught.value.response["Error"]["Code"] == "InvalidChangeBatch"
    assert recorder.take() == ["ListResourceRecordSets", "ChangeResourceRecordSets"]
    assert publisher.pending is None
    assert zone_records(admin, zone_id) == {**WANTED, **FOREIGN}  # the batch was refused as a whole

    # within the backoff (5 s after a first failure) nothing is sent at all
    assert "next attempt in" in publisher.sync(DOMAIN, WANTED, now=3.0)
    assert recorder.take() == []
    # back to what was synced before, well within refresh_interval: the zone is read again all the same
    assert publisher.sync(DOMAIN, WANTED, now=8.0) == "records up to date (zone read)"
    assert recorder.take() == ["ListResourceRecordSets"]
    assert publisher.sync(DOMAIN, WANTED, now=9.0) == "records up to date"
    assert recorder.take() == []


def test_failures_back_off_doubling_up_to_five_minutes(zone, recorder):
    publisher = RecordPublisher(zone, refresh_interval=300)
    outside = RecordSet("etcd.example.org.", "A", 60, ("127.0.1.4",))  # refused every time
    now, gaps = 0.0, []
    for _ in range(9):
        with pytest.raises(botocore.exceptions.ClientError):
            publisher.sync(DOMAIN, {**WANTED, outside.key: outside}, now=now)
        gaps.append(publisher.retry_at - now)
        now = publisher.retry_at
    assert gaps == [5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_a_failed_read_raises_and_the_next_sync_reads_again(zone, zone_id, admin, recorder, moto_endpoint):
    publisher = RecordPublisher(zone, refresh_interval=300)
    publisher.sync(DOMAIN, WANTED, now=0.0)
    publisher.sync(DOMAIN, WANTED, now=1.0)
    recorder.take()
    # the zone disappears (moto is reset): reading it fails
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()

    new = records.desired(DOMAIN, REPLACED, 60)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        publisher.sync(DOMAIN, new, now=2.0)
    assert caught.value.response["Error"]["Code"] == "NoSuchHostedZone"
    assert recorder.take() == ["ListResourceRecordSets"]
    assert publisher.synced is None
    with pytest.raises(botocore.exceptions.ClientError):
        publisher.sync(DOMAIN, WANTED, now=8.0)  # the old wanted is not trusted either: read again
    assert recorder.take() == ["ListResourceRecordSets"]


def test_the_switchover_points_the_write_record_at_the_new_cluster(session, admin, zone_id):
    from appliance.commands.switchover import write_record_repointer

    for name, target in (("a", "i-1.a.sim.internal."), ("b", "i-2.b.sim.internal.")):
        upsert(admin, zone_id, RecordSet(f"_etcd-client._tcp.{name}.sim.internal.", "SRV", 60,
                                         (f"1 1 2379 {target}",)))
    for new_domain, target in (("a.sim.internal", "i-1.a"), ("b.sim.internal.", "i-2.b"), ("b.sim.internal", "i-2.b")):
        said = write_record_repointer(ZONE, "etcd.sim.internal", new_domain, 5, session=session)()
        assert said == f"_etcd-client-rw._tcp.etcd.sim.internal. -> 1 1 2379 {target}.sim.internal."
        written = zone_records(admin, zone_id)[("_etcd-client-rw._tcp.etcd.sim.internal.", "SRV")]
        assert written.values == (f"1 1 2379 {target}.sim.internal.",)
    with pytest.raises(ConfigError, match="has no SRV record to copy"):
        write_record_repointer(ZONE, "etcd.sim.internal", "c.sim.internal", 5, session=session)()


def test_two_regions_keep_their_own_read_record_of_a_shared_service(session, zone_id, admin):
    """Two regional clusters (domains a. and b.) of the service "config": each leader publishes its
    region's latency record _etcd-client._tcp.config.<zone> and leaves the other region's alone, also
    when its members change."""
    read = records.read_record_name("config", ZONE)
    domains = {"eu-central-1": records.domain("a", ZONE), "eu-west-1": records.domain("b", ZONE)}
    publishers = {region: RecordPublisher(HostedZone(ZONE, timeout=5, session=session)) for region in domains}

    def publish(region: str, members: list[PublishedMember], now: float) -> dict:
        wanted = records.desired(domains[region], members, 60, read_name=read, region=region)
        publishers[region].sync(domains[region], wanted, now=now, read_name=read, region=region)
        return wanted

    central = publish("eu-central-1", MEMBERS, 0.0)
    west = publish("eu-west-1", [PublishedMember("i-9", "127.0.2.4")], 0.0)
    held = zone_records(admin, zone_id)
    assert held == {**central, **west, **FOREIGN}
    assert held[(read, "SRV", "eu-west-1")].values == ("1 1 2379 i-9.b.sim.internal.",)
    # A replacement in eu-central-1: its read record follows, eu-west-1's stays.
    central = publish("eu-central-1", REPLACED, 400.0)  # past the refresh interval: the zone is read again
    publish("eu-central-1", REPLACED, 401.0)  # GetChange: INSYNC
    held = zone_records(admin, zone_id)
    assert held == {**central, **west, **FOREIGN}
    assert "i-4.a.sim.internal." in " ".join(held[(read, "SRV", "eu-central-1")].values)
    # eu-west-1's leader reads the zone again and has nothing to change: the other region's record
    # is not among the sets it owns.
    publishers["eu-west-1"].sync(domains["eu-west-1"], west, now=1.0, read_name=read, region="eu-west-1")
    assert publishers["eu-west-1"].sync(domains["eu-west-1"], west, now=800.0, read_name=read,
                                        region="eu-west-1") == "records up to date (zone read)"
