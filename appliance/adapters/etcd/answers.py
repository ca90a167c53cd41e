"""etcd's JSON gateway answers, read with their shape checked: what :class:`~.client.EtcdClient` returns.

Field names and types follow etcd's ``api/etcdserverpb/rpc.proto`` as the gateway renders them (proto3
JSON): 64-bit integers travel as strings (32-bit ones as numbers), keys and values as base64, and a field
with its zero value is left out. Whatever answers with another shape (a URL that reaches something that is
not etcd, answering JSON of its own) raises :class:`NotEtcd`, which the client turns into
:class:`~appliance.adapters.etcd.errors.EtcdUnavailable` naming the endpoint and the path, so that every
caller's handling of an endpoint that does not answer applies. Every function here is pure.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Callable, TypeVar

from appliance.adapters.etcd.errors import EtcdUnavailable
from appliance.model.keys import KeyValue, Permission, RangePage
from appliance.model.maintenance import Alarm, AlarmKind, KvHash
from appliance.model.members import EndpointStatus, Member, MemberList

T = TypeVar("T")

_INTEGER = re.compile(r"-?\d{1,20}")
_UNSIGNED, _SIGNED = (0, 2 ** 64), (-2 ** 63, 2 ** 63)


class NotEtcd(ValueError):
    """An answer whose shape is not etcd's; the message says what, in one line."""


def checked(endpoint: str, path: str, parse: Callable[[dict], T], answer: dict) -> T:
    """``parse(answer)``, with a malformed answer as the endpoint not answering.

    Raises:
        EtcdUnavailable: "<endpoint><path>: answered something that is not etcd's: <what>" (one line).
    """
    try:
        return parse(answer)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:  # NotEtcd is a ValueError
        raise not_etcd(endpoint, path, exc) from None


def not_etcd(endpoint: str, path: str, problem: object) -> EtcdUnavailable:
    """The one-line EtcdUnavailable for an answer of another shape from ``endpoint`` to ``path``."""
    text = " ".join(str(problem).split()) or type(problem).__name__
    return EtcdUnavailable(f"{endpoint}{path}: answered something that is not etcd's: {text[:200]}")


def shown(value: object) -> str:
    """``value`` for a one-line message: its repr, cut short (it comes from elsewhere)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def integer(value: object, what: str, signed: bool = False) -> int:
    """A 64-bit integer field: a JSON number or a decimal string (absent: 0).

    Raises:
        NotEtcd: anything else (a boolean, a fraction, text), or out of the uint64 (int64 if ``signed``) range.
    """
    if value is None:
        return 0
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise NotEtcd(f"{what} is {shown(value)}, not an integer")
    low, high = _SIGNED if signed else _UNSIGNED
    if not low <= number < high:
        raise NotEtcd(f"{what} is {number}, out of the {'int64' if signed else 'uint64'} range")
    return number


def flag(value: object, what: str) -> bool:
    """A boolean field (absent: false). Raises NotEtcd for anything but a JSON boolean."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise NotEtcd(f"{what} is {shown(value)}, not a boolean")
    return value


def text(value: object, what: str) -> str:
    """A string field (absent: ""). Raises NotEtcd for anything else."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise NotEtcd(f"{what} is {shown(value)}, not a string")
    return value


def obj(value: object, what: str) -> dict:
    """A message field (absent: {}). Raises NotEtcd for anything but a JSON object."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NotEtcd(f"{what} is {shown(value)}, not an object")
    return value


def seq(value: object, what: str) -> list:
    """A repeated field (absent: []). Raises NotEtcd for anything but a JSON array."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise NotEtcd(f"{what} is {shown(value)}, not a list")
    return value


def data(value: object, what: str) -> bytes:
    """A bytes field: strict base64 (absent: b""). Raises NotEtcd for anything else."""
    try:
        return base64.b64decode(text(value, what), validate=True)
    except binascii.Error:
        raise NotEtcd(f"{what} is {shown(value)}, not base64") from None


def header_revision(answer: dict) -> int:
    """The store revision in an answer's ``header`` (0 if not given)."""
    return integer(obj(answer.get("header"), "header").get("revision"), "header.revision", signed=True)


