"""The records component (appliance/agent/components/records.py, record_publisher.py) on a fake hosted zone:
the publisher's Route53 calls (one read and one batch, GetChange while PENDING, nothing while in sync, back-off after
failures) and what the component publishes, the write record included. What the records should be is the
rule's (tests/unit/rules/test_records.py)."""

from __future__ import annotations

import dataclasses

import pytest
from botocore.exceptions import ClientError

from appliance.agent.components.record_publisher import BACKOFF_FIRST, BACKOFF_MAX, PENDING_TIMEOUT, RecordPublisher
from appliance.agent.components.records import Records
from appliance.model.errors import AwsPermissionError
from appliance.model.instances import Instance, Listing
from appliance.model.members import LocalData, MemberHealth
from appliance.model.modes import Mode
from appliance.model.observation import Observation
from appliance.model.records import PublishedMember
from appliance.rules import records
from tests.unit.agent.fakes import FakeZone, client_error, cluster, member, settings

DOMAIN = "etcd.example.org."
ONE = records.desired(DOMAIN, [PublishedMember("i-1", "127.0.1.4")], 60)
TWO = records.desired(DOMAIN, [PublishedMember("i-1", "127.0.1.4"), PublishedMember("i-2", "127.0.1.5")], 60)
WRITE_RECORD = "_etcd-client-rw._tcp.svc.example.org."


class Zone(FakeZone):
    """Counts GetChange and every read attempt (a failed one too)."""

    def __init__(self):
        super().__init__("example.org.")
        self.status_asks = self.attempts = 0

    def read(self, start, keep, srv_names=()):
        self.attempts += 1
        return super().read(start, keep, srv_names)

    def change_status(self, change_id):
        self.status_asks += 1
        return super().change_status(change_id)


def calls(zone: Zone) -> tuple[int, int, int]:
    """(zone reads, batches sent, GetChange asks)."""
    return zone.attempts, len(zone.batches), zone.status_asks


def test_the_first_sync_reads_once_and_sends_one_batch():
    zone = Zone()
    outcome = RecordPublisher(zone).sync(DOMAIN, ONE, now=0.0)
    assert outcome.startswith("sent change C1: UPSERT SRV _etcd-client._tcp.etcd.example.org.")
    assert calls(zone) == (1, 1, 0) and zone.sets == ONE


def test_while_pending_only_getchange_is_asked_and_once_insync_nothing_until_the_refresh():
    zone = Zone()
    publisher = RecordPublisher(zone, refresh_interval=300.0)
    publisher.sync(DOMAIN, ONE, now=0.0)
    zone.insync = False
    for now in (5.0, 10.0):
        assert publisher.sync(DOMAIN, ONE, now=now) == "change C1 is PENDING: waiting for INSYNC"
    assert calls(zone) == (1, 1, 2)
    zone.insync = True
    assert publisher.sync(DOMAIN, ONE, now=15.0) == "records up to date"
    for now in (20.0, 100.0, 314.0):
        assert publisher.sync(DOMAIN, ONE, now=now) == "records up to date"
    assert calls(zone) == (1, 1, 3)  # in sync and unchanged: Route53 is not asked at all
    assert publisher.sync(DOMAIN, ONE, now=315.0) == "records up to date (zone read)"
    assert calls(zone) == (2, 1, 3)


def test_changed_records_are_read_and_sent_at_once():
    zone = Zone()
    publisher = RecordPublisher(zone)
    publisher.sync(DOMAIN, ONE, now=0.0)
    publisher.sync(DOMAIN, ONE, now=5.0)
    assert publisher.sync(DOMAIN, TWO, now=10.0).startswith("sent change C2")
    assert calls(zone) == (2, 2, 1) and zone.sets == TWO


