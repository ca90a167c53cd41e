"""Fake adapters for the agent's unit tests: no process, no network. Each records the calls made to it.

They stand in for what cannot run in a unit test (etcd, AWS); the agent's own code (loop, observer,
actuator, components) runs for real against them.
"""

from __future__ import annotations

import itertools

from appliance.adapters.etcd.errors import EtcdError
from appliance.model.members import ClusterView, Member, MemberHealth
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
