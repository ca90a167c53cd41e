"""The agent's status endpoint (HTTP, JSON; HTTPS with the instance's certificate where etcd speaks TLS)
on the instance's private IP.

``GET /status`` answers the agent's state (what peers read before seeding);
``GET /health`` answers 200 while the local member serves as a voting member,
503 otherwise (for load balancers and ASG health checks); ``GET /metrics`` answers the
agent's Prometheus metrics where it has them. No client certificate is asked for: load balancers'
health checks and Prometheus scrapers have none, and nothing served is secret.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence

import requests

from appliance.model.observation import MalformedStatus

MAX_STATUS_BYTES = 64 * 1024  # an agent's document is about 1 KiB; anything far larger is not one


def fetch_status(host: str, port: int, timeout: float, ca_file: str | None = None,
                 http: requests.Session | None = None) -> dict | None:
    """Another agent's ``GET /status`` on ``host``: HTTPS verified with ``ca_file`` where given (the members
    speak TLS), else plain HTTP.

    Args:
        timeout: seconds to connect and for each read. http: a session to reuse (default: none).

    Returns:
        The decoded JSON object, or None when nothing answers with 200 (no connection, a timeout, TLS
        refused, another status code): the agent does not answer.

    Raises:
        MalformedStatus: something answered 200 with a body over :data:`MAX_STATUS_BYTES` bytes, or with
            something that is not a JSON object. Its shape is not checked here: see
            :func:`appliance.model.observation.peer_status`.
    """
    url = f"{'https' if ca_file else 'http'}://{host}:{port}/status"
    try:
        # verify on the call, not the session: REQUESTS_CA_BUNDLE would beat a session's (psf/requests#3829).
        # Streamed, so that a body too large is refused after MAX_STATUS_BYTES, not read whole into memory.
        answer = (http or requests).get(url, timeout=timeout, verify=ca_file if ca_file else True, stream=True)
    except requests.RequestException:
        return None
    try:
        if answer.status_code != 200:
            return None
        data = _bounded(answer, time.monotonic() + 2 * timeout)
    except requests.RequestException:
        return None
    finally:
        answer.close()
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise MalformedStatus(f"the answer is not JSON ({len(data)} bytes)") from None
    if not isinstance(body, dict):
        raise MalformedStatus(f"the answer is a JSON {type(body).__name__}, not an object")
    return body


def _bounded(answer: requests.Response, deadline: float) -> bytes:
    """The body of ``answer``, refused once it exceeds :data:`MAX_STATUS_BYTES` (declared or read), or when it is
    not complete by ``deadline`` (monotonic seconds): a peer trickling its answer must not stall the cycle."""
    declared = answer.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_STATUS_BYTES:
        raise MalformedStatus(f"the answer is {declared} bytes, over the {MAX_STATUS_BYTES} a status may have")
    data = bytearray()
    # read1 returns after one socket read, so the deadline is checked while an answer trickles in.
    read1 = getattr(answer.raw, "read1", None)
    read, size = (read1, 16 * 1024) if read1 is not None else (answer.raw.read, 256)
    while chunk := read(size, decode_content=True):
        data += chunk
        if len(data) > MAX_STATUS_BYTES:
            raise MalformedStatus(f"the answer is over the {MAX_STATUS_BYTES} bytes a status may have")
        if time.monotonic() > deadline:
            raise MalformedStatus("the answer was not complete in time (it trickles in)")
    return bytes(data)


def read_status(host: str, port: int, timeout: float, ca_file: str | None = None,
                http: requests.Session | None = None) -> dict | None:
    """As :func:`fetch_status`, for display (``etcd.py status``): None also where it raises MalformedStatus."""
    try:
        return fetch_status(host, port, timeout, ca_file, http)
    except MalformedStatus:
        return None


class _TlsServer(ThreadingHTTPServer):
    """HTTPS: each accepted connection is wrapped, its handshake left to the request's own thread (on the
    first read), so that a client that never completes it cannot stall ``accept``."""

    def __init__(self, address: tuple[str, int], handler, context: ssl.SSLContext):
        self.context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, tuple]:
        conn, peer = self.socket.accept()
        conn.settimeout(10.0)  # a handshake or a request that stalls gives up after this many seconds
        return self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), peer

    def handle_error(self, request, client_address) -> None:
        # A refused handshake (plain HTTP, a wrong CA) is the client's problem: no traceback on stderr.
        pass


class StatusServer:
    """Serves ``status()`` (a JSON-able dict) until :meth:`close`.

    Args:
        address: (ip, port) to bind. status: called per request; its ``"healthy"`` key decides ``/health``.
        more: further addresses to serve the same on (e.g. a public address of this host).
        metrics: called per ``/metrics`` request: the Prometheus text exposition.
        tls: a server SSL context (HTTPS), None for plain HTTP.

    Raises:
        OSError: an address cannot be bound (e.g. already in use).
    """

    def __init__(self, address: tuple[str, int], status: Callable[[], dict], more: Sequence[tuple[str, int]] = (),
                 metrics: Callable[[], bytes] | None = None, tls: ssl.SSLContext | None = None):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                if self.path == "/metrics" and metrics is not None:
                    self._answer(200, metrics(), "text/plain; version=0.0.4")
                    return
                body = status()
                if self.path == "/status":
                    code = 200
                elif self.path == "/health":
                    code = 200 if body.get("healthy") else 503
                    body = {"healthy": bool(body.get("healthy")), "state": body.get("state")}
                else:
                    code, body = 404, {"error": "not found"}
                self._answer(code, json.dumps(body).encode(), "application/json")

            def _answer(self, code: int, data: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # the agent logs decisions, not every probe
                pass

        self._servers = []
        try:
            for where in (address, *more):
                server = (_TlsServer(where, Handler, tls) if tls is not None
                          else ThreadingHTTPServer(where, Handler))
                server.daemon_threads = True
                self._servers.append(server)
                threading.Thread(target=server.serve_forever, name="status", daemon=True).start()
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
