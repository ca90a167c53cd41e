"""Fake adapters for the agent's unit tests: no process, no network. Each records the calls made to it.

They stand in for what cannot run in a unit test (etcd, AWS); the agent's own code (loop, observer,
actuator, components) runs for real against them.
"""

from __future__ import annotations

import itertools
import types

from botocore.exceptions import ClientError

from appliance.adapters.etcd.errors import EtcdError, EtcdUnavailable
from appliance.model.keys import KeyValue, RangePage
from appliance.model.members import ClusterView, EndpointStatus, Member, MemberHealth, MemberList
from appliance.model.records import RecordSet
from appliance.model.security_groups import DIRECTIONS, GroupRules
from appliance.model.settings import AgentSettings


class Clock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeEtcd:
    """The calls the agent makes on a member through :class:`~appliance.adapters.etcd.client.EtcdClient`:
    leases and keys (for locks), member removal and promotion, health. ``refuse``: operation -> an
    :class:`EtcdError` message that operation raises."""

    def __init__(self, healthy: bool = True):
        self.keys: dict[str, tuple[bytes, int]] = {}
        self.leases: dict[int, int] = {}
        self.removed: list[int] = []
        self.promoted: list[int] = []
        self.refuse: dict[str, str] = {}
        self.calls: list[str] = []
        self.healthy_answer = healthy
        self.credentials = None
        self._ids = itertools.count(0x100)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.refuse:
            raise EtcdError(self.refuse[name])

    def lease_grant(self, ttl: int) -> int:
        self._call("lease_grant")
        lease = next(self._ids)
        self.leases[lease] = ttl
        return lease

    def lease_keepalive(self, lease_id: int) -> int:
        self._call("lease_keepalive")
        return self.leases.get(lease_id, 0)

    def lease_revoke(self, lease_id: int) -> None:
        self._call("lease_revoke")
        self.leases.pop(lease_id, None)
        self.keys = {k: v for k, v in self.keys.items() if v[1] != lease_id}

    def create_if_absent(self, key: str, value: str, lease: int):
        self._call("create_if_absent")
        if key in self.keys:
            return False, self.keys[key][0]
        self.keys[key] = (value.encode(), lease)
        return True, None

    def get(self, key):
        self._call("get")
        return self.keys.get(key if isinstance(key, str) else key.decode())

    def delete_if_value(self, key: str, value: str) -> bool:
        self._call("delete_if_value")
        if self.keys.get(key, (None,))[0] == value.encode():
            del self.keys[key]
            return True
        return False

    def member_remove(self, member_id: int) -> None:
        self._call("member_remove")
        self.removed.append(member_id)

    def member_promote(self, member_id: int) -> None:
        self._call("member_promote")
        self.promoted.append(member_id)

    def healthy(self, endpoint: str) -> bool:
        return self.healthy_answer


class FakeZone:
    """A Route53 hosted zone in memory: the record sets, the changes sent, and whether changes are INSYNC."""

    def __init__(self, name: str = "example.org."):
        self.name = name
        self.sets: dict[tuple[str, ...], RecordSet] = {}
        self.batches: list[list] = []
        self.reads = 0
        self.insync = True
        self.fail: Exception | None = None

    def read(self, start, keep, srv_names=()):
        if self.fail is not None:
            raise self.fail
        self.reads += 1
        return {key: rs for key, rs in self.sets.items() if keep(rs)}

    def change(self, changes, comment: str) -> str:
        if self.fail is not None:
            raise self.fail
        self.batches.append(list(changes))
        for change in changes:
            if change.action == "UPSERT":
                self.sets[change.record.key] = change.record
            else:
                self.sets.pop(change.record.key, None)
        return f"C{len(self.batches)}"

    def change_status(self, change_id: str) -> str:
        return "INSYNC" if self.insync else "PENDING"


