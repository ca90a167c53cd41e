"""The Route53 discovery records as decision tables: which members are published (``plan``), the exact
record sets for them (``desired``), which record sets of the zone the cluster owns (``owned``), and the
ChangeResourceRecordSets batch that turns what the zone holds into what is wanted (``diff``).

Also checks that every SRV value has the form etcd's DNS discovery parses (client/pkg/srv, through Go's
net.LookupSRV): "priority weight port target", the target a host name with its trailing dot that is
itself published as an A record, so that it resolves.
"""

import dataclasses

import pytest

from appliance.model.instances import Instance, Listing
from appliance.model.members import Member, MemberHealth
from appliance.model.records import Change, PublishedMember, RecordSet
from appliance.rules import records
from appliance.rules.records import RecordsFacts

DOMAIN = "etcd.sim.internal."
IPS = {"i-1": "127.0.1.4", "i-2": "127.0.1.5", "i-3": "127.0.1.6", "i-4": "127.0.1.7"}


def member(n: int, name: str | None = None, learner: bool = False) -> Member:
    name = f"i-{n}" if name is None else name
    return Member(n, name, (f"http://127.0.1.{n + 3}:2380",), (f"http://127.0.1.{n + 3}:2379",), learner)


def healthy(n: int, **kwargs) -> MemberHealth:
    return MemberHealth(member(n, **kwargs), True)


def sick(n: int) -> MemberHealth:
    return MemberHealth(member(n), False)


def instance(n: int, state: str = "InService", ip: str | None = "") -> Instance:
    return Instance(f"i-{n}", IPS[f"i-{n}"] if ip == "" else ip, state)


def listing(*instances: Instance, complete: bool = True, problem: str = "") -> Listing:
    return Listing(complete, instances=instances, problem=problem)


FULL = listing(instance(1), instance(2), instance(3))


def snapshot(members, listing_=FULL, lock=None, **kwargs) -> RecordsFacts:
    return RecordsFacts(domain=DOMAIN, listing=listing_, members=tuple(members), upgrade_lock_holder=lock,
                           **kwargs)


def published_ids(plan: records.RecordsPlan) -> list[str]:
    """The instance ids with a per-member A record in the plan."""
    assert plan.desired is not None
    return sorted(name.split(".")[0] for name, type_ in plan.desired if type_ == "A" and name != DOMAIN)


# --- plan: when the records are left alone ---------------------------------------------------------

@pytest.mark.parametrize("snap,reason", [
    pytest.param(snapshot([healthy(1), healthy(2), healthy(3)], lock="i-2"),
                 "upgrade lock held by i-2: records unchanged", id="upgrade-lock-held"),
    pytest.param(snapshot([healthy(1), healthy(2), healthy(3)], lock="unknown (etcd timed out)"),
                 "upgrade lock held by unknown (etcd timed out): records unchanged", id="upgrade-lock-unknown"),
    pytest.param(snapshot([healthy(1), healthy(2), healthy(3)],
                          listing_=listing(instance(1), complete=False, problem="DescribeInstances: Throttling")),
                 "AWS listing incomplete (DescribeInstances: Throttling): records unchanged",
                 id="listing-incomplete"),
    pytest.param(snapshot([healthy(1), healthy(2), healthy(3)], listing_=None),
                 "AWS listing incomplete (not taken): records unchanged", id="listing-none"),
    pytest.param(snapshot([sick(1), sick(2), sick(3)]),
                 "no healthy voting member of an InService instance: records unchanged", id="nobody-healthy"),
    pytest.param(snapshot([healthy(1, learner=True)]),
                 "no healthy voting member of an InService instance: records unchanged", id="only-a-learner"),
    pytest.param(snapshot([healthy(1), healthy(2)], listing_=listing(instance(3))),
                 "no healthy voting member of an InService instance: records unchanged",
                 id="members-absent-from-listing"),
    pytest.param(snapshot([]), "no healthy voting member of an InService instance: records unchanged",
                 id="no-members"),
])
def test_plan_leaves_the_records_alone(snap, reason):
    decided = records.plan(snap)
    assert decided.desired is None
    assert decided.reason == reason


def test_plan_lock_wins_over_an_incomplete_listing():
    decided = records.plan(snapshot([healthy(1)], listing_=None, lock="i-1"))
    assert decided.desired is None and decided.reason.startswith("upgrade lock held by i-1")


# --- plan: who is published -------------------------------------------------------------------------

