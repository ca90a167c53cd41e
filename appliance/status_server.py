"""The agent's status endpoint (HTTP, JSON) on the instance's private IP.

``GET /status`` answers the agent's state (what peers read before seeding);
``GET /health`` answers 200 while the local member serves as a voting member,
503 otherwise (for load balancers and ASG health checks).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class StatusServer:
    """Serves ``status()`` (a JSON-able dict) until :meth:`close`.

    Args:
        address: (ip, port) to bind.
        status: called per request; its ``"healthy"`` key decides ``/health``.

    Raises:
        OSError: the address cannot be bound (e.g. already in use).
    """

    def __init__(self, address: tuple[str, int], status: Callable[[], dict]):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                body = status()
                if self.path == "/status":
                    code = 200
                elif self.path == "/health":
                    code = 200 if body.get("healthy") else 503
                    body = {"healthy": bool(body.get("healthy")), "state": body.get("state")}
                else:
                    code, body = 404, {"error": "not found"}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # the agent logs decisions, not every probe
                pass

        self._server = ThreadingHTTPServer(address, Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="status", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
