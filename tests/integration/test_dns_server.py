"""The simulator's DNS server against a real moto server, asked by dnslib's client and by a real Go program."""

from __future__ import annotations

import logging
import os
import socket
import time

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from appliance.rules.records import write_record_name
from appliance.sim import aws
from appliance.sim.dns_server import ZoneDnsServer
from appliance.sim.supervisor import etcd_binary
from tests.integration.dns_namespace import namespace_unavailable, run_with_resolver

pytestmark = pytest.mark.timeout(120)

ADDRESS = "127.0.250.2"                              # any free port on it
PORT_53_ADDRESSES = [f"127.0.250.{h}" for h in range(3, 11)]  # Go asks port 53 only; the first free one is used
DEAD_ADDRESS = "127.0.250.99"                        # nothing listens there
ZONE = "t.sim.internal."
SRV_NAME = "_etcd-client._tcp.c.t.sim.internal."
ETCDCTL = os.path.join(os.path.dirname(etcd_binary()), "etcdctl")


@pytest.fixture(scope="module")
def route53(tmp_path_factory):
    """A boto3 route53 client of a real moto server, killed at the end of the module."""
    port = aws.free_port()
    proc = aws.start_moto(port, str(tmp_path_factory.mktemp("moto") / "moto.log"))
    try:
        yield aws.clients(f"http://127.0.0.1:{port}")["route53"]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def upsert(route53, zone_id: str, name: str, rtype: str, values: list[str], ttl: int = 60) -> None:
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": ttl,
                                                   "ResourceRecords": [{"Value": v} for v in values]}}]})


@pytest.fixture
def zone(route53, request) -> str:
    """A new hosted zone ``t.sim.internal.`` (Route53 allows several of one name) with the cluster's records."""
    reference = f"{request.node.name}-{time.time()}"
    zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference=reference)["HostedZone"]["Id"].split("/")[-1]
    upsert(route53, zone_id, SRV_NAME, "SRV", ["0 0 2379 etcd1.c.t.sim.internal", "10 5 2379 etcd2.c.t.sim.internal."],
           ttl=45)
    upsert(route53, zone_id, "etcd1.c.t.sim.internal", "A", ["127.0.250.11"])
    upsert(route53, zone_id, "etcd2.c.t.sim.internal.", "A", ["127.0.250.12"])
    upsert(route53, zone_id, "all.c.t.sim.internal.", "A", ["127.0.250.11", "127.0.250.12", "127.0.250.13"], ttl=30)
    upsert(route53, zone_id, "v6.c.t.sim.internal.", "AAAA", ["fd00::1"])
    upsert(route53, zone_id, "info.c.t.sim.internal.", "TXT", ['"cluster=c" "quote=\\"x\\""'])
    upsert(route53, zone_id, "leader.c.t.sim.internal.", "CNAME", ["etcd2.c.t.sim.internal"])
    return zone_id


@pytest.fixture
def server(route53, zone):
    dns = ZoneDnsServer(route53, zone, ADDRESS, aws.free_port(), cache_seconds=1.0)
    try:
        yield dns
    finally:
        dns.close()


