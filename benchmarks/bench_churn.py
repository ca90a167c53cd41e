#!/usr/bin/env python3
"""A year of churn in minutes: a 64 MiB quota under a writer that never stops, with and without the
appliance's maintenance (compaction, defragmentation, clearing NOSPACE), as medians over several runs.

Workload: a 3-instance simulator (``sim up --instances 3 --agent-env ETCD_QUOTA_BACKEND_BYTES=67108864``,
agents logging JSON for millisecond timestamps) and a writer overwriting 1000 keys under ``/churn/`` with
4 KiB values as fast as it can for ``--minutes``: ``--threads`` threads (default 3), each putting through
etcd's JSON gateway (``POST /v3/kv/put``, 2 s timeout) to the current leader, or to another member when
the leader does not answer (a put to the leader that times out counts in its p99 at 2 s). A thread polls
``POST /v3/maintenance/alarm`` every 0.5 s.

Figures (targets from the maintenance issue):
  * share of the churn's seconds with at least one acknowledged write (target >= 99.9 %);
  * longest stretch without an acknowledged write (target <= 5 s);
  * NOSPACE alarms raised, and the longest time one took to clear (target: each <= 30 s);
  * each member's dbSize at the end of the churn (``POST /v3/maintenance/status``; target: below the quota);
  * the leader's put p99 while a member is defragmented against without (target <= 2x); the windows
    come from the agents' log lines ``defragmenting member ...`` / ``defragmented member ... in <s> s``;
    defragmentations and compactions counted from the agents' ``/metrics`` (n/a where absent);
  * side by side without the appliance's maintenance: in each run, before the simulator (one at a time, so
    that they do not share the cores), a plain 3-member etcd (the simulator's binary, the same quota,
    default heartbeat and election, a loopback subnet claimed as the simulator claims its own) under the
    same writer: time until it refuses writes ("database space exceeded"), capped at ``--minutes``;
  * an idle cluster's database growth per hour, the leader's heartbeat (one put a second) included: in
    the same simulator after the churn and a 30 s settle, every member's dbSize and dbSizeInUse at the
    start and end of ``--idle-minutes`` with no client writes, extrapolated to an hour (target: flat).

A defragmentation's window runs from its ``defragmenting`` line to its ``defragmented`` (or ``failed``)
line, which the agent's defragmentation thread logs when the call returns.

Time: per run about ``--minutes`` + ``--idle-minutes`` + 1.5 min, plus the plain cluster's time to refuse
writes (under a minute on a 2-core machine; at most ``--minutes``): about 65 minutes with the defaults.
The writer keeps the machine's cores busy while it runs.

Usage: python benchmarks/bench_churn.py [--runs 3] [--minutes 10] [--idle-minutes 10] [--threads 3]
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import datetime
import glob
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from appliance.sim import aws, state  # noqa: E402
from appliance.sim.supervisor import etcd_binary  # noqa: E402

ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "etcd.py")
KEYS = 1000
VALUE_BYTES = 4096
PUT_TIMEOUT = 2.0
PROBE_TIMEOUT = 1.0
STATUS_PORT = 2378  # the agents' status endpoint, which serves /metrics
SETTLE_SECONDS = 30.0
SPACE_EXCEEDED = "database space exceeded"
DEFRAG_START = re.compile(r"defragmenting member ([0-9a-fA-F]+) \(([^)]*)\): (.*)")
DEFRAG_DONE = re.compile(r"defragmented member ([0-9a-fA-F]+) \(([^)]*)\) in ([\d.]+) s: (\d+) -> (\d+) bytes")
DEFRAG_FAILED = re.compile(r"defragmentation of member ([0-9a-fA-F]+) \(([^)]*)\) failed after ([\d.]+) s")
TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) \S+ \S+: (.*)$")
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)(\s+-?\d+)?$")
COUNTERS = {"defrags": "etcd_appliance_defragmentations_total", "compactions": "etcd_appliance_compactions_total"}


def cli(*args: str, timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, ENTRY, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"etcd.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def post(session: requests.Session | None, url: str, path: str, body: dict, timeout: float = PROBE_TIMEOUT) -> dict:
    answer = (session or requests).post(f"{url}{path}", json=body, timeout=timeout)
    answer.raise_for_status()
    return answer.json()


def member_status(url: str) -> dict | None:
    """``POST /v3/maintenance/status`` of one member, or None when it does not answer in time."""
    try:
        return post(None, url, "/v3/maintenance/status", {})
    except (requests.RequestException, ValueError):
        return None


def p99(latencies: list[float]) -> float | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return ordered[max(0, math.ceil(len(ordered) * 0.99) - 1)]


class Target(threading.Thread):
    """The members' client URLs (``urls_of()``) and the leader's, refreshed every second.

    Attributes:
        urls: every member's client URL. leader: the leader's, or None when no member names one.
    """

    def __init__(self, urls_of):
        super().__init__(name="leader-tracker", daemon=True)
        self.urls_of = urls_of
        self.urls: list[str] = list(urls_of())
        self.leader: str | None = None
        self.ids: dict[str, str] = {}  # member id -> its URL, as each member last answered
        self.stopped = threading.Event()
        self.refresh()

    def refresh(self) -> None:
        """The leader as the members name it: a leader blocked by a defragmentation (its own status not
        answering) stays the leader while the others still name it."""
        self.urls = list(self.urls_of()) or self.urls
        named = []
        for url in self.urls:
            found = member_status(url)
            if found:
                self.ids[found.get("header", {}).get("member_id", "")] = url
                named.append(found.get("leader"))
        leader = max(set(named), key=named.count) if named else None
        self.leader = self.ids.get(leader) if leader and self.ids.get(leader) in self.urls else None

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - a state file being rewritten: try again in a second
                print(f"  (leader look-up failed: {exc})", flush=True)

    def stop(self) -> None:
        self.stopped.set()
        self.join(10)


class Churn:
    """``threads`` threads overwriting ``KEYS`` keys under /churn/ with ``VALUE_BYTES`` values, leader first.

    Attributes:
        acks: (completion wall time, latency in seconds, sent to the leader) of each acknowledged put.
        leader_timeouts: (wall time, seconds) of each put to the leader that timed out: in the leader's
            latency figures at its timeout, at least what its client waited.
        refusals: wall time of each "database space exceeded". errors: other failed attempts.
        first_refusal: set at the first refusal.
    """

    def __init__(self, target: Target, threads: int):
        self.target = target
        self.acks: list[tuple[float, float, bool]] = []
        self.leader_timeouts: list[tuple[float, float]] = []
        self.refusals: list[float] = []
        self.errors = 0
        self.first_refusal = threading.Event()
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(i, threads), name=f"churn-{i}", daemon=True)
                        for i in range(threads)]
        self.started_at = self.stopped_at = 0.0

    def start(self) -> None:
        self.started_at = time.time()
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(PUT_TIMEOUT + 5)
        self.stopped_at = time.time()

    def _write(self, first: int, step: int) -> None:
        session = requests.Session()
        value = base64.b64encode(os.urandom(VALUE_BYTES)).decode()
        n, misses = first, 0
        while not self.stopped.is_set():
            leader = self.target.leader
            candidates = ([leader] if leader else []) + [u for u in self.target.urls if u != leader]
            if not candidates:
                self.stopped.wait(0.1)
                continue
            url = candidates[misses % len(candidates)]
            key = base64.b64encode(f"/churn/{n % KEYS:04d}".encode()).decode()
            started = time.perf_counter()
            try:
                answer = session.post(f"{url}/v3/kv/put", json={"key": key, "value": value}, timeout=PUT_TIMEOUT)
                text = answer.text
            except requests.RequestException as exc:
                if url == leader and isinstance(exc, requests.Timeout):
                    self.leader_timeouts.append((time.time(), time.perf_counter() - started))
                self.errors += 1
                misses += 1
                self.stopped.wait(0.02)
                continue
            latency = time.perf_counter() - started
            if answer.status_code == 200 and '"header"' in text and '"error"' not in text:
                self.acks.append((time.time(), latency, url == leader))
                n += step
                misses = 0
            elif SPACE_EXCEEDED in text:
                self.refusals.append(time.time())
                self.first_refusal.set()
                self.stopped.wait(0.05)  # etcd refuses until the alarm is disarmed: do not spin on it
            else:
                self.errors += 1
                misses += 1
                self.stopped.wait(0.02)

    def seconds_with_ack(self) -> float:
        """The share (%) of the whole seconds from start to stop with at least one acknowledged put."""
        total = max(1, int(self.stopped_at - self.started_at))
        seconds = {int(t - self.started_at) for t, _, _ in self.acks if t - self.started_at < total}
        return 100.0 * len(seconds) / total

    def longest_gap(self) -> float:
        times = [self.started_at, *sorted(t for t, _, _ in self.acks), self.stopped_at]
        return max(b - a for a, b in zip(times, times[1:], strict=False))


class AlarmWatch(threading.Thread):
    """Polls the cluster's alarms every 0.5 s; ``episodes``: [member id, raised at, cleared at or None]."""

    def __init__(self, target: Target):
        super().__init__(name="alarm-watch", daemon=True)
        self.target = target
        self.episodes: list[list] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self.stopped.wait(0.5):
            for url in [u for u in [self.target.leader] if u] + list(self.target.urls):
                try:
                    answer = post(session, url, "/v3/maintenance/alarm", {"action": "GET"})
                except (requests.RequestException, ValueError):
                    continue
                self._record({a.get("memberID", "0") for a in answer.get("alarms", [])
                              if a.get("alarm") == "NOSPACE"}, time.time())
                break

    def _record(self, raised: set[str], now: float) -> None:
        open_ = {e[0]: e for e in self.episodes if e[2] is None}
        for member in raised - set(open_):
            self.episodes.append([member, now, None])
        for member, episode in open_.items():
            if member not in raised:
                episode[2] = now

    def stop(self) -> None:
        self.stopped.set()
        self.join(10)


