"""The AWS endpoint the simulated instances see: moto behind a proxy that records and injects faults.

Every call is appended to ``aws-calls.log`` (time, instance, ``service:Operation``,
HTTP status): the benchmarks count each agent's calls from it, the instance being the
``app/<id>`` part of the User-Agent (set through ``AWS_SDK_UA_APP_ID``).

Faults, read from ``faults.json`` on each call, play what real AWS does on a bad
day: an operation failing (``ServiceUnavailable``, ``Throttling``,
``AccessDenied``), or an answer that leaves an instance out (a partial listing),
for every caller or one instance's agent, in every region or one.

Extensions (:class:`Extension`) play what moto lacks: after the faults, each query-protocol call is offered
to them in turn; one may answer it itself (:class:`Reply`), or have it forwarded with other parameters
(:class:`Forward`), and each may rewrite moto's successful answers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlencode

import requests

_STATUS = {"AccessDenied": 403, "UnauthorizedOperation": 403, "Throttling": 400,
           "RequestLimitExceeded": 503, "ServiceUnavailable": 503, "InternalFailure": 500}
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length",
                "server", "date"}
_APP_ID = re.compile(r"app/(\S+)")
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/")  # SigV4: key/date/region/service/
_RPC_V2 = re.compile(r"^/service/[^/]+/operation/([A-Za-z]+)$")
# Route53 speaks REST, not the query protocol: the operation is in the method and path.
_ROUTE53 = (
    ("GET", re.compile(r"^/2013-04-01/hostedzonesbyname"), "ListHostedZonesByName"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset"), "ListResourceRecordSets"),
    ("POST", re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset"), "ChangeResourceRecordSets"),
    ("GET", re.compile(r"^/2013-04-01/change/"), "GetChange"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/[^/]+$"), "GetHostedZone"),
)


log = logging.getLogger("sim")


@dataclasses.dataclass(frozen=True)
class Call:
    """One query-protocol AWS request as an extension sees it: ``params`` are its form fields (each once)."""

    service: str
    operation: str
    region: str
    caller: str  # the calling instance's id (its User-Agent's app id), "-" for the operator
    params: dict[str, str]


@dataclasses.dataclass(frozen=True)
class Reply:
    """An extension's own answer: HTTP status and XML body."""

    status: int
    body: bytes


@dataclasses.dataclass(frozen=True)
class Forward:
    """Forward the call to moto with these form fields instead."""

    params: dict[str, str]


class Extension(Protocol):
    def intercept(self, call: Call) -> Reply | Forward | None:
        """Answer the call, change it, or (None) leave it to moto."""

    def rewrite(self, call: Call, body: bytes) -> bytes:
        """moto's successful answer to the call, as the caller should see it."""


def s3_operation(method: str, path: str) -> str:
    """The S3 operation of a path-style request (``/bucket[/key][?query]``), "" where unknown."""
    bare, _, query = path.partition("?")
    params = parse_qs(query, keep_blank_values=True)
    has_key = "/" in bare.strip("/")
    if method == "GET":
        return "GetObject" if has_key else "ListObjectsV2" if params.get("list-type") == ["2"] else "ListObjects"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "PUT":
        return ("UploadPart" if "partNumber" in params else "PutObject") if has_key else "CreateBucket"
    if method == "POST":
        if "delete" in params:
            return "DeleteObjects"
        return "CreateMultipartUpload" if "uploads" in params else "CompleteMultipartUpload" \
            if "uploadId" in params else ""
    if method == "DELETE":
        return ("AbortMultipartUpload" if "uploadId" in params else "DeleteObject") if has_key else "DeleteBucket"
    return ""


def operation_of(method: str, path: str, headers: dict, body: bytes) -> tuple[str, str]:
    """(service, operation) of one AWS request, e.g. ("route53", "GetChange"); "" where unknown.

    The service comes from the SigV4 credential scope; the operation from the
    query protocol's ``Action`` (EC2, AutoScaling, …), the JSON protocols' ``X-Amz-Target`` or Smithy RPC v2's
    path (CloudWatch), or, for Route53 and S3, the REST method and path.
    """
    scope = _SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(2) if scope else ""
    form = parse_qs(body.decode(errors="replace")) if body and method == "POST" else {}
    operation = (form.get("Action") or [""])[0]
    # The JSON protocols (CloudWatch as botocore speaks it now) name it in X-Amz-Target ("Service.Operation"),
    # Smithy RPC v2 (CBOR) at the end of the path.
    target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), "")
    rpc = _RPC_V2.match(path)
    if not operation and method == "POST" and (target or rpc):
        operation = target.rpartition(".")[2] if target else rpc.group(1)
    if not operation and service == "route53":
        bare = path.split("?")[0]
        operation = next((op for m, pattern, op in _ROUTE53 if m == method and pattern.search(bare)), "")
    if service == "s3":  # REST too; a form body (none is sent) must not be read as a query Action
        operation = s3_operation(method, path)
    return service, operation


def region_of(headers: dict) -> str:
    """The region an AWS request is signed for (its SigV4 credential scope); "" where unsigned."""
    scope = _SCOPE.search(headers.get("Authorization", ""))
    return scope.group(1) if scope else ""


def read_faults(path: str) -> list[dict]:
    """The fault rules: [{"operation", "instance", "region", "error" | "omit_instances"}] ("operation" is
    an API operation, "*", or "<service>:*" such as "s3:*"; "instance" and "region" default to "*"); [] if none."""
    try:
        with open(path) as f:
            return json.load(f).get("rules", [])
    except (FileNotFoundError, ValueError):
        return []


