"""A metadata service that misbehaves: refused, hanging, slow, answering garbage or a garbage identity.

Each fault meets the real client (:class:`MetadataClient`) and, for the main ones, the real agent
(``etcd.py run``) through a real HTTP server speaking IMDSv2 on loopback: the client raises
:class:`MetadataUnavailable` with one line naming the path within its time bound (or, when slow but within
the timeout, succeeds), and the agent exits 2 with one line on stderr, before it writes its data directory or
calls AWS.
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appliance.adapters.aws.metadata import MAX_ANSWER_BYTES, MetadataClient, backoff_bound
from appliance.model.errors import MetadataUnavailable
from appliance.sim.aws import free_port
from appliance.sim.supervisor import etcd_binary
from tests.integration.conftest import run_cli

TOKEN = b"AQAEAHd4ZkZ1T3Z2Q0hCQUh6N0d3c3VvbU9hVTRPS0hHZUxmTFlZTGc9PQ=="
GOOD = {
    "instance-id": b"i-0123456789abcdef0",
    "placement/region": b"eu-central-1",
    "placement/availability-zone": b"eu-central-1b",
    "local-ipv4": b"127.0.3.4",
    "autoscaling/target-lifecycle-state": b"InService",
}
HTML = (b"<!DOCTYPE html>\n<html><head><title>Wi-Fi login</title></head>\n<body><h1>Welcome!</h1>"
        b"<p>Please accept the terms of use to continue.</p>" + b"<p>lorem ipsum</p>\n" * 50 + b"</body></html>\n")
HUGE = b"x" * (10 * 1024 * 1024)
HANG_SECONDS = 3.0  # longer than any timeout below: a hanging request always times out first
TIMEOUT = 0.5
ATTEMPTS = 3  # the client tests' own: fewer than the agent's 5, to keep the file fast


class FakeImds:
    """An IMDSv2 service on 127.0.0.1 whose answers a test sets: ``token`` (the PUT's body), ``values``
    (path below ``latest/meta-data/`` → body; absent: 404), ``delay`` (seconds before each answer),
    ``status`` (of every GET that is answered), ``trickle`` (seconds between the bytes of a value's body).
    Every request is recorded in ``seen`` as (method, path)."""

    def __init__(self):
        self.token = TOKEN
        self.values = dict(GOOD)
        self.delay = 0.0
        self.status = 200
        self.trickle = 0.0
        self.extra_headers: dict[str, str] = {}
        self.seen: list[tuple[str, str]] = []
        self.released = threading.Event()  # set at teardown: a hanging handler stops waiting
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> tuple[int, bytes]:
                if self.command == "PUT" and self.path == "/latest/api/token":
                    if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                        return 400, b"missing X-aws-ec2-metadata-token-ttl-seconds"
                    return 200, imds.token
                if self.command == "GET" and self.path.startswith("/latest/meta-data/"):
                    if self.headers.get("X-aws-ec2-metadata-token") != imds.token.decode("latin-1"):
                        return 401, b""
                    body = imds.values.get(self.path.removeprefix("/latest/meta-data/"))
                    return (404, b"") if body is None else (imds.status, body)
                return 404, b""  # anything else, e.g. an AWS API call that should never be made

            def _serve(self) -> None:
                imds.seen.append((self.command, self.path))
                if imds.delay:
                    imds.released.wait(imds.delay)
                status, body = self._answer()
                try:
                    self.send_response(status)
                    for name, value in imds.extra_headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if imds.trickle and self.command == "GET":
                        for i in range(len(body)):  # bounded: the body's length, and the client hangs up
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            if imds.released.wait(imds.trickle):
                                return
                    else:
                        self.wfile.write(body)
                except OSError:
                    pass  # the client gave up: it timed out, or stopped reading an answer too large

            do_GET = do_PUT = do_POST = _serve  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True  # teardown does not wait for a handler still hanging
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="fake-imds", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def imds(request):
    server = FakeImds()
    request.addfinalizer(server.close)
    return server


def closed_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}/"


def bound(client: MetadataClient, paths: int = 1) -> float:
    """The most one failing or succeeding read may take (the client's docstring), plus a second of slack."""
    return paths * (client.attempts * 2 * client.timeout + backoff_bound(client.attempts)) + 1.0


# (name, how the service misbehaves, the path the message names, what else it says)
GARBAGE = [
    ("html", lambda s: s.values.update({p: HTML for p in GOOD}), "instance-id", "'<!DOCTYPE html>"),
    ("html-token", lambda s: setattr(s, "token", HTML), "latest/api/token", "not an IMDSv2 session token"),
    ("binary", lambda s: s.values.update({"instance-id": b"\xff\xfe\x00i-\x80\x81"}), "instance-id",
     "not UTF-8 text"),
    ("huge", lambda s: s.values.update({"instance-id": HUGE}), "instance-id", f"more than {MAX_ANSWER_BYTES} bytes"),
    ("huge-token", lambda s: setattr(s, "token", HUGE), "latest/api/token", f"more than {MAX_ANSWER_BYTES} bytes"),
    ("long-token", lambda s: setattr(s, "token", b"t" * 2000), "latest/api/token", "not an IMDSv2 session token"),
    ("empty-token", lambda s: setattr(s, "token", b""), "latest/api/token", "not an IMDSv2 session token"),
    ("redirect", lambda s: (setattr(s, "status", 302), s.extra_headers.update({"Location": "http://login.example/"})),
     "instance-id", "HTTP 302, not 200"),
    ("server-error", lambda s: setattr(s, "status", 500), "instance-id", "unreachable"),
    ("region", lambda s: s.values.update({"placement/region": b"not a region!"}), "placement/region",
     "'not a region!', not an AWS region such as eu-central-1"),
    ("instance-id", lambda s: s.values.update({"instance-id": b"abc"}), "instance-id",
     "'abc', not an EC2 instance id"),
    ("zone-of-another-region", lambda s: s.values.update({"placement/availability-zone": b"eu-west-1a"}),
     "placement/availability-zone", "'eu-west-1a', not an availability zone of eu-central-1"),
    ("ip-999", lambda s: s.values.update({"local-ipv4": b"999.1.1.1"}), "local-ipv4",
     "'999.1.1.1', not an instance's IPv4 address"),
    ("ip-unspecified", lambda s: s.values.update({"local-ipv4": b"0.0.0.0"}), "local-ipv4",
     "'0.0.0.0', not an instance's IPv4 address"),
    ("public-ip-999", lambda s: s.values.update({"public-ipv4": b"999.1.1.1"}), "public-ipv4",
     "'999.1.1.1', not an instance's IPv4 address"),
]


def assert_one_line_naming(exc: MetadataUnavailable, endpoint: str, path: str, what: str) -> None:
    message = str(exc)
    assert "\n" not in message and len(message) < 500, message
    assert endpoint in message and f" {path}" in message and what in message, message
    assert "lorem ipsum" not in message  # a quote, never the page


@pytest.mark.parametrize("name, fault, path, what", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_a_garbage_answer_is_retried_then_unavailable(imds, name, fault, path, what):
    fault(imds)
    client = MetadataClient(imds.endpoint, timeout=TIMEOUT, attempts=ATTEMPTS)
    started = time.monotonic()
    with pytest.raises(MetadataUnavailable) as raised:
        client.identity(public=True)
    elapsed = time.monotonic() - started
    assert_one_line_naming(raised.value, imds.endpoint, path, what)
    assert elapsed < bound(client, paths=5), elapsed
    # Retried like no answer: the failing request was made once per attempt.
    failing = "/latest/api/token" if path == "latest/api/token" else "/latest/meta-data/" + path
    assert [p for _, p in imds.seen].count(failing) == ATTEMPTS


def test_a_refused_connection_is_unavailable(tmp_path):
    endpoint = closed_endpoint()
    client = MetadataClient(endpoint, timeout=TIMEOUT, attempts=ATTEMPTS)
    started = time.monotonic()
    with pytest.raises(MetadataUnavailable) as raised:
        client.identity()
    assert time.monotonic() - started < bound(client)
    assert_one_line_naming(raised.value, endpoint, "instance-id", f"unreachable after {ATTEMPTS} attempts")


def test_a_hanging_service_is_unavailable_within_the_bound(imds):
    imds.delay = HANG_SECONDS
    client = MetadataClient(imds.endpoint, timeout=TIMEOUT, attempts=ATTEMPTS)
    started = time.monotonic()
    with pytest.raises(MetadataUnavailable) as raised:
        client.identity()
    elapsed = time.monotonic() - started
    assert_one_line_naming(raised.value, imds.endpoint, "instance-id", "unreachable")
    assert ATTEMPTS * TIMEOUT <= elapsed < bound(client), elapsed


def test_an_answer_that_trickles_in_is_cut_off_within_the_bound(imds):
    imds.trickle = 0.1  # each byte well within the read timeout, the whole far beyond it
    imds.values["instance-id"] = b"i-0123456789abcdef0" + b" " * 40
    client = MetadataClient(imds.endpoint, timeout=TIMEOUT, attempts=ATTEMPTS)
    started = time.monotonic()
    with pytest.raises(MetadataUnavailable) as raised:
        client.identity()
    elapsed = time.monotonic() - started
    assert_one_line_naming(raised.value, imds.endpoint, "instance-id", f"too slowly (not complete within {TIMEOUT:g}")
    assert elapsed < bound(client), elapsed


def test_a_slow_service_within_the_timeout_is_waited_for(imds):
    imds.delay = 0.2
    client = MetadataClient(imds.endpoint, timeout=0.6, attempts=ATTEMPTS)
    started = time.monotonic()
    identity = client.identity()
    elapsed = time.monotonic() - started
    assert (identity.instance_id, identity.region, identity.availability_zone, identity.private_ip) == \
        ("i-0123456789abcdef0", "eu-central-1", "eu-central-1b", "127.0.3.4")
    assert len(imds.seen) == 5, imds.seen  # one token and four values: nothing was retried
    assert elapsed < 5 * 0.6, elapsed


def test_a_garbage_answer_that_clears_up_is_accepted(imds):
    """A captive proxy's page for a moment, then the real service: the retry reads the real value."""
    imds.values["placement/region"] = HTML

    def clear_up():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and ("GET", "/latest/meta-data/placement/region") not in imds.seen:
            time.sleep(0.01)
        imds.values["placement/region"] = b"eu-central-1"

    helper = threading.Thread(target=clear_up, daemon=True)
    helper.start()
    client = MetadataClient(imds.endpoint, timeout=TIMEOUT, attempts=5)
    assert client.identity().region == "eu-central-1"
    helper.join(timeout=5)


@pytest.mark.parametrize("answer, expected", [
    (b"Terminated", "Terminated"),
    (b"InService", "InService"),
    (b"<html><body>Login</body></html>", None),
    (b"terminated", None),
    (b"Terminating", None),
    (b"\xff\xfeTerminated", None),
    (HUGE, None),
])
def test_a_garbage_target_lifecycle_state_is_unknown(imds, answer, expected):
    imds.values["autoscaling/target-lifecycle-state"] = answer
    client = MetadataClient(imds.endpoint, timeout=TIMEOUT, attempts=ATTEMPTS)
    assert client.target_lifecycle_state() == expected


def test_a_garbage_token_leaves_the_target_lifecycle_state_unknown(imds):
    imds.token = HTML
    assert MetadataClient(imds.endpoint, timeout=TIMEOUT, attempts=ATTEMPTS).target_lifecycle_state() is None


AGENT_CASES = {
    "region": lambda s: s.values.update({"placement/region": b"not a region!"}),
    "ip": lambda s: s.values.update({"local-ipv4": b"999.1.1.1"}),
    "html": lambda s: s.values.update({p: HTML for p in GOOD}),
    "hang": lambda s: setattr(s, "delay", HANG_SECONDS),
}


@pytest.mark.parametrize("case", list(AGENT_CASES))
def test_the_agent_exits_2_with_one_line_before_it_starts_anything(imds, tmp_path, case):
    AGENT_CASES[case](imds)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETCD"))}
    # AWS's endpoint is the fake service too: an AWS call, which must not happen, would be seen there.
    env.update({"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.endpoint, "AWS_ENDPOINT_URL": imds.endpoint,
                "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "APPLIANCE_ETCD_BINARY": etcd_binary(),
                "DATA_DIR": str(tmp_path / "data"), "REQUEST_TIMEOUT": str(TIMEOUT)})
    started = time.monotonic()
    done = run_cli("run", env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("etcd.py: error: instance metadata"), done.stderr
    assert "Traceback" not in done.stderr and "lorem ipsum" not in done.stderr
    assert not (tmp_path / "data").exists()
    assert all(path.startswith("/latest/") for _, path in imds.seen), imds.seen
    # The agent's 5 attempts of 2 requests each, its backoff, and its own start-up.
    assert elapsed < 5 * 2 * TIMEOUT + backoff_bound(5) + 15, elapsed