def _die_with_parent() -> None:  # pragma: no cover - runs between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()  # a process group of its own, killed as a whole


def plain_cluster(minutes: float, threads: int, quota: int) -> dict:
    """A plain 3-member etcd with ``--quota-backend-bytes`` on a claimed loopback subnet, under the same
    writer until the first refusal (at most ``minutes``): seconds to it, and what was acknowledged."""
    subnet, lock = aws.claim_subnet()  # the simulators' own claim: no simulator takes these addresses meanwhile
    workdir = tempfile.mkdtemp(prefix="bench-churn-plain-")
    procs: list[subprocess.Popen] = []
    try:
        ips = [f"127.0.{subnet}.{h}" for h in (4, 5, 6)]
        cluster = ",".join(f"p{i}=http://{ip}:2380" for i, ip in enumerate(ips))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
        for i, ip in enumerate(ips):
            with open(os.path.join(workdir, f"p{i}.log"), "ab") as out:
                procs.append(subprocess.Popen(
                    [etcd_binary(), "--name", f"p{i}", "--data-dir", os.path.join(workdir, f"p{i}"),
                     "--listen-peer-urls", f"http://{ip}:2380", "--initial-advertise-peer-urls", f"http://{ip}:2380",
                     "--listen-client-urls", f"http://{ip}:2379", "--advertise-client-urls", f"http://{ip}:2379",
                     "--initial-cluster", cluster, "--initial-cluster-state", "new",
                     "--initial-cluster-token", f"bench-churn-{os.getpid()}", f"--quota-backend-bytes={quota}"],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    preexec_fn=_die_with_parent))
        urls = [f"http://{ip}:2379" for ip in ips]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [member_status(u) for u in urls]
            if all(f and f.get("leader") not in (None, "0") for f in found):
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"the plain etcd cluster was not up within 60 s (logs in {workdir})")
        target = Target(lambda: urls)
        target.start()
        churn = Churn(target, threads)
        try:
            churn.start()
            churn.first_refusal.wait(minutes * 60)
        finally:
            churn.stop()
            target.stop()
        refused = churn.refusals[0] - churn.started_at if churn.refusals else None
        sizes = [int(s.get("dbSize", 0)) for s in map(member_status, urls) if s]
        return {"refused": refused, "acked": len(churn.acks),
                "rate": len(churn.acks) / max(1e-9, churn.stopped_at - churn.started_at),
                "db": max(sizes) if sizes else None}
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
        lock.close()
        shutil.rmtree(workdir, ignore_errors=True)


