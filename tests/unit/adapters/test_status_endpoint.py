"""Reading another agent's ``/status`` from a real HTTP server on 127.0.0.1 that answers what each case says:
no answer is None, an answer that is not a JSON object or is too large is refused (MalformedStatus), and
``read_status`` (for display) never raises."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appliance.adapters.status_endpoint import MAX_STATUS_BYTES, fetch_status, read_status
from appliance.model.observation import MalformedStatus
from tests.unit.adapters.conftest import serve

DOCUMENT = {"running": False, "has_data": False, "region": "eu-central-1"}


@pytest.fixture
def agent(request):
    """A server on 127.0.0.1: set ``.answer = (status code, body bytes, declare the length)``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            code, data, declared = server.answer
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            if declared:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                if getattr(server, "trickle", 0):
                    for i in range(len(data)):  # one byte at a time, each within the read timeout
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(server.trickle)
                else:
                    self.wfile.write(data)
            except OSError:  # the client stopped reading a body too large (or too slow)
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.answer = (200, json.dumps(DOCUMENT).encode(), True)
    return serve(request, server)


def port(server) -> int:
    return server.server_address[1]


def test_a_status_document_is_read(agent):
    assert fetch_status("127.0.0.1", port(agent), 2.0) == DOCUMENT


@pytest.mark.parametrize("answer", [
    (404, b'{"error": "not found"}', True),
    (503, json.dumps(DOCUMENT).encode(), True),
], ids=["404", "503"])
def test_another_status_code_is_no_answer(agent, answer):
    agent.answer = answer
    assert fetch_status("127.0.0.1", port(agent), 2.0) is None


def test_nothing_listening_is_no_answer(agent):
    free = port(agent)
    agent.shutdown()
    agent.server_close()
    assert fetch_status("127.0.0.1", free, 1.0) is None


MALFORMED = [
    ("HTML", (200, b"<html>it works</html>", True), "not JSON"),
    ("empty", (200, b"", True), "not JSON"),
    ("a JSON list", (200, b"[1, 2]", True), "JSON list"),
    ("JSON null", (200, b"null", True), "JSON NoneType"),
    ("too deep to decode", (200, b"[" * 50000 + b"]" * 50000, False), "over the"),
    ("nested deeply within the limit", (200, b"[" * 30000 + b"]" * 30000, True), "not JSON"),
    ("over 64 KiB, declared", (200, b'{"x": "' + b"a" * MAX_STATUS_BYTES + b'"}', True), "bytes, over the"),
    ("over 64 KiB, not declared", (200, b'{"x": "' + b"a" * (4 * MAX_STATUS_BYTES) + b'"}', False),
     "over the 65536 bytes"),
]


@pytest.mark.parametrize("answer, words", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_an_answer_that_is_not_a_status_document_is_refused(agent, answer, words):
    agent.answer = answer
    with pytest.raises(MalformedStatus) as caught:
        fetch_status("127.0.0.1", port(agent), 2.0)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert read_status("127.0.0.1", port(agent), 2.0) is None  # for display: nothing shown, nothing raised


def test_a_body_of_exactly_the_limit_is_read(agent):
    padding = MAX_STATUS_BYTES - len(json.dumps({**DOCUMENT, "pad": ""}).encode())
    body = {**DOCUMENT, "pad": "a" * padding}
    agent.answer = (200, json.dumps(body).encode(), False)
    assert fetch_status("127.0.0.1", port(agent), 2.0) == body


def test_an_answer_that_trickles_in_is_refused_within_twice_the_timeout(agent):
    # Each byte comes within the read timeout, so only an overall deadline ends it: without one, a peer could
    # hold the leader's cycle for hours with a 64 KiB answer.
    agent.answer = (200, json.dumps(DOCUMENT).encode(), True)
    agent.trickle = 0.2
    started = time.monotonic()
    with pytest.raises(MalformedStatus, match="not complete in time"):
        fetch_status("127.0.0.1", port(agent), 0.5)
    assert time.monotonic() - started < 3.0