def test_a_change_pending_too_long_is_given_up_and_the_zone_read_again():
    zone = Zone()
    publisher = RecordPublisher(zone)
    publisher.sync(DOMAIN, ONE, now=0.0)
    zone.insync = False
    assert "waiting for INSYNC" in publisher.sync(DOMAIN, ONE, now=PENDING_TIMEOUT - 1)
    assert publisher.sync(DOMAIN, ONE, now=PENDING_TIMEOUT) == "records up to date (zone read)"
    assert calls(zone) == (2, 1, 2)


def test_route53_failures_back_off_doubling_up_to_the_maximum():
    zone = Zone()
    zone.fail = client_error()
    publisher = RecordPublisher(zone)
    now, delays = 0.0, []
    for _ in range(8):
        with pytest.raises(ClientError, match="Throttling"):
            publisher.sync(DOMAIN, ONE, now=now)
        attempts = zone.attempts
        # Before the next attempt is due, Route53 is not asked.
        assert "next attempt in" in publisher.sync(DOMAIN, ONE, now=publisher.retry_at - 0.5)
        assert zone.attempts == attempts
        delays.append(publisher.retry_at - now)
        now = publisher.retry_at
    assert delays == [BACKOFF_FIRST * 2 ** n for n in range(6)] + [BACKOFF_MAX, BACKOFF_MAX]
    zone.fail = None
    assert publisher.sync(DOMAIN, ONE, now=now).startswith("sent change")
    assert publisher.failures == 0


ME = "i-1"
M1, M2 = member(1, ME, "127.0.1.4"), member(2, "i-2", "127.0.1.5")
LEADING = Observation(instance_id=ME, peer_url="http://127.0.1.4:2380", local=LocalData(True, 1), etcd_running=True,
                      listing=Listing(True, (Instance(ME, "127.0.1.4", "InService"),
                                             Instance("i-2", "127.0.1.5", "InService"))),
                      cluster=cluster(M1, M2), is_leader=True,
                      member_health=(MemberHealth(M1, True), MemberHealth(M2, True)))


def component(zone: Zone, **values) -> Records:
    return Records(zone, settings(hosted_zone="example.org.", dns_service_name="svc", **values), "eu-central-1")


@pytest.mark.parametrize("mode, published", [
    ((Mode.ACTIVE, 7), True),
    ((Mode.ACTIVE, 0), False),
    ((Mode.PASSIVE, 7), False),
    (None, False),
], ids=["active with a record", "active without a record (before cluster-mode)", "passive", "mode unknown"])
def test_the_write_record_is_published_only_when_the_mode_is_active_with_a_record(mode, published):
    zone = Zone()
    outcome = component(zone, mirror_prefix="/x/").tick(dataclasses.replace(LEADING, mode=mode))
    assert outcome.startswith("2 members published (i-1, i-2); sent change C1")
    names = {c.record.name for c in zone.batches[0]}
    assert (WRITE_RECORD in names) is published
    assert "_etcd-client._tcp.svc.example.org." in names  # the region's read record either way


def test_without_mirror_prefix_the_write_record_is_never_published():
    zone = Zone()
    component(zone).tick(dataclasses.replace(LEADING, mode=(Mode.ACTIVE, 7)))
    assert WRITE_RECORD not in {c.record.name for c in zone.batches[0]}


@pytest.mark.parametrize("error, said", [
    (client_error("Throttling"), "Route53 failed, retrying next cycle: "),
    (AwsPermissionError("route53:ChangeResourceRecordSets is not allowed"), "Route53: route53:ChangeResource"),
], ids=["Route53 fails", "Route53 refuses"])
def test_a_route53_failure_is_said_not_raised(error, said):
    zone = Zone()
    zone.fail = error
    records_component = component(zone)
    outcome = records_component.tick(LEADING)
    assert outcome.startswith(said) and records_component.reason.last == outcome


def test_records_stay_as_they_are_while_the_upgrade_lock_is_held():
    zone = Zone()
    outcome = component(zone).tick(dataclasses.replace(LEADING, upgrade_lock_holder="i-9"))
    assert outcome == "upgrade lock held by i-9: records unchanged" and calls(zone) == (0, 0, 0)