def sim_urls(state_dir: str):
    def urls() -> list[str]:
        current = state.load(state_dir) or {}
        return [state.client_url(current, i["private_ip"]) for i in current.get("instances", {}).values()
                if i.get("private_ip")]
    return urls


def log_stamp(line: str) -> tuple[float, str, float] | None:
    """(wall time, message, resolution in seconds) of an agent's log line, JSON or text; None otherwise."""
    line = line.strip()
    if line.startswith("{"):
        try:
            entry = json.loads(line)
            stamp = datetime.datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
            return stamp, str(entry.get("message", "")), 0.001
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
    found = TEXT_LINE.match(line)
    if not found:
        return None
    stamp = datetime.datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp()
    return stamp, found.group(2), 1.0


def defrag_windows(state_dir: str, until: float) -> list[tuple[float, float, str]]:
    """(start, end, member hex) of each defragmentation the agents logged; one still running ends at ``until``."""
    windows, started = [], {}
    for path in glob.glob(os.path.join(state_dir, "instances", "*", "agent.log")):
        with open(path, errors="replace") as f:
            for line in f:
                if "defragment" not in line:
                    continue
                parsed = log_stamp(line)
                if parsed is None:
                    continue
                stamp, message, resolution = parsed
                if found := DEFRAG_START.search(message):
                    started[found.group(1).lower()] = stamp
                elif found := DEFRAG_DONE.search(message) or DEFRAG_FAILED.search(message):
                    member = found.group(1).lower()
                    begin = min(started.pop(member, stamp), stamp - float(found.group(3)))
                    windows.append((begin, stamp + resolution, member))
    windows += [(begin, until, member) for member, begin in started.items()]
    return sorted(windows)