@pytest.mark.parametrize("members,instances,published", [
    pytest.param([healthy(1), healthy(2), healthy(3)], [instance(1), instance(2), instance(3)],
                 ["i-1", "i-2", "i-3"], id="all-healthy-voters-in-service"),
    pytest.param([healthy(1), healthy(2), healthy(3, learner=True)], [instance(1), instance(2), instance(3)],
                 ["i-1", "i-2"], id="learner-not-published"),
    pytest.param([healthy(1), sick(2), healthy(3)], [instance(1), instance(2), instance(3)],
                 ["i-1", "i-3"], id="unhealthy-not-published"),
    pytest.param([healthy(1), healthy(2), healthy(3)],
                 [instance(1), instance(2, "Terminating"), instance(3)],
                 ["i-1", "i-3"], id="terminating-not-published"),
    pytest.param([healthy(1), healthy(2), healthy(3)],
                 [instance(1), instance(2, "Terminating:Wait"), instance(3)],
                 ["i-1", "i-3"], id="terminating-wait-not-published"),
    pytest.param([healthy(1), healthy(2), healthy(3)],
                 [instance(1), instance(2, "Pending"), instance(3)],
                 ["i-1", "i-3"], id="pending-not-published"),
    pytest.param([healthy(1), healthy(2), healthy(3)], [instance(1), instance(3)],
                 ["i-1", "i-3"], id="absent-from-listing-not-published"),
    pytest.param([healthy(1), healthy(2), healthy(3)], [instance(1), instance(2, ip=None), instance(3)],
                 ["i-1", "i-3"], id="no-private-ip-not-published"),
    pytest.param([healthy(1), healthy(2, name=""), healthy(3)], [instance(1), instance(2), instance(3)],
                 ["i-1", "i-3"], id="never-started-not-published"),
    pytest.param([healthy(2)], [instance(1), instance(2), instance(3)], ["i-2"], id="single-healthy-voter"),
    pytest.param([healthy(3), healthy(1)], [instance(3), instance(1), instance(4)], ["i-1", "i-3"],
                 id="instance-without-member-not-published"),
])
def test_plan_publishes_only_healthy_voters_of_in_service_instances(members, instances, published):
    decided = records.plan(snapshot(members, listing_=listing(*instances)))
    assert published_ids(decided) == published
    assert decided.reason == f"{len(published)} members published ({', '.join(published)})"
    assert decided.desired[(DOMAIN, "A")].values == tuple(sorted(IPS[i] for i in published))


def test_plan_passes_ttl_ports_and_tls_on():
    decided = records.plan(snapshot([healthy(1)], listing_=listing(instance(1)), ttl=30, peer_port=12380,
                                    client_port=12379, tls=True))
    assert decided.desired == records.desired(DOMAIN, [PublishedMember("i-1", "127.0.1.4")], 30, 12380, 12379,
                                              tls=True)


def test_publishable_is_sorted_by_instance_id():
    found = records.publishable([healthy(3), healthy(1), healthy(2)], FULL)
    assert found == [PublishedMember("i-1", "127.0.1.4"), PublishedMember("i-2", "127.0.1.5"),
                     PublishedMember("i-3", "127.0.1.6")]


# --- desired: the exact record sets -----------------------------------------------------------------

TWO = [PublishedMember("i-1", "127.0.1.4"), PublishedMember("i-2", "127.0.1.5")]


def expected(tls: bool, ttl: int) -> dict:
    suffix = "-ssl" if tls else ""
    sets = [
        RecordSet(f"_etcd-server{suffix}._tcp.etcd.sim.internal.", "SRV", ttl,
                  ("1 1 2380 i-1.etcd.sim.internal.", "1 1 2380 i-2.etcd.sim.internal.")),
        RecordSet(f"_etcd-client{suffix}._tcp.etcd.sim.internal.", "SRV", ttl,
                  ("1 1 2379 i-1.etcd.sim.internal.", "1 1 2379 i-2.etcd.sim.internal.")),
        RecordSet("etcd.sim.internal.", "A", ttl, ("127.0.1.4", "127.0.1.5")),
        RecordSet("i-1.etcd.sim.internal.", "A", ttl, ("127.0.1.4",)),
        RecordSet("i-2.etcd.sim.internal.", "A", ttl, ("127.0.1.5",)),
    ]
    return {rs.key: rs for rs in sets}


@pytest.mark.parametrize("tls,ttl", [
    pytest.param(False, 60, id="plain-ttl60"),
    pytest.param(True, 60, id="tls-ttl60"),
    pytest.param(False, 1, id="plain-ttl1"),
    pytest.param(True, 86400, id="tls-ttl86400"),
])
def test_desired_is_exactly_the_srv_and_a_record_sets(tls, ttl):
    assert records.desired(DOMAIN, TWO, ttl, tls=tls) == expected(tls, ttl)


