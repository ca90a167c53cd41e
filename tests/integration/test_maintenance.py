"""The cluster maintains itself: defragmentation one member at a time, the NOSPACE alarm cleared with no human,
a corrupt member replaced (real etcd, real moto, the agents as processes); and etcd runs with the quota and the
tuning variables the agents were given.

One simulator with a 16 MiB space quota serves the four tests, in this order; each leaves it with three
healthy voting members.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Sim, etcd_pid, wait_until

QUOTA = 16 * 1024 * 1024
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) ")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    sim = Sim(tmp_path_factory.mktemp("maintenance"))
    try:
        # ETCD_SNAPSHOT_COUNT: an etcd tuning variable the agents pass on (etcd logs it as it starts).
        sim.up(3, agent_env=(f"ETCD_QUOTA_BACKEND_BYTES={QUOTA}", "CORRUPTION_CHECK_INTERVAL=3",
                             "ETCD_SNAPSHOT_COUNT=54321"))
        yield sim
    finally:
        sim.down()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Writer(threading.Thread):
    """Overwrites ``keys`` keys of its own with 4 KiB values carrying a sequence number, through every member in
    turn, until stopped; remembers the last acknowledged sequence of each key and when each write was
    acknowledged or refused."""

    def __init__(self, endpoints: list[str], name: str, keys: int = 50, pause: float = 0.0, size: int = 4096):
        super().__init__(daemon=True)
        self.endpoints, self.prefix, self.keys, self.pause = endpoints, f"/writer/{name}/", keys, pause
        self.size = size
        self.acked: dict[str, int] = {}
        self.acked_at: list[float] = []
        self.refusals: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        http = requests.Session()
        for seq in range(1_000_000):
            if self.halt.is_set():
                return
            key = f"{self.prefix}{seq % self.keys}"
            value = f"{seq}:" + "x" * self.size
            try:
                answer = http.post(self.endpoints[seq % len(self.endpoints)] + "/v3/kv/put",
                                   json={"key": _b64(key), "value": _b64(value)}, timeout=2)
            except requests.RequestException:
                continue
            if answer.status_code == 200 and "error" not in answer.json():
                self.acked[key] = seq
                self.acked_at.append(time.monotonic())
            else:
                self.refusals.append(answer.text[:200])
            if self.pause:
                time.sleep(self.pause)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)

    def longest_gap(self, since: float = 0.0) -> float:
        times = [t for t in self.acked_at if t >= since]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=float("inf"))


def _post(endpoint: str, path: str, body: dict) -> dict:
    return requests.post(endpoint + path, json=body, timeout=3).json()


def _alarms(sim: Sim) -> list[dict]:
    return _post(sim.endpoints().split(",")[0], "/v3/maintenance/alarm", {"action": "GET"}).get("alarms", [])


def _logs(sim: Sim) -> str:
    return "\n".join(sim.agent_log(i) for i in sim.state["instances"])


def _voting_healthy(sim: Sim) -> bool:
    members = sim.members()
    return len(members) == 3 and not any(m.get("IsLearner") for m in members) and sim.healthy()


def _value(endpoint: str, key: str, serializable: bool = False) -> str | None:
    answer = _post(endpoint, "/v3/kv/range", {"key": _b64(key), "serializable": serializable})
    kvs = answer.get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def _windows(text: str) -> list[tuple[str, float, float]]:
    """The defragmentations the agents logged: (member, start, end) in epoch seconds (whole seconds)."""
    started: dict[str, float] = {}
    found = []
    for line in text.splitlines():
        stamp = LOG_TIME.match(line)
        if not stamp:
            continue
        at = time.mktime(time.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%SZ"))
        if m := re.search(r"INFO agent: defragmenting member ([0-9a-f]+) ", line):
            started[m.group(1)] = at
        elif m := re.search(r"INFO agent: defragmented member ([0-9a-f]+) ", line):
            found.append((m.group(1), started.pop(m.group(1), at), at))
    return sorted(found, key=lambda w: w[1])


def test_etcd_runs_with_the_quota_and_the_tuning_variables_given(small):
    for instance in small.instances():
        text = small.agent_log(instance["id"])
        assert '"snapshot-count":54321' in text and f'"quota-size-bytes":{QUOTA}' in text, instance["id"]


def test_fragmentation_is_defragmented_one_member_at_a_time_keeping_quorum(small):
    endpoints = small.endpoints().split(",")
    # Some 600 KB/s of history over 1.3 MiB of live data: the space presses within seconds, each compaction leaves
    # free pages behind, and no NOSPACE.
    writer = Writer(endpoints, "defrag", keys=20, pause=0.1, size=64 * 1024)
    probe = Writer(endpoints, "probe", keys=1, pause=0.05)
    writer.start()
    probe.start()
    try:
        start = time.monotonic()
        wait_until(lambda: len({w[0] for w in _windows(_logs(small))}) >= 3, 150,
                   "every member defragmented once (its free pages above the threshold)", interval=2)
    finally:
        writer.stop()
        probe.stop()
    text = _logs(small)
    windows = _windows(text)
    for (_, _, end), (_, begin, _) in zip(windows, windows[1:], strict=False):
        assert begin >= end, f"two defragmentations overlapped: {windows}"
    assert "defragmentation: moved leadership to member" in text, "the leader was defragmented without moving away"
    assert probe.longest_gap(start) < 5.0, "writes stopped for 5 s or more: quorum was not kept"
    assert "NOSPACE" not in "".join(writer.refusals + probe.refusals)
    wait_until(lambda: _voting_healthy(small), 60, "three healthy voting members")
    # Every agent shows its member's space, and the last defragmentation recorded by the leader that ran it (the
    # record is written a cycle after the end, and read by each agent at its next cycle).
    def spaces() -> dict | None:
        found = {i["id"]: small.agent_status(i["id"])["space"] for i in small.instances()}
        return found if all(s["last_defragmentation"] and s["compacted_revision"] for s in found.values()) else None

    for instance_id, space in wait_until(spaces, 30, "every agent to show its member's last defragmentation").items():
        assert space["db_size_bytes"] > 0 and 0 <= space["free_ratio"] <= 1 and space["alarms"] == []
        assert small.metric(instance_id, "etcd_appliance_last_defragmentation_timestamp_seconds") > 0


def test_nospace_is_cleared_with_no_human_and_no_acknowledged_write_is_lost(small):
    endpoints = small.endpoints().split(",")
    # A burst of history faster than a compaction a cycle can take back: 256 KiB values over a few keys (the
    # live data stays small, so that the space can come back).
    writers = [Writer(endpoints, f"fill{i}", keys=4, size=256 * 1024) for i in range(3)]
    for w in writers:
        w.start()
    try:
        wait_until(lambda: any(a.get("alarm") == "NOSPACE" for a in _alarms(small)), 90,
                   "the writers to fill the 16 MiB quota (NOSPACE)", interval=0.2)
        raised = time.monotonic()
        wait_until(lambda: any("database space exceeded" in r for w in writers for r in w.refusals), 10,
                   "a write refused")
    finally:
        for w in writers:
            w.stop()
    wait_until(lambda: not _alarms(small), 60, "the agents to clear NOSPACE", interval=0.5)
    cleared = time.monotonic()
    assert cleared - raised <= 30, f"NOSPACE took {cleared - raised:.0f} s to clear"
    after = Writer(endpoints, "after", keys=1, pause=0.1)
    after.start()
    try:
        wait_until(lambda: after.acked, 30, "a write accepted again")
    finally:
        after.stop()
    leader = small.endpoints().split(",")[0]
    for w in writers:
        for key, seq in w.acked.items():
            value = _value(leader, key)
            assert value is not None and int(value.split(":", 1)[0]) >= seq, f"{key}: acknowledged {seq} lost"
    text = _logs(small)
    said = "\n".join(line for line in text.splitlines() if " agent: " in line and "NOSPACE" in line)
    assert "compaction: NOSPACE: compacting" in text, f"no agent logged the NOSPACE compaction:\n{said}"
    assert "space: NOSPACE cleared" in text, f"no agent logged that it cleared NOSPACE:\n{said}"
    wait_until(lambda: _voting_healthy(small), 60, "three healthy voting members")


def _flip(db: Path, needle: bytes, replacement: bytes) -> int:
    data = db.read_bytes()
    count = data.count(needle)
    db.write_bytes(data.replace(needle, replacement))
    return count


def test_a_member_whose_data_is_corrupted_is_replaced_and_the_others_keep_theirs(small):
    endpoints = small.endpoints().split(",")
    canary = "corruption-canary-" + "A" * 64
    assert requests.post(endpoints[0] + "/v3/kv/put", json={"key": _b64("/canary"), "value": _b64(canary)},
                         timeout=3).status_code == 200
    victim = small.non_leader()["id"]
    directory = Path(small.state_dir, "instances", victim)
    wait_until(lambda: canary.encode() in (directory / "data/member/snap/db").read_bytes(), 30,
               "the canary in the victim's bbolt file")
    agent = small.agent_pid(victim)
    os.kill(agent, signal.SIGSTOP)  # so that it does not start etcd again while the file is changed
    try:
        pid = etcd_pid(victim)
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: etcd_pid(victim) is None, 30, "the victim's etcd to stop")
        assert _flip(directory / "data/member/snap/db", canary.encode(), canary.replace("A", "B", 1).encode()) >= 1
    finally:
        os.kill(agent, signal.SIGCONT)
    wait_until(lambda: re.search(r"corruption check: removed member [0-9a-f]+ \(" + victim, _logs(small)), 90,
               "the leader to find the odd hash and remove the member")
    wait_until(lambda: _voting_healthy(small) and victim in {m.get("name") for m in small.members()}, 120,
               "the victim back as a voting member")
    assert (directory / "data.previous").is_dir(), "the corrupt data was not set aside"
    for member in small.members():
        url = member["clientURLs"][0]
        assert _value(url, "/canary", serializable=True) == canary, f"{member['name']} serves other data"