def counters(state_dir: str) -> dict[str, float | None]:
    """The agents' defragmentation and compaction counters from /metrics, summed; None where no agent has one."""
    totals: dict[str, float | None] = dict.fromkeys(COUNTERS)
    current = state.load(state_dir) or {}
    for inst in current.get("instances", {}).values():
        try:
            text = requests.get(f"http://{inst['private_ip']}:{STATUS_PORT}/metrics", timeout=PROBE_TIMEOUT).text
        except (requests.RequestException, KeyError):
            continue
        for line in text.splitlines():
            if line.startswith("# TYPE "):  # declared: zero until a sample says otherwise (labelled counters)
                for figure, name in COUNTERS.items():
                    if line.split()[2:3] in ([name], [name.removesuffix("_total")]) and totals[figure] is None:
                        totals[figure] = 0.0
                continue
            found = SAMPLE.match(line.strip())
            if not found or line.startswith("#"):
                continue
            for figure, name in COUNTERS.items():
                if found.group(1) == name:
                    try:
                        totals[figure] = (totals[figure] or 0.0) + float(found.group(3))
                    except ValueError:
                        pass
    return totals


def sizes(urls: list[str]) -> dict[str, dict]:
    """url -> {"db", "in_use", "revision"} of each member that answers."""
    found = {}
    for url in urls:
        s = member_status(url)
        if s:
            found[url] = {"db": int(s.get("dbSize", 0)), "in_use": int(s.get("dbSizeInUse", 0)),
                          "revision": int(s.get("header", {}).get("revision", 0))}
    return found


def churn_in_sim(state_dir: str, minutes: float, idle_minutes: float, threads: int, quota: int,
                 agent_env: tuple[str, ...] = ()) -> dict:
    extra = [a for pair in agent_env for a in ("--agent-env", pair)]
    cli("sim", "up", "--detach", "--instances", "3", "--state-dir", state_dir,
        "--agent-env", f"ETCD_QUOTA_BACKEND_BYTES={quota}", "--agent-env", "LOG_FORMAT=json", *extra)
    target = Target(sim_urls(state_dir))
    target.start()
    alarms = AlarmWatch(target)
    alarms.start()
    try:
        return measure_sim(state_dir, target, alarms, minutes, idle_minutes, threads)
    finally:
        alarms.stop()
        target.stop()