def test_desired_does_not_depend_on_member_order():
    assert records.desired(DOMAIN, list(reversed(TWO)), 60) == records.desired(DOMAIN, TWO, 60)


def test_desired_uses_the_given_ports():
    sets = records.desired(DOMAIN, TWO[:1], 60, peer_port=12380, client_port=12379)
    assert sets[("_etcd-server._tcp.etcd.sim.internal.", "SRV")].values == ("1 1 12380 i-1.etcd.sim.internal.",)
    assert sets[("_etcd-client._tcp.etcd.sim.internal.", "SRV")].values == ("1 1 12379 i-1.etcd.sim.internal.",)


@pytest.mark.parametrize("cluster,zone,result", [
    pytest.param("etcd", "sim.internal.", "etcd.sim.internal.", id="plain"),
    pytest.param("etcd", "sim.internal", "etcd.sim.internal.", id="zone-without-dot"),
    pytest.param("Prod-Etcd", "Example.ORG.", "prod-etcd.example.org.", id="lower-case"),
])
def test_domain(cluster, zone, result):
    assert records.domain(cluster, zone) == result


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_srv_values_are_what_etcd_dns_discovery_parses(tls):
    members = [PublishedMember(f"i-0{n}abcdef", f"127.0.1.{n + 3}") for n in range(1, 6)]
    sets = records.desired(DOMAIN, members, 60, tls=tls)
    srv = [rs for rs in sets.values() if rs.type == "SRV"]
    assert len(srv) == 2
    for rs in srv:
        assert rs.name.endswith("._tcp." + DOMAIN)
        assert len(rs.values) == len(members)
        for value in rs.values:
            parts = value.split(" ")
            assert len(parts) == 4, value
            priority, weight, port = (int(p) for p in parts[:3])  # ValueError if not integers
            assert 0 <= priority <= 65535 and 0 <= weight <= 65535 and 1 <= port <= 65535
            target = parts[3]
            assert target.endswith(".") and target == target.lower()
            assert (target, "A") in sets, f"SRV target {target} has no A record set"
            assert len(sets[(target, "A")].values) == 1


# --- owned: what the leader may touch ---------------------------------------------------------------

@pytest.mark.parametrize("name,type_,is_owned", [
    pytest.param("etcd.sim.internal.", "A", True, id="domain-A"),
    pytest.param("_etcd-server._tcp.etcd.sim.internal.", "SRV", True, id="server-SRV"),
    pytest.param("_etcd-client._tcp.etcd.sim.internal.", "SRV", True, id="client-SRV"),
    pytest.param("_etcd-server-ssl._tcp.etcd.sim.internal.", "SRV", True, id="server-ssl-SRV"),
    pytest.param("_etcd-client-ssl._tcp.etcd.sim.internal.", "SRV", True, id="client-ssl-SRV"),
    pytest.param("i-0123abc.etcd.sim.internal.", "A", True, id="member-A"),
    pytest.param("etcd.sim.internal.", "TXT", False, id="domain-TXT"),
    pytest.param("etcd.sim.internal.", "AAAA", False, id="domain-AAAA"),
    pytest.param("sim.internal.", "A", False, id="zone-apex"),
    pytest.param("other.sim.internal.", "A", False, id="other-name-in-zone"),
    pytest.param("x.etcd.sim.internal.", "TXT", False, id="foreign-TXT-under-domain"),
    pytest.param("x.etcd.sim.internal.", "A", False, id="foreign-A-under-domain"),
    pytest.param("i-1.etcd.sim.internal.", "TXT", False, id="member-name-TXT"),
    pytest.param("i-1.x.etcd.sim.internal.", "A", False, id="deeper-i-name"),
    pytest.param("i-1.other.sim.internal.", "A", False, id="member-of-other-domain"),
    pytest.param("_etcd-server._tcp.other.sim.internal.", "SRV", False, id="SRV-of-other-domain"),
    pytest.param("_etcd-server._udp.etcd.sim.internal.", "SRV", False, id="udp-SRV"),
    pytest.param("_http._tcp.etcd.sim.internal.", "SRV", False, id="other-service-SRV"),
    pytest.param("_etcd-server._tcp.etcd.sim.internal.", "TXT", False, id="TXT-at-SRV-name"),
    pytest.param("xetcd.sim.internal.", "A", False, id="name-merely-ending-like-domain"),
    pytest.param("i-1xetcd.sim.internal.", "A", False, id="i-name-merely-ending-like-domain"),
])
def test_owned(name, type_, is_owned):
    assert records.owned(RecordSet.of(name, type_, 60, ["127.0.0.1"]), DOMAIN) is is_owned