def ask(server: ZoneDnsServer, name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    """One query to the server and its parsed answer (at most 5 s)."""
    return DNSRecord.parse(DNSRecord.question(name, qtype).send(server.address, server.port, tcp=tcp, timeout=5))


def records(answer: DNSRecord) -> list[tuple[str, str, int, str]]:
    """The answer section as sorted (name, type, ttl, value) tuples."""
    return sorted((str(rr.rname), QTYPE[rr.rtype], rr.ttl, str(rr.rdata)) for rr in answer.rr)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_srv_and_a_answers(server, tcp):
    answer = ask(server, SRV_NAME, "SRV", tcp=tcp)
    assert answer.header.rcode == RCODE.NOERROR and answer.header.aa == 1 and answer.header.ra == 0
    assert records(answer) == [(SRV_NAME, "SRV", 45, "0 0 2379 etcd1.c.t.sim.internal."),
                               (SRV_NAME, "SRV", 45, "10 5 2379 etcd2.c.t.sim.internal.")]
    assert records(ask(server, "etcd1.c.t.sim.internal.", tcp=tcp)) == [
        ("etcd1.c.t.sim.internal.", "A", 60, "127.0.250.11")]
    assert records(ask(server, "all.c.t.sim.internal", tcp=tcp)) == [
        ("all.c.t.sim.internal.", "A", 30, f"127.0.250.{h}") for h in (11, 12, 13)]
    # names match whatever their case; the answer keeps the asker's spelling
    assert records(ask(server, "ETCD2.C.t.Sim.Internal", tcp=tcp)) == [
        ("ETCD2.C.t.Sim.Internal.", "A", 60, "127.0.250.12")]


def test_aaaa_txt_cname_and_any(server):
    assert records(ask(server, "v6.c.t.sim.internal", "AAAA")) == [("v6.c.t.sim.internal.", "AAAA", 60, "fd00::1")]
    txt = ask(server, "info.c.t.sim.internal", "TXT")
    assert [rr.rdata.data for rr in txt.rr] == [[b"cluster=c", b'quote="x"']]
    # a CNAME is followed inside the zone, as Route53 does
    assert records(ask(server, "leader.c.t.sim.internal")) == [
        ("etcd2.c.t.sim.internal.", "A", 60, "127.0.250.12"),
        ("leader.c.t.sim.internal.", "CNAME", 60, "etcd2.c.t.sim.internal.")]
    assert records(ask(server, "leader.c.t.sim.internal", "CNAME")) == [
        ("leader.c.t.sim.internal.", "CNAME", 60, "etcd2.c.t.sim.internal.")]
    assert [t for _, t, _, _ in records(ask(server, "etcd1.c.t.sim.internal", "ANY"))] == ["A"]


def test_nxdomain_nodata_and_refused(server):
    missing = ask(server, "etcd9.c.t.sim.internal")
    assert (missing.header.rcode, missing.header.aa, missing.rr) == (RCODE.NXDOMAIN, 1, [])
    assert ask(server, "_etcd-client-ssl._tcp.c.t.sim.internal", "SRV").header.rcode == RCODE.NXDOMAIN
    # the name exists, not that type: an empty NOERROR answer
    for name, qtype in (("etcd1.c.t.sim.internal", "SRV"), ("etcd1.c.t.sim.internal", "AAAA"), (ZONE, "A")):
        empty = ask(server, name, qtype)
        assert (empty.header.rcode, empty.header.aa, empty.rr) == (RCODE.NOERROR, 1, []), (name, qtype)
    # an empty non-terminal (a name with record sets below it) exists too, as on Route53 (RFC 8020)
    assert ask(server, "_tcp.c.t.sim.internal", "SRV").header.rcode == RCODE.NOERROR
    for outside in ("example.org", "sim.internal", "xt.sim.internal", "."):
        refused = ask(server, outside)
        assert (refused.header.rcode, refused.rr) == (RCODE.REFUSED, []), outside


def test_a_changed_record_set_is_seen_after_the_cache_time(route53, zone):
    cache_seconds = 3.0
    with ZoneDnsServer(route53, zone, ADDRESS, aws.free_port(), cache_seconds=cache_seconds) as dns:
        started = time.monotonic()
        assert records(ask(dns, "etcd1.c.t.sim.internal"))[0][3] == "127.0.250.11"
        upsert(route53, zone, "etcd1.c.t.sim.internal", "A", ["127.0.250.21"])
        upsert(route53, zone, "new.c.t.sim.internal", "A", ["127.0.250.22"])
        cached = ask(dns, "etcd1.c.t.sim.internal")
        elapsed = time.monotonic() - started
        assert records(cached)[0][3] == "127.0.250.11", f"the zone was read again after {elapsed:.1f} s"
        assert ask(dns, "new.c.t.sim.internal").header.rcode == RCODE.NXDOMAIN
        seen = None
        for _ in range(40):  # at most about 8 s
            if records(ask(dns, "etcd1.c.t.sim.internal"))[0][3] == "127.0.250.21":
                seen = time.monotonic() - started
                break
            time.sleep(0.2)
        assert seen is not None, "the changed record set was not answered within 8 s"
        assert seen >= cache_seconds - 0.5, f"answered from moto after {seen:.1f} s, before the cache time"
        assert records(ask(dns, "new.c.t.sim.internal")) == [("new.c.t.sim.internal.", "A", 60, "127.0.250.22")]


def test_servfail_and_a_warning_when_the_zone_cannot_be_read(route53, caplog):
    caplog.set_level(logging.WARNING, logger="sim.dns")
    with ZoneDnsServer(route53, "ZNOSUCHZONE", ADDRESS, aws.free_port()) as dns:
        for _ in range(3):
            failed = ask(dns, "etcd1.c.t.sim.internal")
            assert (failed.header.rcode, failed.rr) == (RCODE.SERVFAIL, [])
    unreachable = aws.clients(f"http://127.0.0.1:{aws.free_port()}")["route53"]  # nothing listens there
    with ZoneDnsServer(unreachable, "Z1", ADDRESS, aws.free_port()) as dns:
        assert ask(dns, "etcd1.c.t.sim.internal").header.rcode == RCODE.SERVFAIL
        assert ask(dns, "etcd1.c.t.sim.internal", tcp=True).header.rcode == RCODE.SERVFAIL
    warnings = [r.getMessage() for r in caplog.records if r.name == "sim.dns" and r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # one per failure, not one per query
    assert "NoSuchHostedZone" in warnings[0] and "EndpointConnectionError" in warnings[1], warnings


def test_an_answer_too_long_for_udp_is_truncated_and_complete_over_tcp(route53, zone, server):
    many = [f"127.0.251.{h}" for h in range(1, 61)]  # 60 A records: about 1 kB, more than 512 bytes
    upsert(route53, zone, "many.c.t.sim.internal", "A", many)
    time.sleep(1.2)  # the server's cache time
    over_udp = ask(server, "many.c.t.sim.internal")
    assert (over_udp.header.tc, over_udp.rr, str(over_udp.q.qname)) == (1, [], "many.c.t.sim.internal.")
    over_tcp = ask(server, "many.c.t.sim.internal", tcp=True)
    assert over_tcp.header.tc == 0 and sorted(str(rr.rdata) for rr in over_tcp.rr) == sorted(many)


def test_binding_a_taken_port_raises_and_close_frees_the_port(route53, zone):
    port = aws.free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        # SO_REUSEADDR as dnslib's own servers set it: Linux would let a second such UDP socket share the port
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind((ADDRESS, port))
        with pytest.raises(OSError):
            ZoneDnsServer(route53, zone, ADDRESS, port)
    with pytest.raises(OSError):
        ZoneDnsServer(route53, zone, "192.0.2.1", port)  # not an address of this machine
    dns = ZoneDnsServer(route53, zone, ADDRESS, port)  # the failed attempts left nothing bound
    with pytest.raises(OSError):
        ZoneDnsServer(route53, zone, ADDRESS, port)
    dns.close()
    dns.close()
    ZoneDnsServer(route53, zone, ADDRESS, port).close()


def port_53_server(route53, zone) -> ZoneDnsServer:
    """The zone's DNS server on port 53 of a free loopback address (Go's resolver asks no other port)."""
    reason = namespace_unavailable()
    if reason:
        pytest.skip(f"cannot give etcdctl its own resolv.conf: {reason}")
    errors = []
    for address in PORT_53_ADDRESSES:
        try:
            return ZoneDnsServer(route53, zone, address, 53)
        except OSError as exc:
            errors.append(f"{address}: {exc}")
    pytest.skip(f"cannot listen on port 53 (Go's resolver asks no other): {'; '.join(errors)}")


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_etcd_finds_the_write_record_by_its_own_srv_name(route53, zone, tls):
    """etcd's ``--discovery-srv-name rw`` finds the write record under the name the agent publishes it: etcd looks up
    ``_etcd-client-ssl-rw`` for HTTPS and ``_etcd-client-rw`` for HTTP. Only that record exists, and its target is
    dead: the dial error naming the target proves the lookup found it."""
    with port_53_server(route53, zone) as dns:
        dead_port = aws.free_port()
        domain = f"w{int(tls)}.t.sim.internal"
        upsert(route53, zone, write_record_name(domain, tls).rstrip("."), "SRV",
               [f"0 0 {dead_port} etcd1.{domain}"])
        upsert(route53, zone, f"etcd1.{domain}", "A", [DEAD_ADDRESS])
        # --insecure-discovery=false: only HTTPS endpoints count, so the plain record cannot stand in for the TLS one.
        secure = ["--insecure-discovery=false"] if tls else []
        done = run_with_resolver(dns.address, [ETCDCTL, "--discovery-srv", domain, "--discovery-srv-name", "rw",
                                               *secure, "--dial-timeout=2s", "--command-timeout=3s", "member",
                                               "list"], timeout=30)
        assert done.returncode != 0, done.stdout
        assert f"etcd1.{domain}.:{dead_port}" in done.stderr, done.stderr
        assert f"dial tcp {DEAD_ADDRESS}:{dead_port}" in done.stderr, done.stderr


def test_etcdctl_discovers_the_cluster_through_the_server(route53, zone):
    """A Go program (etcdctl) resolves the SRV record and its target's A record through the server."""
    with port_53_server(route53, zone) as dns:
        dead_port = aws.free_port()
        upsert(route53, zone, "_etcd-client._tcp.d.t.sim.internal", "SRV", [f"0 0 {dead_port} etcd1.d.t.sim.internal"])
        upsert(route53, zone, "etcd1.d.t.sim.internal", "A", [DEAD_ADDRESS])
        # `member list`, not `endpoint health`: etcdctl's endpoint commands ignore --discovery-srv
        # and ask 127.0.0.1:2379 (etcd-io/etcd#11280, #17886).
        done = run_with_resolver(dns.address, [ETCDCTL, "--discovery-srv", "d.t.sim.internal", "--dial-timeout=2s",
                                               "--command-timeout=3s", "member", "list"], timeout=30)
        assert done.returncode != 0, done.stdout
        assert f"etcd1.d.t.sim.internal.:{dead_port}" in done.stderr, done.stderr   # the SRV record's target
        assert f"dial tcp {DEAD_ADDRESS}:{dead_port}" in done.stderr, done.stderr  # and its A record
        assert "dns lookup errors" not in done.stderr, done.stderr

        # The control: without an SRV record the same command fails in the lookup, asking this server.
        done = run_with_resolver(dns.address, [ETCDCTL, "--discovery-srv", "nothere.t.sim.internal",
                                               "--command-timeout=3s", "member", "list"], timeout=30)
        assert done.returncode != 0
        assert f"lookup _etcd-client._tcp.nothere.t.sim.internal on {dns.address}:53: no such host" in done.stderr, \
            done.stderr