def measure_sim(state_dir: str, target: Target, alarms: AlarmWatch, minutes: float, idle_minutes: float,
                threads: int) -> dict:
    churn = Churn(target, threads)
    try:
        churn.start()
        churn.stopped.wait(minutes * 60)
    finally:
        churn.stop()
    figures: dict = {}
    end = sizes(target.urls)
    figures["db_end"] = max((s["db"] / 2 ** 20 for s in end.values()), default=None)
    figures["db_end_members"] = [s["db"] for s in end.values()]
    figures.update(counters(state_dir))
    windows = defrag_windows(state_dir, churn.stopped_at)
    figures["defrags_logged"] = len(windows)
    during, otherwise = [], []
    for done, latency, to_leader in [*churn.acks, *((t, s, True) for t, s in churn.leader_timeouts)]:
        if to_leader:
            overlaps = any(b < done and done - latency < e for b, e, _ in windows)
            (during if overlaps else otherwise).append(latency * 1000)
    figures["p99_defrag"], figures["p99_other"] = p99(during), p99(otherwise)
    figures["n_defrag"], figures["n_other"] = len(during), len(otherwise)
    figures["ratio"] = (figures["p99_defrag"] / figures["p99_other"]
                        if figures["p99_defrag"] is not None and figures["p99_other"] else None)
    figures["longest_defrag"] = max((e - b for b, e, _ in windows), default=None)
    figures["share"] = churn.seconds_with_ack()
    figures["gap"] = churn.longest_gap()
    figures["rate"] = len(churn.acks) / max(1e-9, churn.stopped_at - churn.started_at)
    figures["refusals"] = len(churn.refusals)
    figures["errors"] = churn.errors
    figures["leader_timeouts"] = len(churn.leader_timeouts)
    # The idle cluster: no client writes; the alarm watch and the leader look-ups only read.
    time.sleep(SETTLE_SECONDS)
    before, began = sizes(target.urls), time.time()
    time.sleep(idle_minutes * 60)
    after, ended = sizes(target.urls), time.time()
    alarms.stop()
    per_hour = 3600 / max(1e-9, ended - began)
    common = [u for u in before if u in after]
    for key, figure in (("db", "idle_db"), ("in_use", "idle_in_use"), ("revision", "idle_revisions")):
        growth = [(after[u][key] - before[u][key]) * per_hour for u in common]
        figures[figure] = max(growth, key=abs) if growth else None
    figures["idle_in_use_end"] = max((s["in_use"] for s in after.values()), default=None)
    episodes = alarms.episodes
    figures["alarms"] = len(episodes)
    figures["uncleared"] = sum(1 for e in episodes if e[2] is None)
    figures["clear_max"] = max(((e[2] or ended) - e[1] for e in episodes), default=None)
    figures["clear_times"] = [f"cleared after {e[2] - e[1]:.1f} s" if e[2] else
                              f"not cleared {ended - e[1]:.1f} s after it was raised" for e in episodes]
    return figures


def show(value, fmt: str = ".2f") -> str:
    return "n/a" if value is None else format(value, fmt)