READ = "_etcd-client._tcp.config.sim.internal."  # the read record of the service "config"


@pytest.mark.parametrize("name,type_,region,read_name,is_owned", [
    pytest.param(READ, "SRV", "eu-central-1", READ, True, id="our-region's-read-record"),
    pytest.param(READ, "SRV", "eu-west-1", READ, False, id="another-region's-read-record"),
    pytest.param(READ, "SRV", "", READ, False, id="a-simple-record-at-the-read-name"),
    pytest.param(READ, "SRV", "eu-central-1", "", False, id="no-read-name-set"),
    pytest.param(READ, "TXT", "eu-central-1", READ, False, id="TXT-at-the-read-name"),
    pytest.param("_etcd-client._tcp.etcd.sim.internal.", "SRV", "eu-central-1", READ, False,
                 id="a-latency-record-at-our-client-name"),
    pytest.param("etcd.sim.internal.", "A", "eu-central-1", READ, False, id="a-latency-record-at-our-domain"),
])
def test_owned_latency_records(name, type_, region, read_name, is_owned):
    record = RecordSet.of(name, type_, 60, ["1 1 2379 i-1.etcd.sim.internal."], region)
    assert records.owned(record, DOMAIN, read_name, "eu-central-1") is is_owned


def test_everything_desired_is_owned():
    sets = [*records.desired(DOMAIN, TWO, 60).values(), *records.desired(DOMAIN, TWO, 60, tls=True).values(),
            *records.desired(DOMAIN, TWO, 60, read_name=READ, region="eu-central-1").values()]
    for rs in sets:
        assert records.owned(rs, DOMAIN, READ, "eu-central-1"), rs


def test_the_read_record_is_a_latency_copy_of_the_client_srv():
    sets = records.desired(DOMAIN, TWO, 30, read_name=READ, region="eu-west-1")
    read = sets[(READ, "SRV", "eu-west-1")]
    assert read == RecordSet(READ, "SRV", 30, sets[CLIENT].values, "eu-west-1")
    assert len(sets) == len(records.desired(DOMAIN, TWO, 30)) + 1
    assert records.read_record_name("config", "sim.internal") == READ


WRITE = "_etcd-client-rw._tcp.config.sim.internal."  # the write record of the service "config"


@pytest.mark.parametrize("type_,region,write_name,is_owned", [
    pytest.param("SRV", "", WRITE, True, id="the-active-leader's-write-record"),
    pytest.param("SRV", "", "", False, id="no-write-name-set:-a-passive-leader's"),
    pytest.param("SRV", "eu-central-1", WRITE, False, id="a-latency-record-at-the-write-name"),
    pytest.param("TXT", "", WRITE, False, id="TXT-at-the-write-name"),
])
def test_owned_write_record(type_, region, write_name, is_owned):
    record = RecordSet.of(WRITE, type_, 60, ["1 1 2379 i-1.etcd.sim.internal."], region)
    assert records.owned(record, DOMAIN, READ, "eu-central-1", write_name) is is_owned


def test_the_write_record_copies_the_client_srv_only_when_asked():
    sets = records.desired(DOMAIN, TWO, 30, read_name=READ, region="eu-west-1", write_domain="config.sim.internal")
    assert sets[(WRITE, "SRV")] == RecordSet(WRITE, "SRV", 30, sets[CLIENT].values)
    assert (WRITE, "SRV") not in records.desired(DOMAIN, TWO, 30, read_name=READ, region="eu-west-1")
    assert all(records.owned(rs, DOMAIN, READ, "eu-west-1", WRITE) for rs in sets.values())


# --- diff: the change batch -------------------------------------------------------------------------

WANTED = records.desired(DOMAIN, TWO, 60)
SERVER = ("_etcd-server._tcp.etcd.sim.internal.", "SRV")
CLIENT = ("_etcd-client._tcp.etcd.sim.internal.", "SRV")
APEX = ("etcd.sim.internal.", "A")
STALE = RecordSet("i-3.etcd.sim.internal.", "A", 60, ("127.0.1.6",))


def replaced(sets: dict, key, **changes) -> dict:
    return {**sets, key: dataclasses.replace(sets[key], **changes)}


def without(sets: dict, *keys) -> dict:
    return {k: v for k, v in sets.items() if k not in keys}


