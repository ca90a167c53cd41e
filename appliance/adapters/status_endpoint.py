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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Sequence

import requests


def read_status(host: str, port: int, timeout: float, ca_file: str | None = None,
                http: requests.Session | None = None) -> dict | None:
    """Another agent's ``GET /status`` on ``host``: HTTPS verified with ``ca_file`` where given (the members
    speak TLS), else plain HTTP. None when it does not answer with 200 and a JSON object.

    Args:
        timeout: seconds to connect and to read. http: a session to reuse (default: none).
    """
    url = f"{'https' if ca_file else 'http'}://{host}:{port}/status"
    try:
        # verify on the call, not the session: REQUESTS_CA_BUNDLE would beat a session's (psf/requests#3829).
        answer = (http or requests).get(url, timeout=timeout, verify=ca_file if ca_file else True)
        body = answer.json() if answer.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    return body if isinstance(body, dict) else None


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