def one_run(args) -> dict:
    quota = args.quota_mib * 1024 * 1024
    plain = plain_cluster(args.minutes, args.threads, quota)
    print("  plain etcd, no maintenance: "
          + (f"refused writes after {plain['refused']:.1f} s" if plain["refused"] is not None
             else f"still accepting writes after {args.minutes:g} min")
          + f" ({plain['acked']} puts acknowledged, {plain['rate']:.0f}/s; dbSize {show(plain['db'], ',')} bytes)",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-churn-") as state_dir:
        try:
            figures = churn_in_sim(state_dir, args.minutes, args.idle_minutes, args.threads, quota,
                                   tuple(args.agent_env))
        finally:
            subprocess.run([sys.executable, ENTRY, "sim", "down", "--state-dir", state_dir], capture_output=True,
                           timeout=120)
    figures["plain_refused"] = plain["refused"]
    figures["plain_rate"] = plain["rate"]
    f = figures
    print(f"  appliance: {f['rate']:.0f} puts/s acknowledged, {f['share']:.2f} % of seconds with one, longest "
          f"stretch without {f['gap']:.2f} s, {f['refusals']} refusals, {f['errors']} other failed attempts "
          f"({f['leader_timeouts']} timeouts at the leader, counted in its p99 at {PUT_TIMEOUT:g} s)",
          flush=True)
    print(f"  NOSPACE alarms {f['alarms']}: " + (", ".join(f["clear_times"]) or "-")
          + f"; dbSize at the end {f['db_end_members']} bytes (quota {quota})", flush=True)
    if f["defrags_logged"]:
        print(f"  {f['defrags_logged']} defragmentations logged (longest {f['longest_defrag']:.2f} s): leader's put "
              f"p99 {show(f['p99_defrag'])} ms during ({f['n_defrag']} puts) against {show(f['p99_other'])} ms "
              f"otherwise ({f['n_other']} puts)", flush=True)
    else:
        print(f"  no defragmentation logged: leader's put p99 {show(f['p99_other'])} ms ({f['n_other']} puts)",
              flush=True)
    print(f"  agents' /metrics: {show(f['defrags'], '.0f')} defragmentations, {show(f['compactions'], '.0f')} "
          f"compactions", flush=True)
    print(f"  idle {args.idle_minutes:g} min: dbSize {show(f['idle_db'], ',.0f')} bytes/h, dbSizeInUse "
          f"{show(f['idle_in_use'], ',.0f')} bytes/h, {show(f['idle_revisions'], ',.0f')} revisions/h "
          f"(busiest member; dbSizeInUse {show(f['idle_in_use_end'], ',')} bytes at the end)", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10, help="minutes of churn (and the plain cluster's cap)")
    parser.add_argument("--idle-minutes", type=float, default=10, help="minutes of the idle period after the churn")
    parser.add_argument("--threads", type=int, default=3, choices=range(1, 9), metavar="N",
                        help="writer threads (default 3)")
    parser.add_argument("--quota-mib", type=int, default=64, help="etcd's backend quota in MiB (default 64)")
    parser.add_argument("--agent-env", action="append", default=[], metavar="NAME=VALUE",
                        help="more environment for the agents, e.g. COMPACTION_RETENTION=60 (a short retention shows "
                             "the idle growth flatten within minutes instead of an hour)")
    args = parser.parse_args()
    results: list[dict] = []
    for run in range(args.runs):
        print(f"run {run + 1}:", flush=True)
        results.append(one_run(args))
    print(f"\nmedians of {args.runs} runs on {os.cpu_count()} cores: {args.minutes:g} min of churn "
          f"({args.threads} threads, {KEYS} keys of {VALUE_BYTES} bytes), {args.idle_minutes:g} min idle, "
          f"quota {args.quota_mib} MiB")
    rows = [  # label, figure, unit, format, target
        ("plain etcd: time until it refuses writes", "plain_refused", "s", ".1f",
         f"none: no maintenance; cap {args.minutes:g} min"),
        ("plain etcd: puts acknowledged per second", "plain_rate", "/s", ".0f", "none set"),
        ("appliance: puts acknowledged per second", "rate", "/s", ".0f", "none set"),
        ("share of seconds with an acknowledged write", "share", "%", ".2f", ">= 99.9 %"),
        ("longest stretch without an acknowledged write", "gap", "s", ".2f", "<= 5 s"),
        ("NOSPACE alarms raised", "alarms", "", ".0f", "none set"),
        ("  longest time one took to clear", "clear_max", "s", ".1f", "each <= 30 s"),
        ("largest member dbSize at the end", "db_end", "MiB", ".2f", f"< {args.quota_mib} MiB"),
        ("defragmentations (logged by the agents)", "defrags_logged", "", ".0f", "none set"),
        ("defragmentations (agents' /metrics, any outcome)", "defrags", "", ".0f", "none set"),
        ("compactions (agents' /metrics)", "compactions", "", ".0f", "none set"),
        ("leader's put p99 during a defragmentation", "p99_defrag", "ms", ".1f", "none set"),
        ("leader's put p99 otherwise", "p99_other", "ms", ".1f", "none set"),
        ("  during / otherwise", "ratio", "x", ".2f", "<= 2x"),
        ("idle: dbSize growth (busiest member)", "idle_db", "bytes/h", ",.0f", "flat"),
        ("idle: dbSizeInUse growth (busiest member)", "idle_in_use", "bytes/h", ",.0f", "flat"),
        ("idle: revisions (the heartbeat)", "idle_revisions", "/h", ",.0f", "none set"),
    ]
    why_absent = {"plain_refused": "it never refused writes within the cap",
                  "ratio": "no defragmentation happened", "p99_defrag": "no defragmentation happened",
                  "clear_max": "no alarm raised", "defrags": "no such metric", "compactions": "no such metric"}
    for label, key, unit, fmt, target in rows:
        values = [r[key] for r in results if r.get(key) is not None]
        if not values:
            print(f"{label:<50} n/a ({why_absent.get(key, 'no value')}; target {target})")
            continue
        absent = f"; n/a in {len(results) - len(values)} runs: {why_absent.get(key, 'no value')}" \
            if len(values) < len(results) else ""
        print(f"{label:<50} median {format(statistics.median(values), fmt):>10} {unit:<7} "
              f"(min {format(min(values), fmt)}, max {format(max(values), fmt)}{absent}; target {target})")

if __name__ == "__main__":
    main()
