"""A thin etcd v3 client over etcd's JSON gateway (``/v3/...``), with a timeout on every call.

Why our own (docs/design.md, "Why a client of our own"): ``aetcd`` lacks the learner flag,
``etcd3gw`` lacks MemberAdd/Promote and drops watch fields, ``python-etcd`` speaks
only v2. The gateway is served by every etcd 3.4+ on its client URL, needs only
``requests``, and is what Patroni uses. Field names follow etcd's
``api/etcdserverpb/rpc.proto``; 64-bit integers travel as JSON strings and keys
and values as base64.
"""

from __future__ import annotations

import base64
import json
from typing import Callable, Iterable, Sequence, TypeVar

import requests

from appliance.adapters.etcd import answers
from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.model.keys import Credentials, Permission, RangePage
from appliance.model.members import EndpointStatus, Member, MemberList
from appliance.model.tls import TlsFiles

T = TypeVar("T")

# Answers after which a fresh token is worth one retry (etcd's rpctypes and auth store): simple
# tokens live on the member that issued them and expire (--auth-token-ttl, 300 s), and every
# change of users or roles makes tokens issued before it "old" — which the gateway reports
# either as the gRPC error ("revision of auth store is old") or as the auth store's own
# ("auth: revision in header is old"). The request was refused, not applied, so a retry is safe.
_RETRY_WITH_NEW_TOKEN = ("invalid auth token", "revision of auth store is old", "revision in header is old",
                         "user name is empty")


