"""etcd's JSON gateway answers of other shapes, from a real HTTP server on 127.0.0.1 that is not etcd: every
client call turns them into one EtcdUnavailable naming the endpoint and the path, never a ValueError, a
TypeError or a KeyError; a good endpoint after a bad one is still asked. Then the pure readers as tables."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from appliance.adapters.etcd import answers
from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.model.keys import Credentials, KeyValue, RangePage
from appliance.model.members import Member, MemberList
from tests.unit.adapters.conftest import serve


class Impostor(ThreadingHTTPServer):
    """Answers every POST and GET with ``self.answers[path]`` (status, body bytes), else 200 ``{}``."""

    answers: dict[str, tuple[int, bytes]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def impostor(request):
    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            code, data = self.server.answers.get(self.path, (200, b"{}"))
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = _answer  # noqa: N815 - the http.server API

        def log_message(self, *args):
            pass

    server = Impostor(("127.0.0.1", 0), Handler)
    server.answers = {}
    return serve(request, server)


def body(value) -> tuple[int, bytes]:
    return 200, json.dumps(value).encode()


CALLS = [
    # (name, path, answer, the call)
    ("member list: cluster_id a word", "/v3/cluster/member/list", body({"header": {"cluster_id": "abc"}}),
     lambda c: c.member_list()),
    ("member list: header a list", "/v3/cluster/member/list", body({"header": [1]}), lambda c: c.member_list()),
    ("member list: members a dict", "/v3/cluster/member/list", body({"members": {"ID": "1"}}),
     lambda c: c.member_list()),
    ("member list: a member without ID", "/v3/cluster/member/list", body({"members": [{"name": "i-1"}]}),
     lambda c: c.member_list()),
    ("member list: peerURLs a string", "/v3/cluster/member/list",
     body({"members": [{"ID": "1", "peerURLs": "http://x:2380"}]}), lambda c: c.member_list()),
    ("member list: a JSON list", "/v3/cluster/member/list", body([1, 2]), lambda c: c.member_list()),
    ("member list: HTML", "/v3/cluster/member/list", (200, b"<html>welcome to nginx</html>"),
     lambda c: c.member_list()),
    ("member list: HTML 404", "/v3/cluster/member/list", (404, b"<html>not found</html>"),
     lambda c: c.member_list()),
    ("member list: a result that is a string", "/v3/cluster/member/list", body({"result": "ok"}),
     lambda c: c.member_list()),
    ("member add: no member", "/v3/cluster/member/add", body({"members": []}),
     lambda c: c.member_add(["http://127.0.1.9:2380"])),
    ("status: leader a float", "/v3/maintenance/status", body({"leader": 1.5}), lambda c: c.status(c.endpoints[0])),
    ("status: isLearner a string", "/v3/maintenance/status", body({"isLearner": "false"}),
     lambda c: c.status(c.endpoints[0])),
    ("status: revision too large", "/v3/maintenance/status", body({"header": {"revision": str(2 ** 64)}}),
     lambda c: c.status(c.endpoints[0])),
    ("status: errors a string", "/v3/maintenance/status", body({"errors": "NOSPACE"}),
     lambda c: c.status(c.endpoints[0])),
    ("version: a list", "/version", body(["3.5.1"]), lambda c: c.version(c.endpoints[0])),
    ("version: HTML", "/version", (200, b"<html/>"), lambda c: c.version(c.endpoints[0])),
    ("version: a number", "/version", body({"etcdserver": 3.5, "etcdcluster": "3.5.0"}),
     lambda c: c.version(c.endpoints[0])),
    ("range: kvs a dict", "/v3/kv/range", body({"kvs": {"key": "YQ=="}}), lambda c: c.range(b"a")),
    ("range: a key not base64", "/v3/kv/range", body({"kvs": [{"key": "not base64!"}]}), lambda c: c.range(b"a")),
    ("range: a revision as a word", "/v3/kv/range", body({"kvs": [{"key": "YQ==", "mod_revision": "x"}]}),
     lambda c: c.range(b"a")),
    ("range: more a string", "/v3/kv/range", body({"more": "false"}), lambda c: c.range(b"a")),
    ("get: a lease as a float", "/v3/kv/range", body({"kvs": [{"key": "YQ==", "lease": 1.5}]}), lambda c: c.get("a")),
    ("count: a word", "/v3/kv/range", body({"count": "many"}), lambda c: c.count(b"a", b"b")),
    ("txn: succeeded a string", "/v3/kv/txn", body({"succeeded": "true"}), lambda c: c.txn([], [])),
    ("txn: responses a dict", "/v3/kv/txn", body({"responses": {}}), lambda c: c.txn([], [])),
    ("create if absent: the range is a list", "/v3/kv/txn", body({"responses": [{"response_range": []}]}),
     lambda c: c.create_if_absent("/k", "v", 1)),
    ("delete if value: header a string", "/v3/kv/txn", body({"header": "x"}),
     lambda c: c.delete_if_value("/k", "v")),
    ("put: revision true", "/v3/kv/put", body({"header": {"revision": True}}), lambda c: c.put("/k", "v")),
    ("delete: deleted a list", "/v3/kv/deleterange", body({"deleted": [1]}), lambda c: c.delete("/k")),
    ("lease grant: no ID", "/v3/lease/grant", body({"TTL": "10"}), lambda c: c.lease_grant(10)),
    ("lease grant: ID a word", "/v3/lease/grant", body({"ID": "lease"}), lambda c: c.lease_grant(10)),
    ("lease keep-alive: TTL a dict", "/v3/lease/keepalive", body({"result": {"TTL": {}}}),
     lambda c: c.lease_keepalive(7)),
    ("lease time to live: TTL a float", "/v3/lease/timetolive", body({"TTL": 0.5}),
     lambda c: c.lease_time_to_live(7)),
    ("user roles: roles a string", "/v3/auth/user/get", body({"roles": "root"}), lambda c: c.user_roles("u")),
    ("role permissions: a key not base64", "/v3/auth/role/get", body({"perm": [{"key": "%%"}]}),
     lambda c: c.role_permissions("r")),
    ("role permissions: perm a dict", "/v3/auth/role/get", body({"perm": {}}), lambda c: c.role_permissions("r")),
]


@pytest.mark.parametrize("path, answer, call", [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_an_answer_that_is_not_etcds_is_unavailable_in_one_line(impostor, path, answer, call):
    impostor.answers[path] = answer
    with pytest.raises(EtcdUnavailable) as caught:
        call(EtcdClient([impostor.url], timeout=2.0))
    message = str(caught.value)
    assert f"{impostor.url}{path}: answered something that is not etcd's: " in message
    assert "\n" not in message and len(message) < 400


def test_an_authentication_answer_without_a_token_is_unavailable(impostor):
    impostor.answers["/v3/auth/authenticate"] = body({"token": 5})
    with pytest.raises(EtcdUnavailable, match="/v3/auth/authenticate: answered something that is not etcd's"):
        EtcdClient([impostor.url], timeout=2.0, credentials=Credentials("root", "pw")).member_list()


def test_an_error_of_etcds_shape_is_still_an_etcd_error(impostor):
    impostor.answers["/v3/kv/put"] = (400, json.dumps({"error": "etcdserver: no space", "code": 8}).encode())
    with pytest.raises(EtcdError) as caught:
        EtcdClient([impostor.url], timeout=2.0).put("/k", "v")
    assert (caught.value.message, caught.value.code) == ("etcdserver: no space", 8)


def test_an_error_whose_code_is_not_a_number_keeps_its_message(impostor):
    impostor.answers["/v3/kv/put"] = (500, json.dumps({"error": "oops", "message": {"a": 1}, "code": "x"}).encode())
    with pytest.raises(EtcdError) as caught:
        EtcdClient([impostor.url], timeout=2.0).put("/k", "v")
    assert caught.value.code is None and isinstance(caught.value.message, str)


def test_the_next_endpoint_is_asked_after_one_that_is_not_etcd(impostor, request):
    good = Impostor(("127.0.0.1", 0), impostor.RequestHandlerClass)
    good.answers = {"/v3/cluster/member/list": body({
        "header": {"cluster_id": "14841639068965178418", "member_id": "10276657743932975437"},
        "members": [{"ID": "10276657743932975437", "name": "i-1", "peerURLs": ["http://127.0.1.4:2380"],
                     "clientURLs": ["http://127.0.1.4:2379"]}, {"ID": "2", "isLearner": True}]})}
    threading.Thread(target=good.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    request.addfinalizer(lambda: (good.shutdown(), good.server_close()))
    impostor.answers["/v3/cluster/member/list"] = body({"header": {"cluster_id": []}})
    listed = EtcdClient([impostor.url, good.url], timeout=2.0).member_list()
    assert listed == MemberList(14841639068965178418, 10276657743932975437, (
        Member(10276657743932975437, "i-1", ("http://127.0.1.4:2380",), ("http://127.0.1.4:2379",)),
        Member(2, "", (), (), True)))


def test_a_health_answer_of_another_shape_is_unhealthy(impostor):
    impostor.answers["/health"] = body(["true"])
    assert EtcdClient([impostor.url], timeout=2.0).healthy(impostor.url) is False
    impostor.answers["/health"] = body({"health": "true"})
    assert EtcdClient([impostor.url], timeout=2.0).healthy(impostor.url) is True


# --- the pure readers --------------------------------------------------------------------------------
INTEGERS = [
    ("absent", None, False, 0), ("a string", "42", False, 42), ("a number", 42, False, 42),
    ("uint64's largest", str(2 ** 64 - 1), False, 2 ** 64 - 1), ("a negative TTL", "-1", True, -1),
    ("int64's smallest", str(-2 ** 63), True, -2 ** 63),
]


@pytest.mark.parametrize("value, signed, expected", [c[1:] for c in INTEGERS], ids=[c[0] for c in INTEGERS])
def test_an_integer_field(value, signed, expected):
    assert answers.integer(value, "f", signed) == expected


NOT_INTEGERS = [
    ("true", True, False), ("a float", 1.0, False), ("a word", "x", False), ("a list", [1], False),
    ("2**64", str(2 ** 64), False), ("negative unsigned", "-1", False), ("2**63 signed", str(2 ** 63), True),
    ("spaces", " 1", False), ("a plus sign", "+1", False), ("too many digits", "1" * 30, False),
]


@pytest.mark.parametrize("value, signed", [c[1:] for c in NOT_INTEGERS], ids=[c[0] for c in NOT_INTEGERS])
def test_not_an_integer_field(value, signed):
    with pytest.raises(answers.NotEtcd):
        answers.integer(value, "f", signed)


def test_a_range_page_as_etcd_answers_it():
    answer = {"header": {"revision": "9"}, "more": True,
              "kvs": [{"key": "YQ==", "value": "Yg==", "create_revision": "2", "mod_revision": "3", "version": "1",
                       "lease": "7"}, {"key": "Yw=="}]}
    assert answers.range_page(answer) == RangePage((KeyValue(b"a", b"b", 2, 3, 1, 7), KeyValue(b"c", b"")), True, 9)


MEMBERS = [
    ("no ID", {"name": "i-1"}, "ID is .None."),
    ("ID 0", {"ID": "0"}, "not a member id"),
    ("ID 2**64", {"ID": str(2 ** 64)}, "not a member id"),
    ("ID true", {"ID": True}, "not a member id"),
    ("ID a word", {"ID": "abc"}, "not a member id"),
    ("a name that is a number", {"ID": "1", "name": 5}, "name is not a string"),
    ("clientURLs with a number", {"ID": "1", "clientURLs": [1]}, "clientURLs is not a list of URLs"),
    ("isLearner a string", {"ID": "1", "isLearner": "true"}, "isLearner is not a boolean"),
    ("a list", [], "not an object"),
]


@pytest.mark.parametrize("item, words", [c[1:] for c in MEMBERS], ids=[c[0] for c in MEMBERS])
def test_a_member_of_another_shape_is_refused(item, words):
    with pytest.raises(ValueError, match=words):
        Member.from_json(item)


@pytest.mark.parametrize("line", [
    b"[1, 2, 3]\n",                                                     # JSON, not an object
    b'{"result": {"header": {"revision": "many"}}}\n',                  # a revision that is no number
    b'{"result": {"events": [{"kv": {"key": "!!not base64!!"}}]}}\n',   # a key that is no base64
    b"<html><body>proxy error</body></html>\n",                         # not JSON at all
])
def test_a_watch_answering_something_else_is_unavailable_never_a_crash(impostor, line):
    from appliance.adapters.etcd.watch import WatchStream

    impostor.answers["/v3/watch"] = (200, line)
    stream = WatchStream(impostor.url, b"/a/", b"/a0", connect_timeout=2, idle_timeout=2)
    try:
        with pytest.raises(EtcdUnavailable, match="not etcd's|stream"):
            for _ in itertools.islice(stream, 10):  # bounded: a well-behaved stream would end at the closed connection
                pass
    finally:
        stream.close()