def member(item: object) -> Member:
    """One rpc.proto Member. Raises NotEtcd (see :meth:`Member.from_json`)."""
    try:
        return Member.from_json(obj(item, "a member"))
    except ValueError as exc:
        raise NotEtcd(str(exc)) from None


def member_list(answer: dict) -> MemberList:
    """A MemberList answer."""
    header = obj(answer.get("header"), "header")
    return MemberList(cluster_id=integer(header.get("cluster_id"), "header.cluster_id"),
                      answered_by=integer(header.get("member_id"), "header.member_id"),
                      members=tuple(member(m) for m in seq(answer.get("members"), "members")))


def member_add(answer: dict) -> tuple[Member, tuple[Member, ...]]:
    """A MemberAdd answer: the new member (required) and all members."""
    if answer.get("member") is None:
        raise NotEtcd("no member in the answer")
    return member(answer["member"]), tuple(member(m) for m in seq(answer.get("members"), "members"))


def endpoint_status(endpoint: str) -> Callable[[dict], EndpointStatus]:
    """A Maintenance Status answer of ``endpoint``."""
    def parse(answer: dict) -> EndpointStatus:
        header = obj(answer.get("header"), "header")
        return EndpointStatus(
            endpoint=endpoint,
            member_id=integer(header.get("member_id"), "header.member_id"),
            leader_id=integer(answer.get("leader"), "leader"),
            version=text(answer.get("version"), "version"),
            raft_index=integer(answer.get("raftIndex"), "raftIndex"),
            db_size=integer(answer.get("dbSize"), "dbSize", signed=True),
            is_learner=flag(answer.get("isLearner"), "isLearner"),
            errors=tuple(text(e, "errors[]") for e in seq(answer.get("errors"), "errors")),
            revision=header_revision(answer),
            # 3.4 and later; None (unknown) from an etcd that does not say, never 0 (all free).
            db_size_in_use=(integer(answer["dbSizeInUse"], "dbSizeInUse", signed=True)
                            if answer.get("dbSizeInUse") is not None else None),
        )
    return parse


def alarms(answer: dict) -> tuple[Alarm, ...]:
    """An Alarm GET answer: the raised alarms (rpc.proto AlarmMember: ``memberID``, ``alarm`` by name). An alarm
    type this code does not know is left out: it is not one the appliance clears."""
    found = []
    for item in seq(answer.get("alarms"), "alarms"):
        item = obj(item, "alarms[]")
        kind = text(item.get("alarm"), "alarms[].alarm")
        if kind in AlarmKind.__members__:
            found.append(Alarm(integer(item.get("memberID"), "alarms[].memberID"), AlarmKind(kind)))
    return tuple(found)


def status_alarms(errors: tuple[str, ...]) -> tuple[Alarm, ...]:
    """The alarms a Status answer's ``errors`` list: etcd writes each as ``memberID:<decimal id> alarm:<KIND> ``,
    and every member lists the whole cluster's. Other errors, and alarm kinds the appliance does not clear, are
    left out."""
    found = []
    for error in errors:
        fields = dict(part.split(":", 1) for part in error.split() if ":" in part)
        member, kind = fields.get("memberID", ""), fields.get("alarm", "")
        if member.isascii() and member.isdigit() and len(member) <= 20 and 0 < int(member) < 2 ** 64 \
                and kind in AlarmKind.__members__:
            found.append(Alarm(int(member), AlarmKind(kind)))
    return tuple(found)


def kv_hash(member_id: int, revision: int) -> Callable[[dict], KvHash]:
    """A HashKV answer of the member ``member_id`` asked for ``revision`` (``hash`` a uint32, ``compact_revision``
    an int64, -1 before any compaction)."""
    def parse(answer: dict) -> KvHash:
        value = integer(answer.get("hash"), "hash")
        if value >= 2 ** 32:
            raise NotEtcd(f"hash is {value}, not a uint32")
        return KvHash(member_id, revision, value, integer(answer.get("compact_revision"), "compact_revision",
                                                          signed=True))
    return parse


