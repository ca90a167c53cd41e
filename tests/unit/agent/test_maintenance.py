"""The maintenance components on a fake etcd and a fake clock: compaction, defragmentation, the NOSPACE
recovery, the corruption check, the space report, and the observation's maintenance part. The rules
themselves are table-tested in tests/unit/rules/; here, what the components do with their decisions: the
calls they make, what they record, count and remember."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import types

import pytest

from appliance.adapters.etcd import answers
from appliance.adapters.etcd.errors import EtcdError, EtcdFailure, EtcdUnavailable
from appliance.adapters.metrics import AgentMetrics
from appliance.agent import maintenance_view
from appliance.agent.components import defragmentation as defragmentation_module
from appliance.agent.components.alarms import NospaceRecovery
from appliance.agent.components.compaction import Compaction
from appliance.agent.components.corruption import CONFIRM_AFTER, CorruptionCheck
from appliance.agent.components.defragmentation import Defragmentation, timeout_for
from appliance.agent.components.maintenance import ClusterMaintenance
from appliance.model.keys import COMPACTION_KEY, DEFRAG_PREFIX, DEFRAG_RUNNING_KEY, KeyValue, RangePage
from appliance.model.maintenance import (
    MIB,
    Alarm,
    AlarmKind,
    CompactionRecord,
    DefragRecord,
    KvHash,
    Maintenance,
    MemberSpace,
)
from appliance.model.members import ClusterView, EndpointStatus, LocalData
from appliance.model.observation import Observation
from appliance.rules.defragmentation import MIN_INTERVAL
from tests.unit.agent.fakes import Clock, cluster, member

QUOTA = 100 * MIB
NOSPACE_REFUSAL = "etcdserver: mvcc: database space exceeded"
WAIT = 5.0  # seconds: the bound of every wait for a thread

M1, M2, M3 = member(1, "i-1", "127.0.2.1"), member(2, "i-2", "127.0.2.2"), member(3, "i-3", "127.0.2.3")
EP1, EP2, EP3 = (m.client_urls[0] for m in (M1, M2, M3))
VIEW = cluster(M1, M2, M3)  # member 1 leads


class FakeMaintenanceEtcd:
    """What the maintenance components and the observation call on a member's client: Status (per endpoint),
    Range of the records, Put, Delete, Compact, MoveLeader, MemberRemove, and ``call`` for the alarms and
    Defragment. Every call is recorded in ``calls`` as (name, arguments...).

    ``sizes``: member id -> [file size, size in use]. ``alarm_list``: the raised alarms; while a NOSPACE alarm is
    raised, puts are refused as etcd refuses them. ``refuse``: call name -> the failure it raises. ``down``:
    endpoints whose Status does not answer. ``leaderless``: endpoints whose member sees no leader. ``gate``:
    Defragment waits for it (set: at once); ``entered`` is set when a Defragment began. ``shrink_to``: member id ->
    its file size after a defragmentation (default: its size in use)."""

    def __init__(self, members=(M1, M2, M3), leader_id: int = 1, revision: int = 500,
                 sizes: dict[int, list[int]] | None = None):
        self.ids = {m.client_urls[0]: m.id for m in members if m.client_urls}
        self.sizes = sizes if sizes is not None else {m.id: [30 * MIB, 20 * MIB] for m in members}
        self.leader_id, self.revision = leader_id, revision
        self.alarm_list: list[Alarm] = []
        self.keys: dict[str, bytes | str] = {}
        self.calls: list[tuple] = []
        self.refuse: dict[str, EtcdFailure] = {}
        self.down: set[str] = set()
        self.leaderless: set[str] = set()
        self.alarms_unreadable = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.shrink_to: dict[int, int] = {}
        self.leases: dict[int, list[str]] = {}

    def _record(self, name: str, *args) -> None:
        self.calls.append((name, *args))
        if name in self.refuse:
            raise self.refuse[name]

    def named(self, name: str) -> list[tuple]:
        """The arguments of every call of ``name``, in order."""
        return [c[1:] for c in self.calls if c[0] == name]

    def status(self, endpoint: str) -> EndpointStatus:
        self._record("status", endpoint)
        if endpoint in self.down or endpoint not in self.ids:
            raise EtcdUnavailable(f"{endpoint}: ConnectTimeout")
        member_id = self.ids[endpoint]
        size, in_use = self.sizes[member_id]
        leader = 0 if endpoint in self.leaderless else self.leader_id
        # etcd lists the cluster's alarms in every member's Status errors.
        errors = () if self.alarms_unreadable else tuple(f"memberID:{a.member_id} alarm:{a.kind.value} "
                                                         for a in self.alarm_list)
        return EndpointStatus(endpoint, member_id, leader, "3.5.0", 7, size, False, errors, self.revision, in_use)

    def lease_grant(self, ttl: int) -> int:
        self._record("lease_grant", ttl)
        self.leases[len(self.leases) + 100] = []
        return len(self.leases) + 99

    def lease_revoke(self, lease_id: int) -> None:
        self._record("lease_revoke", lease_id)
        for key in self.leases.pop(lease_id, []):
            self.keys.pop(key, None)

    def call(self, path: str, body: dict, endpoints=None, parse=None):
        if path == "/v3/maintenance/alarm" and body.get("action") == "GET":
            self._record("alarm_get")
            if self.alarms_unreadable:
                raise EtcdUnavailable("127.0.2.1:2379: ReadTimeout")
            answer = {"alarms": [{"memberID": str(a.member_id), "alarm": a.kind.value} for a in self.alarm_list]}
            return parse(answer) if parse is not None else answer
        if path == "/v3/maintenance/alarm":
            self._record("disarm", dict(body))
            disarmed = Alarm(int(body["memberID"]), AlarmKind(body["alarm"]))
            self.alarm_list = [a for a in self.alarm_list if a != disarmed]
            return {}
        if path == "/v3/maintenance/defragment":
            endpoint = endpoints[0]
            self.calls.append(("defragment", endpoint))
            self.entered.set()
            assert self.gate.wait(WAIT), "the test never opened the defragmentation's gate"
            if "defragment" in self.refuse:
                raise self.refuse["defragment"]
            member_id = self.ids[endpoint]
            self.sizes[member_id][0] = self.shrink_to.get(member_id, self.sizes[member_id][1])
            return {}
        raise AssertionError(f"unexpected call {path}")

    def range(self, key: bytes, range_end: bytes = b"", revision: int = 0, limit: int = 0,
              keys_only: bool = False) -> RangePage:
        self._record("range", key)
        prefix = key.decode()
        kvs = tuple(KeyValue(k.encode(), v if isinstance(v, bytes) else v.encode(), 1, 1, 1)
                    for k, v in sorted(self.keys.items()) if k.startswith(prefix))
        return RangePage(kvs, False, self.revision)

    def put(self, key: str, value, lease: int = 0) -> int:
        self._record("put", key, value)
        if any(a.kind is AlarmKind.NOSPACE for a in self.alarm_list):
            raise EtcdError(NOSPACE_REFUSAL)
        self.keys[key] = value
        if lease:
            self.leases.setdefault(lease, []).append(key)
        return self.revision

    def delete(self, key) -> int:
        self._record("delete", key)
        return 1 if self.keys.pop(key, None) is not None else 0

    def compact(self, revision: int, physical: bool = True) -> None:
        self._record("compact", revision, physical)

    def move_leader(self, endpoint: str, target_id: int) -> None:
        self._record("move_leader", endpoint, target_id)

    def member_remove(self, member_id: int) -> None:
        self._record("member_remove", member_id)


def space(member_id: int, size: int | None = 30 * MIB, in_use: int | None = 20 * MIB, revision: int | None = 500,
          leader: bool = False, healthy: bool = True) -> MemberSpace:
    return MemberSpace(member_id, f"i-{member_id}", leader, False, healthy, size, in_use, revision)


def sample(metrics: AgentMetrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels or None)


def observation(etcd: FakeMaintenanceEtcd, view=VIEW, own=M1, leader: bool = True) -> Observation:
    """What the observer gives the components: the maintenance part read by :mod:`maintenance_view` (every
    member's on the leader)."""
    return Observation(instance_id=own.name, peer_url=own.peer_urls[0], local=LocalData(True, own.id),
                       etcd_running=True, cluster=view, is_leader=leader,
                       maintenance=maintenance_view.read(etcd, view, own, leader))


def finished(thread: threading.Thread | None) -> None:
    """Wait (bounded) for a component's thread to end."""
    assert thread is not None
    thread.join(timeout=WAIT)
    assert not thread.is_alive(), "the thread did not end in time"


# --- compaction --------------------------------------------------------------------------------------------


def compactor(retention: float = 100.0, snapshot: bool = False):
    etcd, clock, metrics = FakeMaintenanceEtcd(), Clock(10_000.0), AgentMetrics()
    return Compaction(etcd, retention, QUOTA, lambda: snapshot, metrics, clock), etcd, clock, metrics


def at_revision(revision: int | None, record: CompactionRecord | None = None) -> Maintenance:
    return Maintenance((space(1, revision=revision, leader=True),), (), record)


def test_samples_are_pruned_by_age_keeping_the_newest_older_than_the_retention():
    c, _, clock, _ = compactor(retention=100.0)
    for advance, revision in [(0, 10), (50, 20), (60, 30)]:  # at 10_000, 10_050, 10_110
        clock.advance(advance)
        c.sample(at_revision(revision), 1)
    assert list(c.samples) == [(10_000.0, 10), (10_050.0, 20), (10_110.0, 30)]  # 10_000 is the newest that old
    clock.advance(50)  # 10_160: 10_050 is now the newest sample at least 100 s old
    c.sample(at_revision(40), 1)
    assert list(c.samples) == [(10_050.0, 20), (10_110.0, 30), (10_160.0, 40)]
    clock.advance(140)  # 10_300: 10_160 is the newest at least 100 s old
    c.sample(at_revision(50), 1)
    assert list(c.samples) == [(10_160.0, 40), (10_300.0, 50)]
    c.sample(at_revision(None), 1)  # a revision unknown is no sample
    c.sample(at_revision(60), 2)    # nor another member's
    assert list(c.samples) == [(10_160.0, 40), (10_300.0, 50)]


def sampled(c: Compaction, clock: Clock) -> Maintenance:
    """Samples at 10_000 (revision 100), 10_040 (150) and 10_150 (200), the clock left at 10_150."""
    for advance, revision in [(0, 100), (40, 150), (110, 200)]:
        clock.advance(advance)
        c.sample(at_revision(revision), 1)
    return at_revision(200)


def test_the_leader_compacts_to_the_newest_revision_older_than_the_retention_and_records_it():
    c, etcd, clock, metrics = compactor(retention=100.0)
    m = sampled(c, clock)
    decision = c.tick(m, 1, True)
    assert decision.revision == 150 and "compacting to revision 150" in decision.reason
    assert etcd.named("compact") == [(150, False)]
    assert etcd.named("put") == [(COMPACTION_KEY, json.dumps({"revision": 150, "time": 10_150.0}))]
    assert c.done == CompactionRecord(150, 10_150.0) and not c.unrecorded
    assert c.last(m) == CompactionRecord(150, 10_150.0)
    assert sample(metrics, "etcd_appliance_compactions_total", reason="retention", outcome="ok") == 1
    assert c.reason.last == decision.reason


def test_not_leading_compacts_nothing():
    c, etcd, clock, metrics = compactor(retention=100.0)
    decision = c.tick(sampled(c, clock), 1, False)
    assert decision.revision is None and etcd.named("compact") == [] and c.done is None


def test_a_revision_compacted_already_counts_as_done():
    c, etcd, clock, metrics = compactor(retention=100.0)
    etcd.refuse["compact"] = EtcdError("etcdserver: mvcc: required revision has been compacted")
    c.tick(sampled(c, clock), 1, True)
    assert c.done == CompactionRecord(150, 10_150.0)
    assert [key for key, _ in etcd.named("put")] == [COMPACTION_KEY]
    assert sample(metrics, "etcd_appliance_compactions_total", reason="retention", outcome="ok") == 1
    assert sample(metrics, "etcd_appliance_compactions_total", reason="retention", outcome="failed") is None


@pytest.mark.parametrize("failure", [EtcdError("etcdserver: mvcc: required revision is a future revision"),
                                     EtcdUnavailable("127.0.0.1:2379: ReadTimeout")], ids=["refused", "no answer"])
def test_a_failed_compaction_is_counted_and_records_nothing(failure):
    c, etcd, clock, metrics = compactor(retention=100.0)
    m = sampled(c, clock)
    etcd.refuse["compact"] = failure
    c.tick(m, 1, True)
    assert etcd.named("compact") == [(150, False)]
    assert c.done is None and not c.unrecorded and c.last(m) is None
    assert etcd.named("put") == []
    assert sample(metrics, "etcd_appliance_compactions_total", reason="retention", outcome="failed") == 1
    assert sample(metrics, "etcd_appliance_compactions_total", reason="retention", outcome="ok") is None


def test_a_refused_record_is_kept_and_written_by_a_later_flush():
    c, etcd, clock, _ = compactor(retention=100.0)
    m = sampled(c, clock)
    etcd.refuse["put"] = EtcdError(NOSPACE_REFUSAL)
    c.tick(m, 1, True)
    assert etcd.named("compact") == [(150, False)] and COMPACTION_KEY not in etcd.keys
    assert c.unrecorded and c.last(m) == CompactionRecord(150, 10_150.0)  # remembered meanwhile
    c.flush(m)  # still refused: still kept
    assert c.unrecorded and len(etcd.named("put")) == 2
    del etcd.refuse["put"]
    clock.advance(5)
    c.flush(m)
    assert json.loads(etcd.keys[COMPACTION_KEY]) == {"revision": 150, "time": 10_150.0}  # the time it compacted
    assert not c.unrecorded
    c.flush(m)
    assert len(etcd.named("put")) == 3  # written once


def test_a_kept_record_is_never_written_over_a_newer_one():
    c, etcd, clock, _ = compactor(retention=100.0)
    m = sampled(c, clock)
    etcd.refuse["put"] = EtcdError(NOSPACE_REFUSAL)
    c.tick(m, 1, True)
    del etcd.refuse["put"]
    newer = CompactionRecord(180, 10_140.0)  # another leader compacted further meanwhile
    c.flush(at_revision(200, newer))
    assert len(etcd.named("put")) == 1 and COMPACTION_KEY not in etcd.keys  # only the refused attempt
    assert not c.unrecorded
    assert c.last(at_revision(200, newer)) == newer


def test_under_nospace_the_leader_compacts_once_to_the_current_revision():
    c, etcd, clock, metrics = compactor(retention=3600.0)
    c.sample(at_revision(480), 1)
    clock.advance(5)
    decision = c.tick(at_revision(500), 1, True, nospace_since=clock.now)
    assert decision.revision == 500 and etcd.named("compact") == [(500, True)]
    clock.advance(5)
    c.tick(at_revision(500), 1, True, nospace_since=clock.now - 5)
    assert etcd.named("compact") == [(500, True)]  # once since the alarm
    assert sample(metrics, "etcd_appliance_compactions_total", reason="nospace", outcome="ok") == 1


def test_a_nospace_compaction_is_logged_even_when_the_space_pressed_the_cycle_before(caplog):
    c, etcd, clock, _ = compactor(retention=3600.0)
    full = int(0.9 * QUOTA)  # data in use past FULL_RATIO: the space presses whatever the history

    def at(revision: int) -> Maintenance:
        return Maintenance((space(1, size=QUOTA, in_use=full, revision=revision, leader=True),), (), None)

    c.sample(at(480), 1)
    clock.advance(5)
    with caplog.at_level(logging.INFO, "agent"):
        c.tick(at(490), 1, True)  # pressing: compacts, keeping one cycle
        clock.advance(5)
        c.tick(at(500), 1, True, nospace_since=clock.now)  # still pressing, and now NOSPACE
    assert etcd.named("compact") == [(480, False), (500, True)]
    assert "compaction: NOSPACE: compacting all history up to the current revision 500" in caplog.text


# --- defragmentation -----------------------------------------------------------------------------------------


def defragmenter(sizes=None):
    etcd = FakeMaintenanceEtcd(sizes=sizes)
    clock, metrics = Clock(20_000.0), AgentMetrics()
    return Defragmentation(etcd, etcd, QUOTA, metrics, clock), etcd, clock, metrics


# Member 2 has 40 MiB free of 60 MiB (qualifies); members 1 and 3 have little free space.
SIZES = {1: [30 * MIB, 28 * MIB], 2: [60 * MIB, 20 * MIB], 3: [30 * MIB, 28 * MIB]}


def spaces(sizes: dict[int, list[int]], revisions=(500, 499, 498)) -> tuple[MemberSpace, ...]:
    return tuple(space(mid, sizes[mid][0], sizes[mid][1], revision, leader=mid == 1)
                 for mid, revision in zip((1, 2, 3), revisions, strict=True))


def fake_monotonic(monkeypatch, start: float = 100.0) -> list[float]:
    """The defragmentation module's monotonic clock, moved by hand (its durations); returns its cell."""
    now = [start]
    monkeypatch.setattr(defragmentation_module, "time", types.SimpleNamespace(monotonic=lambda: now[0],
                                                                              time=time.time))
    return now


def test_one_defragmentation_runs_in_a_thread_and_is_collected_with_its_sizes_and_duration(monkeypatch, caplog):
    d, etcd, clock, metrics = defragmenter({k: list(v) for k, v in SIZES.items()})
    mono = fake_monotonic(monkeypatch)
    m = Maintenance(spaces(SIZES), ())
    etcd.gate.clear()
    with caplog.at_level(logging.INFO, "agent"):
        decision = d.tick(m, VIEW, True, None)
        assert decision.action == "defragment" and decision.member.member_id == 2
        assert etcd.entered.wait(WAIT)
        assert d.running and d.run.thread.name == "defragmentation"
        d.collect()  # still running: nothing to collect
        assert d.running and d.done == {}
        again = d.tick(m, VIEW, True, None)
        assert again.action == "wait" and etcd.named("defragment") == [(EP2,)]  # one at a time
        mono[0] += 12.5
        clock.advance(30)
        etcd.gate.set()
        finished(d.run.thread)
        d.collect()
    assert not d.running
    record = DefragRecord(20_030.0, 60 * MIB, 20 * MIB, 12.5)
    assert d.done == {2: record} and d.unrecorded == {2: record}
    assert etcd.named("status") == [(EP2,)]  # the size after, asked of the member defragmented
    assert sample(metrics, "etcd_appliance_defragmentations_total", outcome="ok") == 1
    assert sample(metrics, "etcd_appliance_last_defragmentation_duration_seconds") == 12.5
    assert sample(metrics, "etcd_appliance_defragmentation_freed_bytes_total") == 40 * MIB
    assert "defragmenting member 2 (i-2): 41943040 of 62914560 bytes free" in caplog.text
    assert f"defragmented member 2 (i-2) in 12.5 s: {60 * MIB} -> {20 * MIB} bytes" in caplog.text
    assert d.last(m) == {2: 20_030.0}
    d.collect()  # collected once
    assert sample(metrics, "etcd_appliance_defragmentations_total", outcome="ok") == 1
    # The next cycle records it in etcd.
    after = Maintenance(spaces({1: SIZES[1], 2: [20 * MIB, 20 * MIB], 3: SIZES[3]}), ())
    assert d.tick(after, VIEW, True, None).action == "none"
    assert etcd.keys[f"{DEFRAG_PREFIX}2"] == record.to_json() and d.unrecorded == {}


def test_a_failed_defragmentation_is_counted_and_records_nothing(caplog):
    d, etcd, clock, metrics = defragmenter({k: list(v) for k, v in SIZES.items()})
    etcd.refuse["defragment"] = EtcdUnavailable(f"{EP2}: ReadTimeout")
    m = Maintenance(spaces(SIZES), ())
    with caplog.at_level(logging.INFO, "agent"):
        assert d.tick(m, VIEW, True, None).action == "defragment"
        finished(d.run.thread)
        d.collect()
    assert not d.running and d.done == {} and d.unrecorded == {}
    assert sample(metrics, "etcd_appliance_defragmentations_total", outcome="failed") == 1
    assert sample(metrics, "etcd_appliance_defragmentations_total", outcome="ok") is None
    assert sample(metrics, "etcd_appliance_defragmentation_freed_bytes_total") == 0
    assert "defragmentation of member 2 (i-2) failed" in caplog.text and "ReadTimeout" in caplog.text
    d.flush(m)
    assert [key for key, _ in etcd.named("put")] == [DEFRAG_RUNNING_KEY] and d.last(m) == {}
    assert DEFRAG_RUNNING_KEY not in etcd.keys  # its lease revoked when the run ended


def test_a_defragmentation_that_raises_an_unexpected_error_is_a_failure_too():
    d, etcd, _, metrics = defragmenter({k: list(v) for k, v in SIZES.items()})
    etcd.refuse["defragment"] = KeyError("boom")  # not an EtcdFailure: the thread must not die silently
    d.tick(Maintenance(spaces(SIZES), ()), VIEW, True, None)
    finished(d.run.thread)
    d.collect()
    assert d.done == {} and sample(metrics, "etcd_appliance_defragmentations_total", outcome="failed") == 1


def test_the_leader_left_to_defragment_hands_leadership_to_the_most_caught_up_follower():
    sizes = {1: [60 * MIB, 20 * MIB], 2: [30 * MIB, 28 * MIB], 3: [30 * MIB, 28 * MIB]}
    d, etcd, _, metrics = defragmenter(sizes)
    decision = d.tick(Maintenance(spaces(sizes, revisions=(500, 498, 499)), ()), VIEW, True, None)
    assert decision.action == "move-leader"
    assert etcd.named("move_leader") == [(EP1, 3)]  # on the leader's client URL, to member 3 (revision 499)
    assert etcd.named("defragment") == [] and not d.running
    assert sample(metrics, "etcd_appliance_leadership_moves_total", reason="defragmentation") == 1


def test_a_refused_leadership_move_is_not_counted():
    sizes = {1: [60 * MIB, 20 * MIB], 2: [30 * MIB, 28 * MIB], 3: [30 * MIB, 28 * MIB]}
    d, etcd, _, metrics = defragmenter(sizes)
    etcd.refuse["move_leader"] = EtcdError("etcdserver: leader changed")
    d.tick(Maintenance(spaces(sizes), ()), VIEW, True, None)
    assert len(etcd.named("move_leader")) == 1
    assert sample(metrics, "etcd_appliance_leadership_moves_total", reason="defragmentation") is None


def test_records_of_members_no_longer_listed_are_deleted_only_when_leading():
    d, etcd, _, _ = defragmenter()
    gone, kept = DefragRecord(19_000.0, 50 * MIB, 10 * MIB, 1.0), DefragRecord(19_500.0, 40 * MIB, 20 * MIB, 1.0)
    d.done[0xABC] = gone
    m = Maintenance(spaces({mid: [30 * MIB, 28 * MIB] for mid in (1, 2, 3)}), (), None, {2: kept, 0xABC: gone})
    d.tick(m, VIEW, False, None)
    assert etcd.named("delete") == [] and 0xABC in d.done
    d.tick(m, VIEW, True, None)
    assert etcd.named("delete") == [(f"{DEFRAG_PREFIX}abc",)]  # the member's id in hex, and only that one
    assert 0xABC not in d.done


def collected(d: Defragmentation, etcd: FakeMaintenanceEtcd, m: Maintenance) -> DefragRecord:
    """Run member 2's defragmentation to its end; returns its record."""
    assert d.tick(m, VIEW, True, None).action == "defragment"
    finished(d.run.thread)
    d.collect()
    return d.done[2]


def test_unrecorded_records_are_written_later_but_never_over_a_newer_one():
    d, etcd, clock, _ = defragmenter({k: list(v) for k, v in SIZES.items()})
    m = Maintenance(spaces(SIZES), ())
    record = collected(d, etcd, m)
    etcd.refuse["put"] = EtcdError(NOSPACE_REFUSAL)
    d.flush(m)
    assert d.unrecorded == {2: record} and f"{DEFRAG_PREFIX}2" not in etcd.keys  # kept
    del etcd.refuse["put"]
    older = DefragRecord(record.time - 1000, 1, 1, 1.0)
    d.flush(Maintenance(m.members, (), None, {2: older}))  # the record in etcd is older: written over
    assert etcd.keys[f"{DEFRAG_PREFIX}2"] == record.to_json() and d.unrecorded == {}

    d2, etcd2, _, _ = defragmenter({k: list(v) for k, v in SIZES.items()})
    record2 = collected(d2, etcd2, m)
    newer = DefragRecord(record2.time + 10, 70 * MIB, 10 * MIB, 2.0)
    d2.flush(Maintenance(m.members, (), None, {2: newer}))
    assert [key for key, _ in etcd2.named("put")] == [DEFRAG_RUNNING_KEY]  # the run's lease-bound key, nothing else
    assert d2.unrecorded == {}  # dropped, not written over the newer one
    assert d2.last(Maintenance(m.members, (), None, {2: newer})) == {2: newer.time}


# --- NOSPACE, end to end over cycles -------------------------------------------------------------------------


def upkeep(etcd: FakeMaintenanceEtcd, corruption_interval: float = 0.0):
    clock, metrics = Clock(50_000.0), AgentMetrics()
    maint = ClusterMaintenance(
        Compaction(etcd, 3600.0, QUOTA, lambda: False, metrics, clock),
        Defragmentation(etcd, etcd, QUOTA, metrics, clock),
        NospaceRecovery(etcd, QUOTA, metrics, clock),
        CorruptionCheck(etcd, corruption_interval, 1.0, None, metrics, clock),
        QUOTA, metrics)
    return maint, clock, metrics


def full_cluster(in_use: int = 30 * MIB) -> FakeMaintenanceEtcd:
    """Every file at the quota, NOSPACE raised by members 1 and 2, revision 500."""
    etcd = FakeMaintenanceEtcd(sizes={mid: [QUOTA, in_use] for mid in (1, 2, 3)})
    etcd.alarm_list = [Alarm(1, AlarmKind.NOSPACE), Alarm(2, AlarmKind.NOSPACE)]
    return etcd


def cycle(maint: ClusterMaintenance, etcd: FakeMaintenanceEtcd, clock: Clock, wait: bool = True) -> Observation:
    """One leader cycle: observe, tick (the raft leader leads under NOSPACE), let a defragmentation end."""
    s = observation(etcd)
    maint.tick(s, True)
    if wait and maint.defragmentation.run is not None:
        finished(maint.defragmentation.run.thread)
    clock.advance(5)
    return s


def test_nospace_is_cleared_step_by_step_over_several_cycles():
    etcd = full_cluster()
    maint, clock, metrics = upkeep(etcd)
    assert metrics.registry.get_sample_value("etcd_appliance_quota_backend_bytes") == QUOTA
    cycle(maint, etcd, clock)  # 1: compact to the current revision, then the first follower
    assert etcd.named("compact") == [(500, True)]
    assert etcd.named("defragment") == [(EP2,)]
    assert maint.busy and COMPACTION_KEY not in etcd.keys  # the record is refused under NOSPACE
    assert sample(metrics, "etcd_appliance_compactions_total", reason="nospace", outcome="ok") == 1

    etcd.gate.clear()
    cycle(maint, etcd, clock, wait=False)  # 2: the other follower, held running
    assert etcd.entered.wait(WAIT) and maint.defragmentation.running
    assert etcd.named("defragment") == [(EP2,), (EP3,)]
    cycle(maint, etcd, clock, wait=False)  # 2b: one at a time
    assert etcd.named("defragment") == [(EP2,), (EP3,)] and maint.busy
    etcd.gate.set()
    finished(maint.defragmentation.run.thread)

    cycle(maint, etcd, clock)  # 3: the leader last, in place
    assert etcd.named("defragment") == [(EP2,), (EP3,), (EP1,)]
    assert etcd.named("move_leader") == [] and etcd.named("disarm") == []
    assert maint.busy and etcd.alarm_list

    cycle(maint, etcd, clock)  # 4: every file at 30 % of the quota: disarm each alarm
    assert etcd.named("disarm") == [({"action": "DEACTIVATE", "memberID": "1", "alarm": "NOSPACE"},),
                                    ({"action": "DEACTIVATE", "memberID": "2", "alarm": "NOSPACE"},)]
    assert etcd.alarm_list == []
    assert sample(metrics, "etcd_appliance_nospace_alarms_cleared_total") == 1
    assert sample(metrics, "etcd_appliance_last_nospace_clear_duration_seconds") == 20.0  # seen at 1, gone at 4
    assert "step 3 of 3" in maint.nospace.reason.last
    assert not maint.busy
    assert etcd.named("compact") == [(500, True)]  # compacted once for the alarm

    cycle(maint, etcd, clock)  # 5: writes accepted again: the records kept are written
    assert json.loads(etcd.keys[COMPACTION_KEY]) == {"revision": 500, "time": 50_000.0}
    assert {key for key in etcd.keys if key.startswith(DEFRAG_PREFIX)} == {f"{DEFRAG_PREFIX}{i}" for i in "123"}
    assert sample(metrics, "etcd_appliance_defragmentations_total", outcome="ok") == 3
    assert sample(metrics, "etcd_appliance_nospace_alarms_cleared_total") == 1
    assert len(etcd.named("defragment")) == 3 and not maint.busy


def test_a_disarm_whose_answer_is_lost_still_counts_as_cleared_once_the_alarm_is_gone(caplog):
    etcd = full_cluster()
    maint, clock, metrics = upkeep(etcd)
    answered = etcd.call

    def lost(path: str, body: dict, endpoints=None, parse=None):
        answer = answered(path, body, endpoints, parse)
        if body.get("action") == "DEACTIVATE":  # applied by etcd, but the answer times out
            raise EtcdUnavailable("127.0.2.1:2379: ReadTimeout")
        return answer

    etcd.call = lost
    with caplog.at_level(logging.INFO, "agent"):
        for _ in range(6):
            cycle(maint, etcd, clock)
    assert etcd.alarm_list == [] and len(etcd.named("disarm")) == 2  # one per cycle: each answer was lost
    assert sample(metrics, "etcd_appliance_nospace_alarms_cleared_total") == 1
    assert "this agent's disarm took effect though its answer was lost" in caplog.text


def test_an_alarm_cleared_by_another_agent_is_logged_but_not_counted_here(caplog):
    etcd = full_cluster()
    clock, metrics = Clock(50_000.0), AgentMetrics()
    follower = NospaceRecovery(etcd, QUOTA, metrics, clock)
    assert follower.since(observation(etcd, leader=False).maintenance) == 50_000.0
    etcd.alarm_list = []  # the leader's agent disarmed it
    clock.advance(12)
    with caplog.at_level(logging.INFO, "agent"):
        assert follower.since(observation(etcd, leader=False).maintenance) is None
    assert "space: NOSPACE no longer raised, 12.0 s after this agent saw it" in caplog.text
    assert sample(metrics, "etcd_appliance_nospace_alarms_cleared_total") == 0


def test_nospace_stays_when_the_data_outgrew_the_quota_and_says_to_raise_it():
    etcd = full_cluster(in_use=95 * MIB)  # 95 % of the quota is data: a defragmentation gives little back
    maint, clock, metrics = upkeep(etcd)
    for _ in range(6):
        cycle(maint, etcd, clock)
    assert etcd.named("defragment") == [(EP2,), (EP3,), (EP1,)]  # every member done once
    assert etcd.named("disarm") == [] and len(etcd.alarm_list) == 2
    assert "ETCD_QUOTA_BACKEND_BYTES" in maint.nospace.reason.last
    assert maint.reasons()["space"] == maint.nospace.reason.last
    assert sample(metrics, "etcd_appliance_nospace_alarms_cleared_total") == 0
    assert maint.busy


def test_one_unreadable_alarm_list_does_not_stall_the_recovery():
    etcd = full_cluster()
    maint, clock, metrics = upkeep(etcd)
    for _ in range(3):  # compacted, every member defragmented
        cycle(maint, etcd, clock)
    assert etcd.named("defragment") == [(EP2,), (EP3,), (EP1,)]
    etcd.alarms_unreadable = True
    cycle(maint, etcd, clock)  # the alarms cannot be read this cycle
    etcd.alarms_unreadable = False
    for _ in range(6):
        cycle(maint, etcd, clock)
    assert etcd.alarm_list == [], maint.nospace.reason.last
    assert sample(metrics, "etcd_appliance_nospace_alarms_cleared_total") == 1


# --- corruption check ----------------------------------------------------------------------------------------


class Hashes:
    """``maintenance.hash_kv`` answering ``values[member_id]`` for each member at the revision asked."""

    def __init__(self, values: dict[int, int]):
        self.values = values
        self.asked: list[tuple[str, int, int]] = []

    def __call__(self, session, peer_url, member_id, revision, timeout, tls=None) -> KvHash:
        self.asked.append((peer_url, member_id, revision))
        return KvHash(member_id, revision, self.values[member_id], 40)


CHECKED = Maintenance((space(1, revision=100, leader=True), space(2, revision=101), space(3, revision=102)), ())
LATER = Maintenance((space(1, revision=120, leader=True), space(2, revision=121), space(3, revision=122)), ())


def checker(monkeypatch, values: dict[int, int], interval: float = 60.0):
    hashes = Hashes(values)
    monkeypatch.setattr("appliance.agent.components.corruption.maintenance.hash_kv", hashes)
    etcd, clock, metrics = FakeMaintenanceEtcd(), Clock(), AgentMetrics()
    return CorruptionCheck(etcd, interval, 1.0, None, metrics, clock), etcd, clock, metrics, hashes


def thread_of(check: CorruptionCheck):
    return check.round.thread if check.round is not None else None


def round_of(check: CorruptionCheck, m: Maintenance = CHECKED, compacted: int = 50, lock: str | None = None) -> None:
    """Start a round, let it end, judge it."""
    check.tick(m, VIEW, True, compacted, lock)
    finished(thread_of(check))
    check.tick(m, VIEW, True, compacted, lock)


def confirmed(check: CorruptionCheck, clock, lock: str | None = None) -> None:
    """A round at revision 100, and the confirming one at 120 when it is due."""
    round_of(check)
    clock.advance(CONFIRM_AFTER)
    round_of(check, LATER, lock=lock)


def test_one_odd_follower_among_three_is_removed_once_two_revisions_agree(monkeypatch, caplog):
    check, etcd, clock, metrics, hashes = checker(monkeypatch, {1: 7, 2: 7, 3: 9})
    round_of(check)
    assert hashes.asked == [(M1.peer_urls[0], 1, 100), (M2.peer_urls[0], 2, 100), (M3.peer_urls[0], 3, 100)]
    assert etcd.named("member_remove") == [] and "checking again at another revision" in caplog.text
    clock.advance(CONFIRM_AFTER - 1)
    check.tick(LATER, VIEW, True, 50)
    assert thread_of(check) is None  # the confirming round waits CONFIRM_AFTER, not the whole interval
    clock.advance(1)
    round_of(check, LATER)
    assert [revision for _, _, revision in hashes.asked[3:]] == [120, 120, 120]
    assert etcd.named("member_remove") == [(3,)] and etcd.named("move_leader") == []
    assert sample(metrics, "etcd_appliance_corrupt_members_replaced_total") == 1
    assert sample(metrics, "etcd_appliance_corruption_checks_total", verdict="replace") == 2  # both rounds
    assert "member 3 (i-3)" in check.reason.last


def test_a_refused_removal_is_not_counted(monkeypatch):
    check, etcd, clock, metrics, _ = checker(monkeypatch, {1: 7, 2: 7, 3: 9})
    etcd.refuse["member_remove"] = EtcdError("etcdserver: unhealthy cluster")
    confirmed(check, clock)
    assert etcd.named("member_remove") == [(3,)]
    assert sample(metrics, "etcd_appliance_corrupt_members_replaced_total") == 0


def test_the_odd_leader_hands_leadership_over_first(monkeypatch):
    check, etcd, clock, metrics, hashes = checker(monkeypatch, {1: 9, 2: 7, 3: 7})
    confirmed(check, clock)
    assert etcd.named("move_leader") == [(EP1, 2)] and etcd.named("member_remove") == []
    assert sample(metrics, "etcd_appliance_leadership_moves_total", reason="corruption") == 1
    assert sample(metrics, "etcd_appliance_corruption_checks_total", verdict="move-leader") == 2


def test_a_consistent_cluster_is_checked_again_only_after_the_interval(monkeypatch):
    check, etcd, clock, metrics, hashes = checker(monkeypatch, {1: 7, 2: 7, 3: 7}, interval=60.0)
    round_of(check)
    assert sample(metrics, "etcd_appliance_corruption_checks_total", verdict="consistent") == 1
    assert etcd.named("member_remove") == [] and etcd.named("move_leader") == []
    clock.advance(59.0)
    check.tick(CHECKED, VIEW, True, 50)
    assert thread_of(check) is None and len(hashes.asked) == 3
    clock.advance(1.0)
    check.tick(CHECKED, VIEW, True, 50)
    assert thread_of(check) is not None
    finished(thread_of(check))
    assert len(hashes.asked) == 6


@pytest.mark.parametrize("revisions, compacted, started", [
    ((100, 101, None), 50, False),
    ((100, 101, 102), 100, False),
    ((100, 101, 102), 99, True),
], ids=["a revision unknown", "nothing new since the compaction", "newer than the compaction"])
def test_a_round_starts_only_with_every_revision_above_the_compacted_one(monkeypatch, revisions, compacted,
                                                                       started):
    check, _, _, _, hashes = checker(monkeypatch, {1: 7, 2: 7, 3: 7})
    m = Maintenance(tuple(space(mid, revision=rev, leader=mid == 1) for mid, rev in zip((1, 2, 3), revisions,
                                                                                         strict=True)), ())
    check.tick(m, VIEW, True, compacted)
    assert (thread_of(check) is not None) is started
    if started:
        finished(thread_of(check))
    assert len(hashes.asked) == (3 if started else 0)


def test_not_leading_starts_no_round(monkeypatch):
    check, etcd, _, _, hashes = checker(monkeypatch, {1: 7, 2: 7, 3: 9})
    check.tick(CHECKED, VIEW, False, 50)
    assert thread_of(check) is None and hashes.asked == [] and etcd.calls == []


def test_a_corrupt_alarm_of_a_member_no_longer_listed_is_disarmed(monkeypatch):
    check, etcd, _, _, _ = checker(monkeypatch, {}, interval=0.0)
    alarms = (Alarm(9, AlarmKind.CORRUPT), Alarm(2, AlarmKind.CORRUPT), Alarm(8, AlarmKind.NOSPACE))
    m = Maintenance(CHECKED.members, alarms)
    check.tick(m, VIEW, False, 50)
    assert etcd.named("disarm") == []  # only the leader disarms
    check.tick(m, VIEW, True, 50)
    assert etcd.named("disarm") == [({"action": "DEACTIVATE", "memberID": "9", "alarm": "CORRUPT"},)]


# --- the space report ----------------------------------------------------------------------------------------


def reported(own=M2, leader: bool = False, m: Maintenance | None = None, view=VIEW) -> Observation:
    return Observation(instance_id=own.name, peer_url=own.peer_urls[0], local=LocalData(True, own.id),
                       etcd_running=True, cluster=view, is_leader=leader, maintenance=m)


OWN_SPACE = Maintenance(
    (space(2, size=80 * MIB, in_use=20 * MIB, revision=700),),
    (Alarm(2, AlarmKind.NOSPACE), Alarm(3, AlarmKind.CORRUPT)),
    CompactionRecord(650, 40_000.0),
    {2: DefragRecord(41_000.0, 90 * MIB, 80 * MIB, 3.0), 3: DefragRecord(42_000.0, 9, 8, 1.0)})


def test_report_shows_this_members_space_and_sets_the_gauges():
    etcd = FakeMaintenanceEtcd()
    maint, clock, metrics = upkeep(etcd)
    fields = maint.report(reported(m=OWN_SPACE))
    assert fields == {"space": {"db_size_bytes": 80 * MIB, "db_size_in_use_bytes": 20 * MIB, "free_ratio": 0.75,
                                "last_defragmentation": 41_000.0, "compacted_revision": 650, "alarms": ["NOSPACE"]},
                      "maintenance": None}
    gauges = {name: sample(metrics, name) for name in (
        "etcd_appliance_db_size_bytes", "etcd_appliance_db_size_in_use_bytes", "etcd_appliance_db_free_ratio",
        "etcd_appliance_last_defragmentation_timestamp_seconds", "etcd_appliance_compacted_revision",
        "etcd_appliance_quota_backend_bytes")}
    assert gauges == {"etcd_appliance_db_size_bytes": 80 * MIB, "etcd_appliance_db_size_in_use_bytes": 20 * MIB,
                      "etcd_appliance_db_free_ratio": 0.75,
                      "etcd_appliance_last_defragmentation_timestamp_seconds": 41_000.0,
                      "etcd_appliance_compacted_revision": 650, "etcd_appliance_quota_backend_bytes": QUOTA}
    assert sample(metrics, "etcd_appliance_alarm_active", alarm="NOSPACE") == 1
    assert sample(metrics, "etcd_appliance_alarm_active", alarm="CORRUPT") == 0  # member 3's, not this one's
    assert list(maint.compaction.samples) == [(clock.now, 700)]  # every member samples its revision
    assert etcd.calls == []  # nothing to write


def test_report_shows_what_this_agent_did_but_could_not_record_yet():
    etcd = FakeMaintenanceEtcd()
    etcd.alarm_list = [Alarm(2, AlarmKind.NOSPACE)]  # refuses the records' puts
    maint, _, metrics = upkeep(etcd)
    maint.compaction.done, maint.compaction.unrecorded = CompactionRecord(900, 45_000.0), True
    mine = DefragRecord(46_000.0, 80 * MIB, 20 * MIB, 2.0)
    maint.defragmentation.done[2], maint.defragmentation.unrecorded[2] = mine, mine
    fields = maint.report(reported(leader=True, m=OWN_SPACE))
    assert fields["space"]["last_defragmentation"] == 46_000.0 and fields["space"]["compacted_revision"] == 900
    assert sample(metrics, "etcd_appliance_last_defragmentation_timestamp_seconds") == 46_000.0
    assert sample(metrics, "etcd_appliance_compacted_revision") == 900
    assert set(fields["maintenance"]) == {"compaction", "defragmentation", "space", "corruption_check"}
    # Every member tries to write them, leading or not.
    assert [key for key, _ in etcd.named("put")] == [COMPACTION_KEY, f"{DEFRAG_PREFIX}2"]
    etcd.alarm_list = []
    maint.report(reported(m=OWN_SPACE))
    assert json.loads(etcd.keys[COMPACTION_KEY])["revision"] == 900 and etcd.keys[f"{DEFRAG_PREFIX}2"] == mine.to_json()


def test_report_with_unknown_sizes_and_alarms_says_so():
    maint, _, metrics = upkeep(FakeMaintenanceEtcd())
    m = Maintenance((space(2, size=None, in_use=None, revision=None, healthy=False),), None)
    fields = maint.report(reported(m=m))
    assert fields["space"] == {"db_size_bytes": None, "db_size_in_use_bytes": None, "free_ratio": None,
                               "last_defragmentation": None, "compacted_revision": None, "alarms": None}
    assert math.isnan(sample(metrics, "etcd_appliance_db_size_bytes"))
    assert sample(metrics, "etcd_appliance_alarm_active", alarm="NOSPACE") is None  # not set while unknown
    assert list(maint.compaction.samples) == []


def test_report_is_empty_without_the_maintenance_part_or_this_member():
    maint, _, metrics = upkeep(FakeMaintenanceEtcd())
    assert maint.report(reported(m=None)) == {}
    stranger = member(7, "i-7", "127.0.2.7")
    assert maint.report(reported(own=stranger, m=OWN_SPACE)) == {}
    assert math.isnan(sample(metrics, "etcd_appliance_db_size_bytes"))
    assert sample(metrics, "etcd_appliance_compacted_revision") == 0


def test_tick_does_nothing_without_the_maintenance_part():
    etcd = full_cluster()
    maint, _, _ = upkeep(etcd)
    maint.tick(reported(own=M1, leader=True, m=None), True)
    assert etcd.calls == [] and not maint.busy


# --- the observation's maintenance part ----------------------------------------------------------------------


def test_the_leader_reads_every_members_status():
    etcd = FakeMaintenanceEtcd(sizes={1: [30 * MIB, 10 * MIB], 2: [40 * MIB, 20 * MIB], 3: [50 * MIB, 30 * MIB]})
    m = maintenance_view.read(etcd, VIEW, M1, True)
    assert etcd.named("status") == [(EP1,), (EP2,), (EP3,)]
    assert m.members == (MemberSpace(1, "i-1", True, False, True, 30 * MIB, 10 * MIB, 500),
                         MemberSpace(2, "i-2", False, False, True, 40 * MIB, 20 * MIB, 500),
                         MemberSpace(3, "i-3", False, False, True, 50 * MIB, 30 * MIB, 500))
    assert m.alarms == () and m.compaction is None and m.defragmented == {}
    assert [c[0] for c in etcd.calls] == ["status"] * 3 + ["range"]  # reads only; the alarms come with the Status


def test_a_follower_reads_only_its_own_status():
    etcd = FakeMaintenanceEtcd()
    m = maintenance_view.read(etcd, VIEW, M2, False)
    assert etcd.named("status") == [(EP2,)]
    assert [x.member_id for x in m.members] == [2] and not m.members[0].is_leader
    assert maintenance_view.read(etcd, VIEW, None, False).members == ()


def test_a_member_that_does_not_answer_has_unknown_sizes():
    etcd = FakeMaintenanceEtcd()
    etcd.down.add(EP3)
    etcd.leaderless.add(EP2)
    no_urls = member(4, "", "127.0.2.4")  # never started: no client URL to ask
    m = maintenance_view.read(etcd, cluster(M1, M2, M3, no_urls), M1, True)
    assert m.member(3) == MemberSpace(3, "i-3", False, False, False, None, None, None)
    assert m.member(2).healthy is False and m.member(2).db_size == 30 * MIB  # it answers, with no leader
    assert m.member(1).healthy is True
    assert m.member(4) == MemberSpace(4, "", False, False, False)
    assert etcd.named("status") == [(EP1,), (EP2,), (EP3,)]


def test_alarms_come_from_the_first_status_that_answers_and_are_unknown_without_one():
    etcd = FakeMaintenanceEtcd()
    etcd.alarm_list = [Alarm(2, AlarmKind.NOSPACE)]
    assert maintenance_view.read(etcd, VIEW, M1, True).alarms == (Alarm(2, AlarmKind.NOSPACE),)
    etcd.down = {EP1}
    assert maintenance_view.read(etcd, VIEW, M1, True).alarms == (Alarm(2, AlarmKind.NOSPACE),)
    etcd.down = {EP1, EP2, EP3}
    m = maintenance_view.read(etcd, VIEW, M1, True)
    assert m.alarms is None and m.alarmed(AlarmKind.NOSPACE) == ()


@pytest.mark.parametrize("errors, alarms", [
    (("memberID:2 alarm:NOSPACE ",), (Alarm(2, AlarmKind.NOSPACE),)),
    (("memberID:2 alarm:CORRUPT", "memberID:3 alarm:NOSPACE"), (Alarm(2, AlarmKind.CORRUPT),
                                                                  Alarm(3, AlarmKind.NOSPACE))),
    (("memberID:2 alarm:NONE",), ()),             # a kind the appliance does not clear
    (("memberID:x alarm:NOSPACE",), ()),          # not a member id
    (("memberID:0 alarm:NOSPACE",), ()),
    ((f"memberID:{2 ** 64} alarm:NOSPACE",), ()),
    (("some other error",), ()),
    (("",), ()),
], ids=["one", "two", "unknown kind", "not an id", "id 0", "id too large", "not an alarm", "empty"])
def test_the_alarms_in_a_status_answer(errors, alarms):
    assert answers.status_alarms(errors) == alarms


def test_the_records_are_read_and_malformed_ones_ignored():
    etcd = FakeMaintenanceEtcd()
    good = DefragRecord(41_000.0, 90, 80, 3.0)
    etcd.keys = {
        COMPACTION_KEY: json.dumps({"revision": 650, "time": 40_000.0}),
        f"{DEFRAG_PREFIX}2": good.to_json(),
        f"{DEFRAG_PREFIX}ab": good.to_json(),
        f"{DEFRAG_PREFIX}3": "not JSON",
        f"{DEFRAG_PREFIX}4": json.dumps({"time": 1.0, "before": -1, "after": 0, "seconds": 1.0}),
        f"{DEFRAG_PREFIX}5": '{"time": NaN, "before": 1, "after": 0, "seconds": 1.0}',
        f"{DEFRAG_PREFIX}6": b"\xff\xfe",
        f"{DEFRAG_PREFIX}7": json.dumps([1, 2]),
        f"{DEFRAG_PREFIX}8": json.dumps({"time": 1.0}),
        f"{DEFRAG_PREFIX}zz": good.to_json(),
        f"{DEFRAG_PREFIX}0": good.to_json(),
        f"{DEFRAG_PREFIX}{2 ** 64:x}": good.to_json(),
        f"{DEFRAG_PREFIX}": good.to_json(),
        "/__appliance/maintenance/other": "x",
    }
    m = maintenance_view.read(etcd, VIEW, M1, True)
    assert m.compaction == CompactionRecord(650, 40_000.0)
    assert m.defragmented == {2: good, 0xAB: good}


@pytest.mark.parametrize("value", ["not JSON", json.dumps({"revision": -1, "time": 1.0}),
                                   '{"revision": 5, "time": NaN}', json.dumps({"revision": 5})],
                         ids=["not JSON", "negative revision", "NaN time", "no time"])
def test_a_malformed_compaction_record_is_no_record(value):
    etcd = FakeMaintenanceEtcd()
    etcd.keys = {COMPACTION_KEY: value}
    assert maintenance_view.read(etcd, VIEW, M1, True).compaction is None


@pytest.mark.parametrize("key, value", [
    (f"{DEFRAG_PREFIX}2", '{"time": 1.0, "before": 1e400, "after": 0, "seconds": 1.0}'),
    (COMPACTION_KEY, '{"revision": 1e400, "time": 1.0}'),
], ids=["defragmentation record", "compaction record"])
def test_a_record_with_an_infinite_number_is_ignored(key, value):
    etcd = FakeMaintenanceEtcd()
    etcd.keys = {key: value}
    m = maintenance_view.read(etcd, VIEW, M1, True)
    assert m.compaction is None and m.defragmented == {}


def test_records_that_cannot_be_read_are_none():
    etcd = FakeMaintenanceEtcd()
    etcd.keys = {COMPACTION_KEY: json.dumps({"revision": 650, "time": 40_000.0})}
    etcd.refuse["range"] = EtcdUnavailable(f"{EP1}: ReadTimeout")
    m = maintenance_view.read(etcd, VIEW, M1, True)
    assert m.compaction is None and m.defragmented == {} and len(m.members) == 3


def test_the_same_revision_twice_confirms_nothing(monkeypatch):
    check, etcd, clock, _, _ = checker(monkeypatch, {1: 7, 2: 7, 3: 9})
    round_of(check)
    clock.advance(CONFIRM_AFTER)
    round_of(check)  # the revision did not move: not a second opinion
    assert etcd.named("member_remove") == []


def test_nothing_is_removed_while_the_upgrade_lock_is_held(monkeypatch):
    check, etcd, clock, _, _ = checker(monkeypatch, {1: 7, 2: 7, 3: 9})
    confirmed(check, clock, lock="i-0upgrading")
    assert etcd.named("member_remove") == [] and "upgrade lock is held" in check.reason.last


def test_a_round_over_another_membership_is_thrown_away(monkeypatch):
    check, etcd, clock, metrics, _ = checker(monkeypatch, {1: 7, 2: 7, 3: 9})
    check.tick(CHECKED, VIEW, True, 50)
    finished(thread_of(check))
    smaller = ClusterView(VIEW.cluster_id, VIEW.members[:2], VIEW.leader_id)
    check.tick(CHECKED, smaller, True, 50)
    assert check.round is None and etcd.named("member_remove") == []
    assert not sample(metrics, "etcd_appliance_corruption_checks_total", verdict="replace")  # never judged


def test_losing_leadership_forgets_the_round_and_the_suspect(monkeypatch):
    check, etcd, clock, _, _ = checker(monkeypatch, {1: 7, 2: 7, 3: 9})
    round_of(check)
    assert check.suspect == (3, 100)
    check.tick(LATER, VIEW, False, 50)
    assert check.suspect is None and check.round is None


def test_another_leaders_defragmentation_in_progress_makes_this_one_wait():
    d, etcd, _, _ = defragmenter({k: list(v) for k, v in SIZES.items()})
    m = Maintenance(spaces(SIZES), (), None, {}, defragmenting=3)
    decision = d.tick(m, VIEW, True, None)
    assert decision.action == "wait" and "defragmenting member 3" in decision.reason
    assert etcd.named("defragment") == [] and not d.running


def test_a_run_is_announced_under_a_lease_as_long_as_it_may_take_and_the_lease_revoked_after():
    d, etcd, _, _ = defragmenter({k: list(v) for k, v in SIZES.items()})
    m = Maintenance(spaces(SIZES), ())
    etcd.gate.clear()
    d.tick(m, VIEW, True, None)
    assert etcd.entered.wait(WAIT)
    assert etcd.keys[DEFRAG_RUNNING_KEY] == "2" and etcd.named("lease_grant") == [(int(timeout_for(QUOTA)) + 10,)]
    etcd.gate.set()
    finished(d.run.thread)
    d.collect()
    assert DEFRAG_RUNNING_KEY not in etcd.keys and len(etcd.named("lease_revoke")) == 1


def test_a_failed_member_is_tried_again_only_after_the_interval():
    d, etcd, clock, _ = defragmenter({k: list(v) for k, v in SIZES.items()})
    m = Maintenance(spaces(SIZES), ())
    etcd.refuse["defragment"] = EtcdUnavailable("http://127.0.2.2:2379: ReadTimeout")
    d.tick(m, VIEW, True, None)
    finished(d.run.thread)
    d.collect()
    clock.advance(60)
    assert d.tick(m, VIEW, True, None).action == "none" and len(etcd.named("defragment")) == 1
    clock.advance(MIN_INTERVAL)
    del etcd.refuse["defragment"]
    assert d.tick(m, VIEW, True, None).action == "defragment"
    finished(d.run.thread)
