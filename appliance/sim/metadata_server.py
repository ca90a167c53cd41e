"""Per-instance EC2 instance metadata, IMDSv2 only, for the simulated instances.

moto's own metadata endpoint answers one fixed instance for everyone (docs/design.md,
"Measured facts it rests on"),
so each simulated instance gets its own base URL ``http://127.0.0.1:<port>/<instance-id>/``.
The target lifecycle state is read from a file that the simulator's termination hooks
write (:mod:`.autoscaling_hooks`), so that the agent sees what a lifecycle hook gives on AWS.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass(frozen=True)
class InstanceMetadata:
    instance_id: str
    region: str
    availability_zone: str
    private_ip: str
    lifecycle_file: str  # holds the target lifecycle state; absent means InService
    public_ip: str | None = None  # an Elastic IP the simulator associated, None: no public address


class MetadataServer:
    """Serves IMDSv2 for registered instances on ``127.0.0.1:port`` (port 0: any free port)."""

    def __init__(self, port: int = 0):
        self.instances: dict[str, InstanceMetadata] = {}
        self.tokens: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, text: str = "") -> None:
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _split(self):
                parts = self.path.lstrip("/").split("/", 1)
                return server.instances.get(parts[0]), "/" + (parts[1] if len(parts) > 1 else "")

            def do_PUT(self):  # noqa: N802
                instance, path = self._split()
                if instance is None or path != "/latest/api/token":
                    return self._reply(404)
                if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self._reply(400, "missing X-aws-ec2-metadata-token-ttl-seconds")
                token = secrets.token_urlsafe(24)
                server.tokens.add(token)
                self._reply(200, token)

            def do_GET(self):  # noqa: N802
                instance, path = self._split()
                if instance is None:
                    return self._reply(404)
                if self.headers.get("X-aws-ec2-metadata-token") not in server.tokens:
                    return self._reply(401)  # IMDSv1 (no token) is refused, as HttpTokens=required does
                value = server.lookup(instance, path.removeprefix("/latest/meta-data/"))
                self._reply(200, value) if value is not None else self._reply(404)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="metadata", daemon=True).start()

    def endpoint(self, instance_id: str) -> str:
        """The base URL an instance's SDK uses (``AWS_EC2_METADATA_SERVICE_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.port}/{instance_id}/"

    def register(self, instance: InstanceMetadata) -> None:
        self.instances[instance.instance_id] = instance

    @staticmethod
    def lookup(instance: InstanceMetadata, path: str) -> str | None:
        if path == "autoscaling/target-lifecycle-state":
            try:
                with open(instance.lifecycle_file) as f:
                    return f.read().strip() or "InService"
            except FileNotFoundError:
                return "InService"
        if path == "public-ipv4":
            return instance.public_ip  # absent (404) without one, as on AWS
        return {
            "instance-id": instance.instance_id,
            "local-ipv4": instance.private_ip,
            "placement/region": instance.region,
            "placement/availability-zone": instance.availability_zone,
        }.get(path)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def write_lifecycle(lifecycle_file: str, state: str) -> None:
    """Set an instance's target lifecycle state (e.g. ``Terminated``), atomically."""
    os.makedirs(os.path.dirname(lifecycle_file), exist_ok=True)
    tmp = lifecycle_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(state)
    os.replace(tmp, lifecycle_file)