def _b64(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


# Transaction parts in the gateway's JSON shape (rpc.proto: RequestOp, Compare), for :meth:`EtcdClient.txn`.
def op_put(key: bytes | str, value: bytes | str, lease: int = 0) -> dict:
    """A put operation; ``lease`` 0 for none."""
    put = {"key": _b64(key), "value": _b64(value)}
    if lease:
        put["lease"] = str(lease)
    return {"request_put": put}


def op_delete(key: bytes | str) -> dict:
    """A delete of one key (harmless if it does not exist)."""
    return {"request_delete_range": {"key": _b64(key)}}


def compare_value(key: bytes | str, value: bytes | str) -> dict:
    """True if ``key`` holds ``value`` (false for a missing key)."""
    return {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}


def compare_absent(key: bytes | str) -> dict:
    """True if ``key`` does not exist (its create revision is 0)."""
    return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def compare_lease(key: bytes | str, lease_id: int) -> dict:
    """True if ``key`` exists bound to the lease ``lease_id`` (etcd's LEASE compare target, since 3.3):
    a fence, since the key vanishes with the lease and a later holder's key has another lease."""
    return {"key": _b64(key), "target": "LEASE", "result": "EQUAL", "lease": str(lease_id)}


def _ssl_reason(exc: Exception) -> str:
    """The innermost reason of an SSL failure (e.g. "certificate verify failed: …"), one line."""
    text = str(exc)
    for marker in ("SSLError(", "SSLCertVerificationError("):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return text.strip("()'\" ").replace("\n", " ")[:200]


class EtcdClient:
    """Calls etcd's JSON gateway on a list of client URLs, trying each in turn.

    Args:
        endpoints: client URLs, e.g. ``["http://127.0.1.4:2379"]`` or, with TLS, ``https://…``.
        timeout: seconds for connect and for read, per endpoint tried.
        credentials: a user and password for etcd's authentication, None for none.
        tls: the CA that verifies the members' certificates (host names included) and the client
            certificate to present; None for plain HTTP.
    """

    def __init__(self, endpoints: Sequence[str], timeout: float = 3.0, credentials: Credentials | None = None,
                 tls: TlsFiles | None = None):
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self.credentials = credentials
        self.tls = tls
        self._http = requests.Session()
        # Given on every call, not set on the session: a session's ``verify`` loses to REQUESTS_CA_BUNDLE
        # in the environment (psf/requests#3829), which would trust the system's CAs instead of ours.
        self._tls_options = tls.requests_options() if tls is not None else {}
        self._tokens: dict[str, str] = {}  # endpoint -> token; etcd's simple tokens are per member

    def auth_headers(self, endpoint: str) -> dict[str, str]:
        """The ``Authorization`` header for ``endpoint`` ({} without credentials), authenticating once.

        Raises:
            EtcdError: "authentication failed, invalid user ID or password". EtcdUnavailable.
        """
        if self.credentials is None:
            return {}
        endpoint = endpoint.rstrip("/")
        if endpoint not in self._tokens:
            try:
                answer = self._request(endpoint, "/v3/auth/authenticate",
                                       {"name": self.credentials.user, "password": self.credentials.password}, {})
                self._tokens[endpoint] = answers.checked(endpoint, "/v3/auth/authenticate", answers.token, answer)
            except EtcdError as exc:
                if "authentication is not enabled" not in exc.message:
                    raise
                # Not yet: go on without a token; "user name is empty" brings us back here once it is on.
                self._tokens[endpoint] = ""
        return {"Authorization": self._tokens[endpoint]} if self._tokens[endpoint] else {}

    def _post_one(self, endpoint: str, path: str, body: dict) -> dict:
        try:
            return self._request(endpoint, path, body, self.auth_headers(endpoint))
        except EtcdError as exc:
            if self.credentials is None or not any(m in exc.message for m in _RETRY_WITH_NEW_TOKEN):
                raise
        self._tokens.pop(endpoint, None)
        return self._request(endpoint, path, body, self.auth_headers(endpoint))

    def _request(self, endpoint: str, path: str, body: dict, headers: dict[str, str]) -> dict:
        try:
            response = self._http.post(endpoint + path, data=json.dumps(body), headers=headers, timeout=self.timeout,
                                       **self._tls_options)
        except requests.exceptions.SSLError as exc:
            # A wrong CA or certificate is not a member being down: say what TLS said.
            raise EtcdUnavailable(f"{endpoint}: TLS: {_ssl_reason(exc)}") from None
        except requests.RequestException as exc:
            raise EtcdUnavailable(f"{endpoint}: {type(exc).__name__}") from None
        text = response.text
        # Streaming RPCs (lease keep-alive) answer newline-delimited {"result": …} objects.
        first = text.split("\n", 1)[0] if text else "{}"
        try:
            payload = json.loads(first)
        except (ValueError, RecursionError):
            raise answers.not_etcd(endpoint, path, f"HTTP {response.status_code}, not JSON: {first[:120]!r}") from None
        if not isinstance(payload, dict):
            raise answers.not_etcd(endpoint, path, f"HTTP {response.status_code}, a JSON {type(payload).__name__}")
        if response.status_code != 200 or "error" in payload:
            error = payload.get("error")
            if isinstance(error, dict):  # the shape of an error inside a stream
                message, code = error.get("message", ""), error.get("grpc_code", error.get("code"))
            else:
                message, code = payload.get("message") or str(error or ""), payload.get("code")
            code = code if isinstance(code, int) and not isinstance(code, bool) else None
            raise EtcdError(str(message or f"HTTP {response.status_code}")[:500], code, endpoint)
        if set(payload) == {"result"}:
            if not isinstance(payload["result"], dict):
                raise answers.not_etcd(endpoint, path, f"a result that is {answers.shown(payload['result'])}")
            return payload["result"]
        return payload

    def _post(self, path: str, body: dict, endpoints: Iterable[str] | None = None,
              parse: Callable[[dict], T] | None = None) -> T:
        """POST ``body`` to ``path`` on the first of ``endpoints`` (default: all) that answers; the answer as
        ``parse`` reads it (default: the JSON object as it is). An answer ``parse`` cannot read counts as no
        answer (EtcdUnavailable), and the next endpoint is asked."""
        failures = []
        for endpoint in endpoints or self.endpoints:
            endpoint = endpoint.rstrip("/")
            try:
                answer = self._post_one(endpoint, path, body)
                return answer if parse is None else answers.checked(endpoint, path, parse, answer)
            except EtcdUnavailable as exc:
                failures.append(str(exc))
        raise EtcdUnavailable("no etcd endpoint answered: " + ", ".join(failures))

    def call(self, path: str, body: dict, endpoints: Iterable[str] | None = None,
             parse: Callable[[dict], T] | None = None) -> T:
        """Any gateway call (for the adapters of less common RPCs, e.g. :mod:`.maintenance`); see :meth:`_post`."""
        return self._post(path, body, endpoints, parse)

    # --- cluster membership -------------------------------------------------
    def member_list(self, endpoint: str | None = None) -> MemberList:
        """MemberList through ``endpoint`` (or the first that answers).

        Raises:
            EtcdUnavailable: no endpoint answered. EtcdError: etcd refused.
        """
        return self._post("/v3/cluster/member/list", {}, [endpoint] if endpoint else None, answers.member_list)

    def member_add(self, peer_urls: Sequence[str], learner: bool = True) -> tuple[Member, tuple[Member, ...]]:
        """MemberAdd (as a learner by default); returns the new member and all members.

        Raises:
            EtcdError: e.g. "etcdserver: too many learner members in cluster" (etcd
                allows one learner by default) or "Peer URLs already exists".
        """
        return self._post("/v3/cluster/member/add", {"peerURLs": list(peer_urls), "isLearner": learner},
                          parse=answers.member_add)

    def member_promote(self, member_id: int) -> None:
        """MemberPromote a learner to a voting member.

        Raises:
            EtcdError: "etcdserver: can only promote a learner member which is in
                sync with leader" until it has caught up; retry later.
        """
        self._post("/v3/cluster/member/promote", {"ID": str(member_id)})

    def member_remove(self, member_id: int, endpoints: Iterable[str] | None = None) -> None:
        """MemberRemove. etcd refuses it when it would leave too few started members for quorum."""
        self._post("/v3/cluster/member/remove", {"ID": str(member_id)}, endpoints)

    def move_leader(self, endpoint: str, target_id: int) -> None:
        """MoveLeader; must be sent to the current leader's ``endpoint``."""
        self._post("/v3/maintenance/transfer-leadership", {"targetID": str(target_id)}, [endpoint])

    def status(self, endpoint: str) -> EndpointStatus:
        """Maintenance Status of the member at ``endpoint``.

        Raises:
            EtcdUnavailable, EtcdError.
        """
        return self._post("/v3/maintenance/status", {}, [endpoint], answers.endpoint_status(endpoint))

    def healthy(self, endpoint: str) -> bool:
        """True if ``GET /health`` on ``endpoint`` says the member serves (has a leader, answers reads)."""
        try:
            response = self._http.get(endpoint.rstrip("/") + "/health", timeout=self.timeout, **self._tls_options)
            body = response.json() if response.status_code == 200 else None
            return isinstance(body, dict) and body.get("health") == "true"
        except (requests.RequestException, ValueError, RecursionError):
            return False

    def version(self, endpoint: str) -> tuple[str, str]:
        """``GET /version`` on ``endpoint``: (server version, cluster version), e.g. ("3.5.1", "3.5.0").

        The cluster version is "not_decided" for a moment after a cluster starts.

        Raises:
            EtcdUnavailable: the endpoint did not answer, or answered something that is not etcd's.
        """
        try:
            response = self._http.get(endpoint.rstrip("/") + "/version", timeout=self.timeout, **self._tls_options)
        except requests.RequestException as exc:
            raise EtcdUnavailable(f"{endpoint}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except (ValueError, RecursionError):
            raise answers.not_etcd(endpoint.rstrip("/"), "/version", f"HTTP {response.status_code}, not JSON") from None
        return answers.checked(endpoint.rstrip("/"), "/version", answers.version, body)

    # --- authentication: users, roles, permissions (rpc.proto's Auth service) ---
    def auth_enable(self) -> None:
        """AuthEnable. Raises EtcdError "root user does not exist" until a ``root`` user with the root role exists."""
        self._post("/v3/auth/enable", {})

    def user_add(self, name: str, password: str) -> None:
        """UserAdd. Raises EtcdError "user name already exists"."""
        self._post("/v3/auth/user/add", {"name": name, "password": password})

    def user_roles(self, name: str) -> tuple[str, ...] | None:
        """UserGet: the user's roles, or None if there is no such user."""
        try:
            return self._post("/v3/auth/user/get", {"name": name}, parse=answers.roles)
        except EtcdError as exc:
            if "user name not found" in exc.message:
                return None
            raise

    def user_grant_role(self, user: str, role: str) -> None:
        """UserGrantRole (granting a role the user has is not an error)."""
        self._post("/v3/auth/user/grant", {"user": user, "role": role})

    def role_add(self, name: str) -> None:
        """RoleAdd. Raises EtcdError "role name already exists"."""
        self._post("/v3/auth/role/add", {"name": name})

    def role_permissions(self, name: str) -> tuple[Permission, ...] | None:
        """RoleGet: the role's key permissions, or None if there is no such role."""
        try:
            return self._post("/v3/auth/role/get", {"role": name}, parse=answers.permissions)
        except EtcdError as exc:
            if "role name not found" in exc.message:
                return None
            raise

    def role_grant(self, role: str, permission: "Permission") -> None:
        """RoleGrantPermission: grant (or replace) the permission on exactly its key range."""
        self._post("/v3/auth/role/grant", {"name": role, "perm": {
            "permType": permission.kind, "key": _b64(permission.key), "range_end": _b64(permission.range_end)}})

    def role_revoke(self, role: str, key: bytes, range_end: bytes) -> None:
        """RoleRevokePermission on exactly ``[key, range_end)``."""
        self._post("/v3/auth/role/revoke", {"role": role, "key": _b64(key), "range_end": _b64(range_end)})

    # --- keys, leases, transactions ---------------------------------------
    def get(self, key: bytes | str) -> tuple[bytes, int] | None:
        """Linearizable read of one key: (value, lease id), or None if absent."""
        return self._post("/v3/kv/range", {"key": _b64(key)}, parse=answers.first_value)

    def range(self, key: bytes, range_end: bytes = b"", revision: int = 0, limit: int = 0,
              keys_only: bool = False) -> RangePage:
        """Range over ``[key, range_end)`` at ``revision`` (0: now), at most ``limit`` keys (0: all).

        Raises:
            EtcdError: e.g. "etcdserver: mvcc: required revision has been compacted".
            EtcdUnavailable.
        """
        body: dict = {"key": _b64(key)}
        if range_end:
            body["range_end"] = _b64(range_end)
        if revision:
            body["revision"] = str(revision)
        if limit:
            body["limit"] = str(limit)
        if keys_only:
            body["keys_only"] = True
        return self._post("/v3/kv/range", body, parse=answers.range_page)

    def txn(self, compare: list[dict], success: list[dict], failure: list[dict] | None = None) -> dict:
        """Txn with requests in the gateway's JSON shape (see rpc.proto); returns the raw answer
        (``succeeded``, ``responses``, ``header.revision``).

        Raises:
            EtcdError: e.g. "etcdserver: duplicate key given in txn request", "too many operations
                in txn request" (``--max-txn-ops``, 128 by default). EtcdUnavailable.
        """
        return self._post("/v3/kv/txn", {"compare": compare, "success": success, "failure": failure or []},
                          parse=answers.txn)

    def delete(self, key: bytes | str) -> int:
        """Delete one key; returns how many were deleted (0 or 1)."""
        return self._post("/v3/kv/deleterange", {"key": _b64(key)}, parse=answers.count("deleted"))

    def count(self, key: bytes, range_end: bytes) -> int:
        """How many keys ``[key, range_end)`` holds now (count only, no keys sent)."""
        return self._post("/v3/kv/range", {"key": _b64(key), "range_end": _b64(range_end), "count_only": True},
                          parse=answers.count("count"))

    def compact(self, revision: int, physical: bool = True) -> None:
        """Compact the key-value history up to ``revision``."""
        self._post("/v3/kv/compaction", {"revision": str(revision), "physical": physical})

    def lease_time_to_live(self, lease_id: int) -> int:
        """Remaining TTL of a lease in seconds; -1 if it has expired or never existed."""
        return self._post("/v3/lease/timetolive", {"ID": str(lease_id)}, parse=answers.time_to_live)

    def put(self, key: str, value: bytes | str, lease: int = 0) -> int:
        """Put; returns the revision of the write."""
        body = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        return self._post("/v3/kv/put", body, parse=answers.header_revision)

    def lease_grant(self, ttl: int) -> int:
        """LeaseGrant; returns the lease id. ``ttl`` in seconds."""
        return self._post("/v3/lease/grant", {"TTL": ttl}, parse=answers.lease_id)

    def lease_keepalive(self, lease_id: int) -> int:
        """One LeaseKeepAlive; returns the remaining TTL in seconds (0 or less: the lease is gone)."""
        return self._post("/v3/lease/keepalive", {"ID": str(lease_id)}, parse=answers.count("TTL"))

    def lease_revoke(self, lease_id: int) -> None:
        """LeaseRevoke: deletes the lease and every key attached to it."""
        self._post("/v3/lease/revoke", {"ID": str(lease_id)})

    def create_if_absent(self, key: str, value: str, lease: int) -> tuple[bool, bytes | None]:
        """Txn: put ``key`` bound to ``lease`` only if it does not exist.

        Returns:
            (True, None) if created; (False, current value) otherwise.
        """
        return self._post("/v3/kv/txn", {"compare": [compare_absent(key)], "success": [op_put(key, value, lease)],
                                         "failure": [{"request_range": {"key": _b64(key)}}]}, parse=answers.created)

    def delete_if_value(self, key: str, value: str) -> bool:
        """Txn: delete ``key`` only if it holds ``value`` (compare-and-delete). True if deleted."""
        answer = self.txn([compare_value(key, value)], [op_delete(key)])
        return bool(answer.get("succeeded"))