def version(answer: object) -> tuple[str, str]:
    """``GET /version``: (server version, cluster version); both strings."""
    body = obj(answer, "the answer")
    return text(body.get("etcdserver"), "etcdserver"), text(body.get("etcdcluster"), "etcdcluster")


def token(answer: dict) -> str:
    """An Authenticate answer's token (required)."""
    value = text(answer.get("token"), "token")
    if not value:
        raise NotEtcd("no token in the answer")
    return value


def roles(answer: dict) -> tuple[str, ...]:
    """A UserGet answer's roles."""
    return tuple(text(r, "roles[]") for r in seq(answer.get("roles"), "roles"))


def permissions(answer: dict) -> tuple[Permission, ...]:
    """A RoleGet answer's key permissions (permType absent: READ, proto3's zero value)."""
    found = []
    for item in seq(answer.get("perm"), "perm"):
        p = obj(item, "perm[]")
        found.append(Permission(text(p.get("permType"), "permType") or "READ", data(p.get("key"), "perm.key"),
                                data(p.get("range_end"), "perm.range_end")))
    return tuple(found)


def key_value(item: object) -> KeyValue:
    """One mvccpb.KeyValue."""
    kv = obj(item, "a key-value")
    return KeyValue(data(kv.get("key"), "key"), data(kv.get("value"), "value"),
                    integer(kv.get("create_revision"), "create_revision", signed=True),
                    integer(kv.get("mod_revision"), "mod_revision", signed=True),
                    integer(kv.get("version"), "version", signed=True),
                    integer(kv.get("lease"), "lease", signed=True))


def range_page(answer: dict) -> RangePage:
    """A Range answer: the keys, whether more follow, the revision read at."""
    return RangePage(tuple(key_value(kv) for kv in seq(answer.get("kvs"), "kvs")), flag(answer.get("more"), "more"),
                     header_revision(answer))


def first_value(answer: dict) -> tuple[bytes, int] | None:
    """A Range answer of one key: (value, lease id), None if absent."""
    kvs = range_page(answer).kvs
    return (kvs[0].value, kvs[0].lease) if kvs else None


def txn(answer: dict) -> dict:
    """A Txn answer, raw (``succeeded``, ``responses``, ``header``), with those three fields' shapes checked."""
    flag(answer.get("succeeded"), "succeeded")
    header_revision(answer)
    for response in seq(answer.get("responses"), "responses"):
        for name, part in obj(response, "responses[]").items():
            obj(part, f"responses[].{name}")
    return answer


def created(answer: dict) -> tuple[bool, bytes | None]:
    """The answer of a create-if-absent Txn whose failure branch reads the key: (True, None) if it created
    the key, else (False, the value it holds, None if none)."""
    if flag(txn(answer).get("succeeded"), "succeeded"):
        return True, None
    responses = seq(answer.get("responses"), "responses")
    found = first_value(obj(obj(responses[0], "responses[0]").get("response_range"), "response_range")) \
        if responses else None
    return False, (found[0] if found else None)


def count(field: str, signed: bool = True) -> Callable[[dict], int]:
    """An answer's integer ``field`` (absent: 0), e.g. ``deleted``, ``count``, ``TTL``."""
    return lambda answer: integer(answer.get(field), field, signed)


def lease_id(answer: dict) -> int:
    """A LeaseGrant answer's lease id (required, not 0)."""
    value = integer(answer.get("ID"), "ID", signed=True)
    if value <= 0:
        raise NotEtcd(f"the lease ID is {shown(answer.get('ID'))}")
    return value


def time_to_live(answer: dict) -> int:
    """A LeaseTimeToLive answer's TTL in seconds, -1 when absent (the lease has expired)."""
    return integer(answer.get("TTL"), "TTL", signed=True) if "TTL" in answer else -1


def nothing(answer: dict) -> None:
    """For calls whose answer carries nothing the caller reads (only its shape, a JSON object, is checked)."""
    return None