def write_faults(path: str, rules: list[dict]) -> None:
    """Replace the fault rules, atomically (the proxy reads them on every call)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"rules": rules}, f, indent=1)
    os.replace(tmp, path)


def _error_body(operation: str, code: str, ec2_style: bool) -> bytes:
    message = f"{code} injected by the simulator for {operation}"
    if ec2_style:
        return (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
                f"</Errors><RequestID>sim-fault</RequestID></Response>").encode()
    return (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>sim-fault</RequestId></ErrorResponse>").encode()


def omit_instances(body: bytes, instance_ids: set[str]) -> bytes:
    """Remove the given instances from a DescribeAutoScalingGroups or DescribeInstances answer."""
    root = ET.fromstring(body)
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    ET.register_namespace("", namespace)
    q = (lambda tag: f"{{{namespace}}}{tag}") if namespace else (lambda tag: tag)
    for parent in root.iter():
        for child in list(parent):
            if child.tag in (q("member"), q("item")):
                found = child.find(q("InstanceId"))
                if found is None:
                    found = child.find(q("instanceId"))
                if found is not None and found.text in instance_ids:
                    parent.remove(child)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


class AwsProxy:
    """Forwards to ``upstream`` (moto) on ``127.0.0.1:port``, recording calls and applying faults."""

    def __init__(self, upstream: str, faults_file: str, calls_log: str, port: int = 0,
                 extensions: Sequence[Extension] = ()):
        self.upstream = upstream.rstrip("/")
        self.extensions = list(extensions)
        self.faults_file = faults_file
        self.calls_log = calls_log
        self._log_lock = threading.Lock()
        self._http = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    body = self._read_chunked()  # botocore streams S3 uploads with checksums this way
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
                status, headers, content = proxy.forward(self.command, self.path, headers, body)
                self.send_response(status)
                # A HEAD answer has no body but the length of the one a GET would have.
                length = headers.pop("Content-Length", None) if self.command == "HEAD" else None
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", length or str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _read_chunked(self) -> bytes:
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                            pass
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="aws-proxy", daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _session(self) -> requests.Session:
        if not hasattr(self._http, "session"):
            self._http.session = requests.Session()
        return self._http.session

    def forward(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        """Answer one request: an injected error, or moto's answer (less omitted instances).

        Returns (HTTP status, headers, body); every call is appended to the calls log.
        """
        service, operation = operation_of(method, path, headers, body)
        app = _APP_ID.search(headers.get("User-Agent", ""))
        caller = app.group(1) if app else "-"
        region = region_of(headers)
        ec2_style = "ec2." in headers.get("Authorization", "") or "/ec2/" in headers.get("Authorization", "")
        status, out_headers, content = None, {"Content-Type": "text/xml"}, b""
        omitted: set[str] = set()
        for rule in read_faults(self.faults_file):
            if rule.get("operation") not in (operation, "*", f"{service}:*") or not operation:
                continue
            if rule.get("instance", "*") not in ("*", caller) or rule.get("region", "*") not in ("*", region):
                continue
            if rule.get("error"):
                status = _STATUS.get(rule["error"], 400)
                content = _error_body(operation, rule["error"], ec2_style)
                break
            omitted.update(rule.get("omit_instances", ()))
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()} \
            if method == "POST" and operation and service not in ("s3", "route53") else {}
        call = Call(service, operation, region, caller, form)
        if status is None and form:
            try:
                status, content, body = self._extend(call, body)
            except Exception as exc:  # noqa: BLE001 - a bug in an extension must not kill the proxy's thread
                log.warning("proxy extension failed on %s:%s: %s", service, operation, exc)
                status, content = 500, _error_body(operation, "InternalFailure", ec2_style)
        if status is None:
            # The proxy has read the whole body: "Expect: 100-continue" would make moto wait for another.
            forward_headers = {k: v for k, v in headers.items()
                               if k.lower() not in ("host", "content-length", "expect")}
            try:
                response = self._session().request(method, self.upstream + path, headers=forward_headers,
                                                   data=body, timeout=30)
                status, content = response.status_code, response.content
                out_headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
                if method == "HEAD" and "Content-Length" in response.headers:
                    out_headers["Content-Length"] = response.headers["Content-Length"]
                if omitted and status == 200:
                    content = omit_instances(content, omitted)
                if form and status == 200:
                    for extension in self.extensions:
                        content = extension.rewrite(call, content)
            except requests.RequestException as exc:
                status, content = 502, _error_body(operation, "InternalFailure", ec2_style)
                out_headers["X-Sim-Error"] = type(exc).__name__
        with self._log_lock, open(self.calls_log, "a") as f:
            named = f"{service or '?'}:{operation}" if operation else f"{method}:{path.split('?')[0]}"
            f.write(f"{time.time():.3f} {caller} {named} {status}\n")
        return status, out_headers, content

    def _extend(self, call: Call, body: bytes) -> tuple[int | None, bytes, bytes]:
        """(status, answer) of the extension that answers ``call`` (status None: none did) and the body to
        forward (changed by one that asked so)."""
        for extension in self.extensions:
            outcome = extension.intercept(call)
            if isinstance(outcome, Reply):
                return outcome.status, outcome.body, body
            if isinstance(outcome, Forward):
                body = urlencode(outcome.params).encode()
        return None, b"", body

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
