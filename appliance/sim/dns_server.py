"""An authoritative DNS server for the local AWS: answers queries from one Route53 hosted zone stored in moto.

moto stores hosted zones but answers no DNS, so without this nothing outside the
simulator could resolve the SRV and A records the appliance publishes. Pointing a
real resolver here (e.g. a ``resolv.conf`` naming this address) lets real programs
such as ``etcdctl --discovery-srv`` find the cluster as they would on AWS.

What it answers, for names in the zone: A, AAAA, SRV, TXT and CNAME record sets
(CNAMEs are followed inside the zone); a name with no record set at all is NXDOMAIN,
except the empty non-terminals above a record set (``_tcp.c.zone`` above
``_etcd-client._tcp.c.zone``), which answer NOERROR with no records as Route53 does.
Record sets of other types (moto's NS and SOA) make their name exist but are not
served. Not supported: wildcard and alias record sets; record sets sharing a name and
type through a SetIdentifier (weighted, latency, failover) are answered all together.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import socket
import socketserver
import threading
import time

from dnslib import AAAA, CNAME, EDNS0, QTYPE, RCODE, RR, SRV, TXT, A, DNSLabel, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

log = logging.getLogger("sim.dns")

SERVED_TYPES = ("A", "AAAA", "SRV", "TXT", "CNAME")
MAX_CNAME_CHAIN = 8          # CNAMEs followed inside the zone for one question (a loop ends here)
TCP_IDLE_TIMEOUT = 5.0       # seconds a TCP client may take to send its query
UDP_PLAIN_LIMIT = 512        # bytes of a UDP answer to a client without EDNS (RFC 1035)
UDP_EDNS_LIMIT = 1232        # bytes of a UDP answer we offer EDNS clients (DNS flag day 2020)

_TXT_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_TXT_TOKEN = re.compile(r"\\([0-7]{3})|\\(.)|([^\\]+)", re.DOTALL)


class ZoneDnsServer:
    """Serves one Route53 hosted zone's record sets (A, AAAA, SRV, TXT, CNAME) over UDP and TCP.

    Args:
        route53_client: a boto3 route53 client (for the simulator: pointed at moto with ``endpoint_url``).
        hosted_zone_id: the zone's id, ``Z123…`` or ``/hostedzone/Z123…``.
        address: the IPv4 or IPv6 address to listen on, e.g. ``127.0.250.2``.
        port: the UDP and TCP port (non-zero: both protocols share it).
        cache_seconds: how long one reading of the zone (ListResourceRecordSets) answers queries,
            so that a burst of queries costs one call to moto; a change shows after at most this long.

    Both sockets are bound here and served by daemon threads until :meth:`close`.
    Every question is answered: SERVFAIL (and a warning on logger ``sim.dns``) when the
    zone cannot be read, REFUSED for names outside the zone.

    Raises:
        OSError: ``address:port`` cannot be bound for UDP or for TCP (in use, not a local address,
            or port 53 without the privilege).
    """

    def __init__(self, route53_client, hosted_zone_id: str, address: str, port: int = 53,
                 cache_seconds: float = 1.0):
        self.address = address
        self.port = port
        self._zone = _ZoneReader(route53_client, hosted_zone_id, cache_seconds)
        resolver = _ZoneResolver(self._zone)
        # dnslib's default logger prints every query to stdout; only unparseable requests are worth a line
        logger = DNSLogger(log="error", prefix=False, logf=log.info)
        self._servers: list[DNSServer] = []
        self._closed = False
        try:
            for server_class in (_UdpServer, _TcpServer):
                self._servers.append(DNSServer(resolver, address=address, port=port, logger=logger,
                                               handler=_Handler, server=server_class))
        except OSError:
            for server in self._servers:
                server.server.server_close()
            raise
        for server in self._servers:
            server.start_thread()
        log.info("serving hosted zone %s on %s port %d (UDP and TCP)", hosted_zone_id, address, port)

    def close(self) -> None:
        """Stop answering and release both sockets (waits at most about half a second); idempotent."""
        if self._closed:
            return
        self._closed = True
        for server in self._servers:
            server.stop()
            server.server.server_close()

    def __enter__(self) -> ZoneDnsServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class _ServerMixin:
    """What both transports share: IPv6 when the address says so, and quiet failed answers."""

    daemon_threads = True

    def __init__(self, server_address, handler):
        if ":" in server_address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(server_address, handler)

    def handle_error(self, request, client_address):
        # The default prints a traceback to stderr; a failed answer must not clutter the simulator's output.
        log.debug("no answer to %s", client_address, exc_info=True)


class _UdpServer(_ServerMixin, socketserver.ThreadingMixIn, socketserver.UDPServer):
    # No SO_REUSEADDR: on Linux it would let a second server bind the same UDP port and
    # silently take half of the queries, instead of failing with OSError.
    allow_reuse_address = False


class _TcpServer(_ServerMixin, socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True  # a restart must not wait for old connections in TIME_WAIT


class _Handler(DNSHandler):
    def setup(self):
        # dnslib's handler blocks in recv(); a client that connects and sends nothing would hold a thread forever.
        if isinstance(self.request, socket.socket):
            self.request.settimeout(TCP_IDLE_TIMEOUT)


@dataclasses.dataclass(frozen=True)
class _RecordSet:
    ttl: int
    rdata: tuple  # dnslib rdata objects (A, SRV, …), one per value


@dataclasses.dataclass(frozen=True)
class _Zone:
    """One reading of the hosted zone. Names are lower case, without the trailing dot."""
    name: str
    record_sets: dict[tuple[str, str], _RecordSet]   # (name, type) -> record set, served types only
    names: frozenset[str]   # every name holding a record set of any type, and the empty non-terminals above them

    def contains(self, name: str) -> bool:
        return name == self.name or name.endswith("." + self.name)


class _ZoneUnavailable(Exception):
    pass


class _ZoneReader:
    """Reads the hosted zone from Route53, at most once per ``cache_seconds`` however many threads ask."""

    def __init__(self, route53_client, hosted_zone_id: str, cache_seconds: float):
        self._route53 = route53_client
        self._zone_id = hosted_zone_id.split("/")[-1]
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._zone_name: str | None = None   # never changes, so read once
        self._zone: _Zone | None = None
        self._error: str | None = None
        self._read_at = -math.inf
        self._bad_values: set[tuple[str, str, str]] = set()   # warned about once each

    def get(self) -> _Zone:
        """The zone as last read, reading it again if older than ``cache_seconds``.

        Raises:
            _ZoneUnavailable: the last reading failed (the reason was logged).
        """
        # Held during the call to moto: threads that ask meanwhile wait for this reading instead of each making one.
        with self._lock:
            if time.monotonic() - self._read_at >= self._cache_seconds:
                self._refresh()
                self._read_at = time.monotonic()
            if self._zone is None:
                raise _ZoneUnavailable(self._error)
            return self._zone

    def _refresh(self) -> None:
        try:
            zone = self._read()
        except Exception as exc:  # any failure of moto or of its answer: SERVFAIL, never a dead server thread
            error = f"{type(exc).__name__}: {exc}"
            if error != self._error:  # once per distinct failure, not once per query burst
                log.warning("cannot read hosted zone %s from %s, answering SERVFAIL: %s", self._zone_id,
                            self._route53.meta.endpoint_url, error)
            self._zone, self._error = None, error
            return
        if self._error is not None:
            log.info("hosted zone %s readable again", self._zone_id)
        self._zone, self._error = zone, None

    def _read(self) -> _Zone:
        if self._zone_name is None:
            answer = self._route53.get_hosted_zone(Id=self._zone_id)
            self._zone_name = _key(answer["HostedZone"]["Name"])
        zone_name = self._zone_name
        record_sets: dict[tuple[str, str], _RecordSet] = {}
        names = {zone_name}
        pages = self._route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=self._zone_id)
        for page in pages:
            for record_set in page["ResourceRecordSets"]:
                name, rtype = _key(record_set["Name"]), record_set["Type"]
                if not (name == zone_name or name.endswith("." + zone_name)):
                    continue
                while name != zone_name:  # the name and its ancestors inside the zone exist
                    names.add(name)
                    name = name.split(".", 1)[1]
                name = _key(record_set["Name"])
                if rtype not in SERVED_TYPES or "ResourceRecords" not in record_set:
                    continue
                rdata = []
                for value in (r["Value"] for r in record_set["ResourceRecords"]):
                    try:
                        rdata.append(_rdata(rtype, value))
                    except (ValueError, TypeError, IndexError) as exc:
                        if (name, rtype, value) not in self._bad_values:
                            self._bad_values.add((name, rtype, value))
                            log.warning("record set %s %s: value %r is not served: %s", name, rtype, value, exc)
                earlier = record_sets.get((name, rtype))
                if earlier is not None:
                    rdata[:0] = earlier.rdata
                record_sets[(name, rtype)] = _RecordSet(int(record_set.get("TTL", 0)), tuple(rdata))
        return _Zone(zone_name, record_sets, frozenset(names))


class _ZoneResolver(BaseResolver):
    def __init__(self, zone: _ZoneReader):
        self._zone = zone

    def resolve(self, request: DNSRecord, handler) -> DNSRecord:
        # We never recurse, so RA stays clear; AA is set below only for names in the zone.
        reply = request.reply(ra=0, aa=0)
        try:
            self._answer(request, reply)
        except _ZoneUnavailable:
            reply = request.reply(ra=0, aa=0)
            reply.header.rcode = RCODE.SERVFAIL
        except Exception:
            log.exception("cannot answer %s", request.q)
            reply = request.reply(ra=0, aa=0)
            reply.header.rcode = RCODE.SERVFAIL
        offered = next((rr.rclass for rr in request.ar if rr.rtype == QTYPE.OPT), None)  # EDNS: UDP size
        if offered is not None:
            reply.add_ar(EDNS0(udp_len=UDP_EDNS_LIMIT))
        if handler.protocol == "udp":
            limit = UDP_PLAIN_LIMIT if offered is None else max(UDP_PLAIN_LIMIT, min(offered, UDP_EDNS_LIMIT))
            if len(reply.pack()) > limit:
                # dnslib's truncate() drops the question too, and resolvers (Go's among them) ignore an
                # answer without its question instead of retrying over TCP.
                truncated = request.reply(ra=0, aa=reply.header.aa)
                truncated.header.tc = 1
                reply = truncated
        return reply

    def _answer(self, request: DNSRecord, reply: DNSRecord) -> None:
        if request.header.opcode != 0 or len(request.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP
            return
        question = request.q
        name = _key(str(question.qname))
        if question.qclass not in (1, 255):  # IN, ANY
            reply.header.rcode = RCODE.REFUSED
            return
        zone = self._zone.get()
        if not zone.contains(name):
            reply.header.rcode = RCODE.REFUSED
            return
        reply.header.aa = 1
        wanted = QTYPE.get(question.qtype)
        owner: DNSLabel = question.qname  # the asker's spelling: some resolvers check the case they sent
        for _ in range(MAX_CNAME_CHAIN):
            if name not in zone.names:
                reply.header.rcode = RCODE.NXDOMAIN
                return
            types = SERVED_TYPES if wanted == "ANY" else (wanted,)
            found = False
            for rtype in types:
                record_set = zone.record_sets.get((name, rtype))
                if record_set is not None:
                    found = True
                    for rdata in record_set.rdata:
                        reply.add_answer(RR(owner, getattr(QTYPE, rtype), ttl=record_set.ttl, rdata=rdata))
            cname = zone.record_sets.get((name, "CNAME"))
            if found or cname is None or not cname.rdata:
                return
            reply.add_answer(RR(owner, QTYPE.CNAME, ttl=cname.ttl, rdata=cname.rdata[0]))
            target = _key(str(cname.rdata[0].label))
            if not zone.contains(target):
                return
            name, owner = target, DNSLabel(target)


def _key(name: str) -> str:
    """A domain name as compared: lower case, without the trailing dot."""
    return name.lower().rstrip(".")


def _rdata(rtype: str, value: str):
    """dnslib rdata for one Route53 value of a served type.

    Raises:
        ValueError, TypeError, IndexError: the value is not valid for its type.
    """
    if rtype == "A":
        socket.inet_pton(socket.AF_INET, value)  # dnslib accepts some malformed addresses silently
        return A(value)
    if rtype == "AAAA":
        socket.inet_pton(socket.AF_INET6, value)
        return AAAA(value)
    if rtype == "CNAME":
        return CNAME(_fqdn(value))
    if rtype == "SRV":
        priority, weight, port, target = value.split()  # Route53's text form: "priority weight port target"
        return SRV(priority=int(priority), weight=int(weight), port=int(port), target=_fqdn(target))
    if rtype == "TXT":
        strings = [_txt_bytes(s) for s in _TXT_STRING.findall(value)] or [value.encode()]
        if any(len(s) > 255 for s in strings):
            raise ValueError("a TXT string is longer than 255 bytes")
        return TXT(strings)
    raise ValueError(f"type {rtype} is not served")


def _fqdn(name: str) -> str:
    # Route53 values are always absolute, with or without the trailing dot.
    return name if name.endswith(".") else name + "."


def _txt_bytes(quoted: str) -> bytes:
    """The bytes of one TXT string as Route53 writes it inside quotes: ``\\"``, ``\\\\`` and octal ``\\ddd``."""
    out = bytearray()
    for octal, escaped, plain in _TXT_TOKEN.findall(quoted):
        if octal:
            out.append(int(octal, 8) & 0xFF)
        else:
            out += (escaped or plain).encode()
    return bytes(out)