@pytest.mark.parametrize("current,wanted,changes", [
    pytest.param(WANTED, WANTED, [], id="equal"),
    pytest.param({}, {}, [], id="both-empty"),
    pytest.param(dict(reversed(list(WANTED.items()))), WANTED, [], id="equal-in-another-order"),
    pytest.param({}, WANTED, [Change("UPSERT", WANTED[k]) for k in sorted(WANTED)], id="empty-zone"),
    pytest.param(replaced(WANTED, APEX, values=("127.0.1.4",)), WANTED, [Change("UPSERT", WANTED[APEX])],
                 id="values-differ"),
    pytest.param(replaced(WANTED, SERVER, ttl=300), WANTED, [Change("UPSERT", WANTED[SERVER])],
                 id="ttl-differs"),
    pytest.param(without(WANTED, CLIENT), WANTED, [Change("UPSERT", WANTED[CLIENT])], id="one-missing"),
    pytest.param({**WANTED, STALE.key: STALE}, WANTED, [Change("DELETE", STALE)], id="stale-member-A"),
    pytest.param({**replaced(WANTED, APEX, values=("127.0.1.4", "127.0.1.5", "127.0.1.6")), STALE.key: STALE},
                 WANTED, [Change("UPSERT", WANTED[APEX]), Change("DELETE", STALE)], id="member-left"),
    pytest.param(WANTED, {}, [Change("DELETE", WANTED[k]) for k in sorted(WANTED)], id="delete-all"),
])
def test_diff(current, wanted, changes):
    assert records.diff(current, wanted) == changes


def test_diff_deletes_with_the_exact_values_read():
    odd = RecordSet("i-9.etcd.sim.internal.", "A", 17, ("10.0.0.9",))
    assert records.diff({**WANTED, odd.key: odd}, WANTED) == [Change("DELETE", odd)]


def test_diff_of_a_replaced_member_is_sorted_upserts_then_deletes():
    old = records.desired(DOMAIN, [PublishedMember("i-1", "127.0.1.4"), PublishedMember("i-2", "127.0.1.5"),
                                   PublishedMember("i-3", "127.0.1.6")], 60)
    new = records.desired(DOMAIN, [PublishedMember("i-1", "127.0.1.4"), PublishedMember("i-2", "127.0.1.5"),
                                   PublishedMember("i-4", "127.0.1.7")], 60)
    changes = records.diff(old, new)
    assert [(c.action, c.record.name, c.record.type) for c in changes] == [
        ("UPSERT", "_etcd-client._tcp.etcd.sim.internal.", "SRV"),
        ("UPSERT", "_etcd-server._tcp.etcd.sim.internal.", "SRV"),
        ("UPSERT", "etcd.sim.internal.", "A"),
        ("UPSERT", "i-4.etcd.sim.internal.", "A"),
        ("DELETE", "i-3.etcd.sim.internal.", "A"),
    ]
    assert changes[-1].record == old[("i-3.etcd.sim.internal.", "A")]
    # deterministic: the same inputs in any insertion order give the same batch
    shuffled_old = dict(sorted(old.items(), reverse=True))
    shuffled_new = dict(sorted(new.items(), reverse=True))
    assert records.diff(shuffled_old, shuffled_new) == changes


# --- RecordSet --------------------------------------------------------------------------------------

def test_record_set_of_normalises_name_ttl_and_values():
    rs = RecordSet.of("I-1.Etcd.Sim.Internal", "A", "60", ["127.0.1.5", "127.0.1.4", "127.0.1.5"])
    assert rs == RecordSet("i-1.etcd.sim.internal.", "A", 60, ("127.0.1.4", "127.0.1.5"))
    assert rs.key == ("i-1.etcd.sim.internal.", "A")


@pytest.mark.parametrize("name,result", [
    ("a.b", "a.b."), ("a.b.", "a.b."), ("A.B.", "a.b."),
])
def test_fqdn(name, result):
    assert records.fqdn(name) == result


def test_the_write_record_copies_the_active_cluster_s_client_srv_and_no_leader_owns_it():
    source = RecordSet("_etcd-client._tcp.b.example.org.", "SRV", 60, ("1 1 2379 i-1.b.example.org.",))
    wanted = records.write_record("etcd.example.org", source)
    assert wanted == RecordSet("_etcd-client-rw._tcp.etcd.example.org.", "SRV", 60, source.values)
    assert not records.owned(wanted, "etcd.example.org.")
    assert records.client_srv_name("b.example.org") == "_etcd-client._tcp.b.example.org."
