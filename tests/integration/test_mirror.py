"""The prefix mirror against two real etcd servers: copy, live changes, crashes, compaction, strictness, leases."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from appliance.adapters.etcd.client import EtcdClient, op_put
from appliance.model.exit_codes import ExitCode
from appliance.model.keys import prefix_end
from appliance.sim.standalone import StandalonePair
from tests.integration.conftest import REPO, wait_until

PROGRESS = ["--experimental-watch-progress-notify-interval=1s"]


@pytest.fixture
def pair(tmp_path):
    servers = StandalonePair(str(tmp_path / "etcd"), extra=PROGRESS)
    yield servers
    servers.stop()


class MirrorProcess:
    """``etcd.py mirror`` as a subprocess in its own process group, its log in a file."""

    def __init__(self, pair: StandalonePair, log: Path, *extra: str, source_prefix: str = "/src/",
                 dest_prefix: str = "/dst/"):
        self.args = [sys.executable, str(REPO / "etcd.py"), "mirror", "--source", pair.source.url,
                     "--source-prefix", source_prefix, "--dest", pair.dest.url, "--dest-prefix", dest_prefix,
                     "--timeout", "3", *extra]
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "MirrorProcess":
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                         start_new_session=True)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def mirrors(tmp_path):
    """Make mirror processes; every one is killed at the end of the test."""
    made: list[MirrorProcess] = []

    def make(pair, *extra, **kw) -> MirrorProcess:
        m = MirrorProcess(pair, tmp_path / f"mirror-{len(made)}.log", *extra, **kw)
        made.append(m)
        return m

    yield make
    for m in made:
        m.kill()


def verify(pair, source_prefix="/src/", dest_prefix="/dst/") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "etcd.py"), "verify", "--source", pair.source.url,
                           "--source-prefix", source_prefix, "--dest", pair.dest.url, "--dest-prefix", dest_prefix],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def equal(pair, **kw):
    """Caught up (the position reached the source's revision) and verify finds no difference.

    verify alone compares at the position, so it also passes while the mirror lags behind.
    """
    current = EtcdClient([pair.source.url]).range(b"/", limit=1).revision
    if (position(pair, kw.get("dest_prefix", "/dst/")) or 0) < current:
        return None
    done = verify(pair, **kw)
    return done.returncode == 0 or None


def position(pair, dest_prefix="/dst/") -> int | None:
    found = EtcdClient([pair.dest.url]).get(f"/__replication/{dest_prefix}")
    return int(found[0]) if found else None


def keys(url: str, prefix: str) -> dict[bytes, tuple[bytes, int]]:
    """key -> (value, version) under ``prefix``."""
    page = EtcdClient([url], timeout=10).range(prefix.encode(), prefix_end(prefix.encode()))
    return {kv.key: (kv.value, kv.version) for kv in page.kvs}


def test_copy_then_live_changes_then_equal(pair, mirrors):
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    for i in range(500):
        src.put(f"/src/k{i:04d}", f"v{i}")
    dst.put("/dst/stale", "not in the source")    # removed by the copy
    dst.put("/elsewhere", "untouched")             # outside the destination prefix
    src.put("/not-mirrored", "x")
    m = mirrors(pair).start()
    wait_until(lambda: equal(pair), 60, "the first copy")
    assert dst.get("/dst/stale") is None and dst.get("/elsewhere")[0] == b"untouched"
    for i in range(100):
        src.put(f"/src/live{i}", str(i))
    for i in range(0, 500, 7):
        src.delete(f"/src/k{i:04d}")
    wait_until(lambda: equal(pair), 30, "the live changes")
    assert dst.get("/not-mirrored") is None
    assert position(pair) >= src.range(b"/src/", prefix_end(b"/src/"), limit=1).revision - 1
    assert m.proc.poll() is None, m.text()


def writer_thread(url: str, stop: threading.Event, names: list[str], seed: int) -> threading.Thread:
    """Puts (80 %) and deletes (20 %) on a few keys, as fast as etcd answers."""
    rng = random.Random(seed)
    client = EtcdClient([url], timeout=3)

    def run():
        n = 0
        while not stop.is_set():
            key = rng.choice(names)
            n += 1
            if rng.random() < 0.8:
                client.put(key, str(n))
            else:
                client.delete(key)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_kill_9_at_random_moments_applies_every_change_exactly_once(pair, mirrors):
    m = mirrors(pair).start()
    wait_until(lambda: position(pair), 30, "the mirror to store its first position")
    stop = threading.Event()
    names = [f"/src/counter{i}" for i in range(25)]
    thread = writer_thread(pair.source.url, stop, names, seed=7)
    rng = random.Random(11)
    try:
        for _ in range(22):
            time.sleep(rng.uniform(0.05, 0.8))
            m.kill()
            m.start()
    finally:
        stop.set()
        thread.join(10)
    wait_until(lambda: equal(pair), 60, "the destination to catch up")
    assert m.proc.poll() is None, m.text()
    source, dest = keys(pair.source.url, "/src/"), keys(pair.dest.url, "/dst/")
    # A key's version counts the puts since it was created: applying any change twice would raise it.
    assert {k[len(b"/src/"):]: v for k, v in source.items()} == {k[len(b"/dst/"):]: v for k, v in dest.items()}
    assert sum(v for _, v in source.values()) > 50, "the writer hardly wrote"


def test_deletes_made_while_the_mirror_was_down_arrive(pair, mirrors):
    src = EtcdClient([pair.source.url])
    for i in range(50):
        src.put(f"/src/k{i}", "v")
    m = mirrors(pair).start()
    wait_until(lambda: equal(pair), 30, "the first copy")
    m.kill()
    for i in range(0, 50, 2):
        src.delete(f"/src/k{i}")
    src.put("/src/short-lived", "x")
    src.delete("/src/short-lived")             # a delete of a key the destination never had
    m.start()
    wait_until(lambda: equal(pair), 30, "the deletes")
    assert len(keys(pair.dest.url, "/dst/")) == 25


def test_one_key_many_times_and_multi_key_transactions(pair, mirrors):
    src = EtcdClient([pair.source.url])
    m = mirrors(pair, "--max-txn-ops", "4").start()
    wait_until(lambda: position(pair), 30, "the first position")
    for i in range(200):
        src.put("/src/hot", str(i))
    for round_ in range(20):  # one source transaction changing several keys, the hot one included
        src.txn([], [op_put(f"/src/t{k}", str(round_)) for k in range(2)] + [op_put("/src/hot", f"txn{round_}")])
    src.txn([], [op_put(f"/src/wide{k}", "w") for k in range(6)])
    wait_until(lambda: equal(pair), 30, "the destination to catch up")
    dest = keys(pair.dest.url, "/dst/")
    assert dest[b"/dst/hot"] == (b"txn19", 220)  # every put applied once, none merged away
    assert "applied in several transactions" in m.text()  # 6 keys > --max-txn-ops 4 less the position
    assert m.proc.poll() is None, m.text()


def test_compaction_past_the_position_exits_3_and_reload_never_empties_the_destination(pair, mirrors):
    src = EtcdClient([pair.source.url])
    for i in range(3000):
        src.put(f"/src/k{i:05d}", "old")
    m = mirrors(pair).start()
    wait_until(lambda: equal(pair), 60, "the first copy")
    m.kill()
    for i in range(0, 3000, 3):
        src.put(f"/src/k{i:05d}", "new")
    src.compact(src.put("/src/last", "x"))
    stopped = mirrors(pair).start()
    assert stopped.wait(60) == 3
    assert "compacted to revision" in stopped.text() and "run with --reload" in stopped.text()

    counts, stop = [], threading.Event()
    dest = EtcdClient([pair.dest.url])

    def watch_count():
        while not stop.is_set():
            counts.append(dest.count(b"/dst/", prefix_end(b"/dst/")))
            time.sleep(0.01)

    counter = threading.Thread(target=watch_count, daemon=True)
    counter.start()
    reloading = mirrors(pair, "--reload").start()
    try:
        wait_until(lambda: equal(pair), 90, "the reload")
    finally:
        stop.set()
        counter.join(10)
    assert counts and min(counts) >= 3000, f"the destination shrank to {min(counts)} keys during the reload"
    assert reloading.proc.poll() is None, reloading.text()
    assert "--reload: copying again" in reloading.text()


def test_auto_reload_copies_again_by_itself(pair, mirrors):
    src = EtcdClient([pair.source.url])
    src.put("/src/a", "1")
    m = mirrors(pair).start()
    wait_until(lambda: equal(pair), 30, "the first copy")
    m.kill()
    src.put("/src/a", "2")
    src.compact(src.put("/src/b", "3"))
    auto = mirrors(pair, "--auto-reload").start()
    wait_until(lambda: equal(pair), 30, "the automatic reload")
    assert "--auto-reload copies again" in auto.text()


def test_a_quiet_prefix_keeps_its_position_through_compaction(pair, mirrors):
    src = EtcdClient([pair.source.url])
    src.put("/src/quiet", "1")
    m = mirrors(pair).start()
    wait_until(lambda: equal(pair), 30, "the first copy")
    for i in range(500):  # the rest of the keyspace is busy
        src.put(f"/busy/{i % 10}", str(i))
    last = src.put("/busy/end", "x")
    # Progress notifications (every second here) carry the position past the busy revisions.
    wait_until(lambda: (position(pair) or 0) >= last, 20, "the position to follow the progress notifications")
    src.compact(last)
    m.kill()
    again = mirrors(pair).start()
    src.put("/src/quiet", "2")
    wait_until(lambda: equal(pair), 30, "the change after the compaction")
    assert again.proc.poll() is None, again.text()
    assert "resuming from the stored position" in again.text()


def test_strict_stops_with_the_key_and_both_values(pair, mirrors):
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    src.put("/src/k", "source-value")
    m = mirrors(pair, "--strict").start()
    wait_until(lambda: equal(pair), 30, "the first copy")
    dst.put("/dst/k", "changed-by-hand")
    src.put("/src/k", "next")
    assert m.wait(30) == 4
    text = m.text()
    assert "b'/dst/k' holds b'changed-by-hand' but the source held b'source-value'" in text
    assert dst.get("/dst/k")[0] == b"changed-by-hand"  # nothing applied over it


def test_a_lease_crosses_with_its_remaining_ttl_and_ends_with_the_source_lease(pair, mirrors):
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    lease = src.lease_grant(30)
    src.put("/src/ephemeral", "x", lease=lease)
    mirrors(pair).start()
    wait_until(lambda: equal(pair), 30, "the first copy")
    dest_lease = dst.get("/dst/ephemeral")[1]
    assert dest_lease, "the destination key has no lease"
    assert 0 < dst.lease_time_to_live(dest_lease) <= 30
    time.sleep(3)  # the mirror keeps the destination lease alive while the source lease lives
    src.lease_keepalive(lease)
    assert dst.lease_time_to_live(dest_lease) > 25
    src.lease_revoke(lease)
    wait_until(lambda: dst.get("/dst/ephemeral") is None, 30, "the key to go with the source lease")


def test_mirroring_pauses_once_caught_up_while_the_source_is_passive(pair, mirrors):
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    src.put("/src/a", "1")
    m = mirrors(pair).start()
    wait_until(lambda: equal(pair), 30, "the first copy")
    # The last write before the source turns passive must still arrive.
    src.put("/src/b", "last")
    passive_at = src.put("/__appliance/mode", "passive")
    wait_until(lambda: "paused: the source is passive" in m.text() or None, 20, "the pause")
    assert dst.get("/dst/b")[0] == b"last"
    assert position(pair) >= passive_at
    src.put("/src/a", "2")
    time.sleep(3)
    assert dst.get("/dst/a")[0] == b"1", "mirrored while the source was passive"
    assert dst.get("/__appliance/mode") is None, "the source's mode was copied"
    src.put("/__appliance/mode", "active")
    wait_until(lambda: equal(pair), 30, "the resumed mirror")


def test_a_second_mirror_on_the_same_position_is_refused(pair, mirrors):
    src = EtcdClient([pair.source.url])
    first = mirrors(pair).start()
    wait_until(lambda: position(pair), 30, "the first position")
    second = mirrors(pair).start()
    wait_until(lambda: "resuming from the stored position" in second.text() or None, 30, "the second mirror to start")
    for i in range(200):
        src.put(f"/src/k{i % 5}", str(i))
    wait_until(lambda: first.proc.poll() == 5 or second.proc.poll() == 5 or None, 30, "one mirror to stop")
    loser = first if first.proc.poll() == 5 else second
    assert "another mirror writes to this destination" in loser.text()


def test_metrics_and_lag(pair, mirrors):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = EtcdClient([pair.source.url])
    mirrors(pair, "--metrics-port", str(port)).start()
    wait_until(lambda: position(pair), 30, "the first position")
    time.sleep(1)  # the heartbeat watch is open
    for i in range(3):
        src.put("/src/k", str(i))
        src.put("/__appliance/heartbeat", f"{time.time():.3f}")  # outside the mirrored prefix, as in the appliance
        time.sleep(0.3)

    def metric(name):
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=3).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    wait_until(lambda: (metric("etcd_mirror_events_applied_total") or 0) >= 3, 20, "events in the metrics")
    wait_until(lambda: metric("etcd_mirror_applied_revision") == position(pair), 10, "the position in the metrics")
    wait_until(lambda: 0 < (metric("etcd_mirror_lag_seconds") or 0) < 5, 10, "the lag from the heartbeat")
    assert metric("etcd_mirror_lag_revisions") is not None and metric("etcd_mirror_reloads_total") == 0


def test_a_destination_with_a_lower_txn_limit_stops_the_mirror_with_exit_2(tmp_path, mirrors):
    servers = StandalonePair(str(tmp_path / "etcd"), extra=PROGRESS + ["--max-txn-ops=16"])
    try:
        src = EtcdClient([servers.source.url])
        for i in range(100):
            src.put(f"/src/k{i}", "v")
        m = mirrors(servers, "--max-txn-ops", "64").start()
        assert m.wait(60) == 2
        assert "give --max-txn-ops its limit" in m.text()
    finally:
        servers.stop()


def test_the_mirror_lock_lets_one_mirror_write_and_passes_to_the_next_when_it_dies(pair, mirrors):
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    first = mirrors(pair, "--lock-holder", "first", "--lock-ttl", "3").start()
    wait_until(lambda: position(pair), 30, "the first position")
    second = mirrors(pair, "--lock-holder", "second", "--lock-ttl", "3").start()
    wait_until(lambda: "held by first" in second.text() or None, 30, "the second mirror to wait for the lock")
    assert "mirroring" not in second.text()
    for i in range(50):
        src.put(f"/src/k{i % 5}", str(i))
    wait_until(lambda: equal(pair), 30, "the first mirror's copy")
    first.kill()
    killed = time.monotonic()
    wait_until(lambda: "took the mirror lock" in second.text() or None, 30, "the second mirror to take the lock")
    # The lease of a SIGKILLed holder expires after its TTL (3 s); not much later, the next one holds it.
    assert time.monotonic() - killed < 3 + 2 * 0.5 + 2
    for i in range(50, 100):
        src.put(f"/src/k{i % 5}", str(i))
    wait_until(lambda: equal(pair), 30, "the second mirror's changes")
    assert dst.get("/__appliance/locks/mirror")[0] == b"second"


def test_a_mirror_whose_lock_was_taken_away_writes_nothing_more_and_exits_15(pair, mirrors):
    src, dst = EtcdClient([pair.source.url]), EtcdClient([pair.dest.url])
    m = mirrors(pair, "--lock-holder", "first").start()
    wait_until(lambda: position(pair), 30, "the first position")
    # As if the holder had been cut off for longer than the TTL: its lease is gone, another holds the lock.
    dst.lease_revoke(dst.get("/__appliance/locks/mirror")[1])
    dst.put("/__appliance/locks/mirror", "someone else", lease=dst.lease_grant(60))
    before = position(pair)
    src.put("/src/after", "must not arrive")
    assert m.wait(30) == ExitCode.MIRROR_LOCK_LOST == 15
    assert "mirror lock" in m.text()
    assert dst.get("/dst/after") is None and position(pair) == before