class FakeGroups:
    """The regions' security groups: their managed rules, and the changes applied (in order)."""

    def __init__(self, groups: dict[str, GroupRules]):
        self.groups = dict(groups)
        self.applied: list = []
        self.reads = 0
        self.fail: Exception | None = None

    def observe(self) -> dict[str, GroupRules]:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        return dict(self.groups)

    def apply(self, change) -> None:
        self.applied.append(change)
        group = self.groups[change.region]
        rules = {direction: set(group.cidrs(direction)) for direction in DIRECTIONS}
        (rules[change.direction].add if change.add else rules[change.direction].discard)(change.cidr)
        self.groups[change.region] = GroupRules(group.region, group.group_id, frozenset(rules["ingress"]),
                                                frozenset(rules["egress"]))


def member(member_id: int, name: str, ip: str, learner: bool = False) -> Member:
    """A started member (or, without a name, one that never started) on ``ip``."""
    return Member(member_id, name, (f"http://{ip}:2380",), (f"http://{ip}:2379",) if name else (), learner)


def cluster(*members: Member, leader: int | None = 1) -> ClusterView:
    return ClusterView(0xC1, members, leader, (3, 5, 0))


def healthy(*members: Member) -> tuple[MemberHealth, ...]:
    return tuple(MemberHealth(m, True) for m in members)


def settings(**values) -> AgentSettings:
    """Agent settings with the defaults of the settings table, and ``values`` instead where given."""
    base = dict(data_dir="/tmp/etcd-appliance-unit/etcd", etcd_binary="/bin/true", cluster_name="etcd",
                status_port=2378, client_port=2379, peer_port=2380, metrics_port=2381, grace_period=300.0,
                loop_interval=5.0, listing_interval=30.0, request_timeout=3.0, housekeeping_ttl=15, log_level="INFO")
    base.update(values)
    return AgentSettings(**base)


# --- the observer's, the actuator's and the components' other fakes --------------------------------------------

# what never changes etcd
READS = frozenset({"member_list", "status", "version", "healthy", "get", "range", "alarm_get"})


class FakeCluster(FakeEtcd):
    """A cluster as its members answer it, on top of :class:`FakeEtcd`'s leases, keys and membership changes:
    MemberList, Status, ``/version``, ``/health``, Range (the mode key) and MemberAdd. Every call is recorded in
    ``calls`` (its name) and ``asked`` (the endpoint, where one is given).

    ``down``: endpoints that do not answer. ``leaderless``: endpoints whose member sees no leader.
    ``unhealthy``: endpoints whose ``/health`` says no. ``mode``: (value, mod revision) of the mode key, None
    for none. ``revision``: the store revision Status answers."""

    def __init__(self, *members: Member, leader_id: int | None = 1, cluster_id: int = 0xC1,
                 cluster_version: str = "3.5.0", revision: int = 42):
        super().__init__()
        self.members = tuple(members)
        self.leader_id, self.cluster_id = leader_id, cluster_id
        self.cluster_version, self.revision = cluster_version, revision
        self.down: set[str] = set()
        self.leaderless: set[str] = set()
        self.unhealthy: set[str] = set()
        self.mode: tuple[str, int] | None = None
        self.asked: list[tuple[str, str | None]] = []

    def _answer(self, name: str, endpoint: str | None) -> None:
        self.asked.append((name, endpoint))
        self._call(name)
        if endpoint in self.down:
            raise EtcdUnavailable(f"{endpoint}: ConnectTimeout")

    def member_list(self, endpoint: str | None = None) -> MemberList:
        self._answer("member_list", endpoint)
        return MemberList(self.cluster_id, self.members[0].id if self.members else 0, self.members)

    def status(self, endpoint: str) -> EndpointStatus:
        self._answer("status", endpoint)
        leader = 0 if endpoint in self.leaderless or self.leader_id is None else self.leader_id
        return EndpointStatus(endpoint, 0, leader, self.cluster_version, 7, 1024, False, (), self.revision)

    def version(self, endpoint: str) -> tuple[str, str]:
        self._answer("version", endpoint)
        return self.cluster_version, self.cluster_version

    def healthy(self, endpoint: str) -> bool:
        self.asked.append(("healthy", endpoint))
        self.calls.append("healthy")
        return self.healthy_answer and endpoint not in self.unhealthy

    def range(self, key: bytes, range_end: bytes = b"", revision: int = 0, limit: int = 0,
              keys_only: bool = False) -> RangePage:
        self._call("range")
        self.asked.append(("range", key.decode() if isinstance(key, bytes) else key))
        kvs = () if self.mode is None else (KeyValue(key, self.mode[0].encode(), 1, self.mode[1], 1),)
        return RangePage(kvs, False, self.revision)

    def call(self, path: str, body: dict, endpoints=None, parse=None):
        """The less common RPCs (:mod:`appliance.adapters.etcd.maintenance`): no alarm is raised."""
        if path == "/v3/maintenance/alarm":
            self._call("alarm_get" if body.get("action") == "GET" else "alarm_disarm")
            return () if parse is not None else {}
        self._call(path.rsplit("/", 1)[-1])
        return {}

    def member_add(self, peer_urls, learner: bool = True) -> tuple[Member, tuple[Member, ...]]:
        self._call("member_add")
        new = Member(next(self._ids), "", tuple(peer_urls), (), learner)
        self.members += (new,)
        return new, self.members

    def put(self, key, value, lease: int = 0) -> int:
        self._call("put")
        return self.revision

    def txn(self, compare, success, failure=None) -> dict:
        self._call("txn")
        return {"succeeded": True}


class FakeProcess:
    """The local etcd process (:class:`~appliance.adapters.etcd.process.EtcdProcess`): whether it runs, the
    commands it was started with, how often it was stopped. ``calls``: every method called, in order."""

    def __init__(self, running: bool = False, may_start: bool = True, pid: int = 4242):
        self.proc = types.SimpleNamespace(pid=pid) if running else None
        self.allowed = may_start
        self.commands: list[list[str]] = []
        self.environments: list[tuple[tuple[str, str], ...]] = []  # each start's ETCD_* variables
        self.stopped = 0
        self.calls: list[str] = []
        self._pids = itertools.count(pid + 1)

    @property
    def running(self) -> bool:
        return self.proc is not None

    def reap(self) -> None:
        self.calls.append("reap")

    def may_start(self) -> bool:
        self.calls.append("may_start")
        return self.allowed

    def start(self, command, environment=()) -> None:
        self.calls.append("start")
        self.commands.append(list(command))
        self.environments.append(tuple(environment))
        self.proc = types.SimpleNamespace(pid=next(self._pids))

    def stop(self, timeout: float = 15.0) -> None:
        self.calls.append("stop")
        self.stopped += 1
        self.proc = None


class FakeStore:
    """The cluster's snapshots and marker in S3 (:class:`~appliance.adapters.aws.s3.SnapshotStore`).
    ``fail``: a :class:`StoreError` every call raises. ``calls``: every method called, in order."""

    location = "s3://bucket/etcd/"
    cluster = "etcd"
    marker_key = "etcd/cluster.json"

    def __init__(self, marker: dict | None = None, snapshots=()):
        self.marker = marker
        self.snapshots = list(snapshots)
        self.deleted: list = []
        self.calls: list[str] = []
        self.fail: Exception | None = None

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail is not None:
            raise self.fail

    def read_marker(self) -> dict | None:
        self._call("read_marker")
        return self.marker

    def write_marker(self, content: dict) -> None:
        self._call("write_marker")
        self.marker = dict(content)

    def list(self) -> list:
        self._call("list")
        return sorted(self.snapshots, key=lambda s: s.taken_at, reverse=True)

    def delete(self, snapshots) -> None:
        self._call("delete")
        self.deleted += list(snapshots)
        self.snapshots = [s for s in self.snapshots if s not in self.deleted]


def client_error(code: str = "Throttling", operation: str = "ChangeResourceRecordSets") -> ClientError:
    """An AWS error answer, as botocore raises it."""
    return ClientError({"Error": {"Code": code, "Message": f"{code} (a test's)"}}, operation)
