#!/usr/bin/env python3
"""Snapshots and disaster recovery in the simulator (3 instances, real etcd, moto's S3), as medians.

Figures (targets from the snapshots issue):
  * the leader's client latency while a snapshot of a ~100 MB database streams to S3: p99 of
    small puts to the leader during ``etcd.py backup`` against p99 without it (target: at most
    +20 %);
  * from all 3 instances terminated at once to a serving, restored 3-member cluster (target <= 60 s),
    and to the first restored member serving.

The put latency is measured with the JSON gateway over one kept-alive HTTP connection, one put at a
time, as a client of the leader sees it.

Usage: python benchmarks/bench_snapshots.py [--runs 3] [--mb 100]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_sim import ENTRY, cli, report  # noqa: E402


def status(state_dir: str) -> dict:
    out = json.loads(cli("sim", "status", "--json", "--state-dir", state_dir))
    return next(iter(out["regions"].values()))


def put(session: requests.Session, url: str, key: str, value: bytes) -> None:
    body = {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value).decode()}
    answer = session.post(f"{url}/v3/kv/put", json=body, timeout=10)
    answer.raise_for_status()


def fill(url: str, megabytes: int) -> None:
    """Write ``megabytes`` of 512 KiB values (distinct keys), so the backend file grows to about that."""
    session = requests.Session()
    value = os.urandom(512 * 1024)
    for n in range(megabytes * 2):
        put(session, url, f"/bench/fill/{n:06d}", value)


def p99_of_puts(url: str, seconds: float, stop: threading.Event | None = None) -> tuple[float, int]:
    """(p99 latency in ms, count) of small puts, one at a time, for ``seconds`` or until ``stop``."""
    session = requests.Session()
    latencies = []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        started = time.perf_counter()
        put(session, url, f"/bench/probe/{n % 100}", b"x" * 64)
        latencies.append((time.perf_counter() - started) * 1000)
        n += 1
    latencies.sort()
    return latencies[int(len(latencies) * 0.99) - 1], len(latencies)


def snapshot_latency(state_dir: str, megabytes: int, results: dict) -> None:
    leader = next(i for i in status(state_dir)["instances"] if i["leader"])
    url = leader["client_url"]
    fill(url, megabytes)
    baseline, _ = p99_of_puts(url, 15)
    stop = threading.Event()
    during: dict = {}

    def probe():
        during["p99"], during["n"] = p99_of_puts(url, 600, stop)

    prober = threading.Thread(target=probe)
    prober.start()
    time.sleep(0.5)
    started = time.monotonic()
    out = cli("backup", "--sim", "--state-dir", state_dir, timeout=600)
    took = time.monotonic() - started
    stop.set()
    prober.join(30)
    size = int(out.split(" bytes")[0].rsplit(" ", 1)[1])
    print(f"  snapshot {size / 1e6:.0f} MB in {took:.1f} s; put p99 {baseline:.2f} ms before, "
          f"{during['p99']:.2f} ms during ({during['n']} puts)", flush=True)
    results["baseline"].append(baseline)
    results["during"].append(during["p99"])
    results["rise"].append(100 * (during["p99"] / baseline - 1))
    results["snapshot"].append(took)


def restore_after_all_terminated(state_dir: str, results: dict) -> None:
    """Terminate every instance at once; time the first restored member serving and the full cluster."""
    ids = [i["id"] for i in status(state_dir)["instances"]]
    procs = [subprocess.Popen([sys.executable, ENTRY, "sim", "terminate", "--state-dir", state_dir, i],
                              stdout=subprocess.DEVNULL) for i in ids]
    for proc in procs:
        proc.wait(60)
    started = time.monotonic()
    first = None
    for _ in range(600):
        current = status(state_dir)
        if first is None and any(i["leader"] for i in current["instances"]):
            first = time.monotonic() - started
        if current["healthy"] and not set(ids) & {i["id"] for i in current["instances"]}:
            break
        time.sleep(0.5)
    else:
        raise SystemExit("no healthy restored cluster within 300 s")
    whole = time.monotonic() - started
    leader = next(i for i in current["instances"] if i["leader"])
    answer = requests.post(f"{leader['client_url']}/v3/kv/range", timeout=5, json={
        "key": base64.b64encode(b"/bench/fill/").decode(), "range_end": base64.b64encode(b"/bench/fill0").decode(),
        "count_only": True}).json()
    if int(answer.get("count", 0)) == 0:
        raise SystemExit("the restored cluster is empty")
    print(f"  all terminated -> first restored member leads after {first:.1f} s, healthy 3-member cluster after "
          f"{whole:.1f} s ({answer['count']} keys restored)", flush=True)
    results["first"].append(first)
    results["restored"].append(whole)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=int, default=100, help="database size to fill, in MB (default 100)")
    args = parser.parse_args()
    results: dict[str, list[float]] = {k: [] for k in ("baseline", "during", "rise", "snapshot", "first",
                                                       "restored")}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-snapshots-") as state_dir:
            try:
                cli("sim", "up", "--detach", "--instances", "3", "--state-dir", state_dir,
                    "--agent-env", "SNAPSHOT_INTERVAL=3600")
                snapshot_latency(state_dir, args.mb, results)
                restore_after_all_terminated(state_dir, results)
            finally:
                cli("sim", "down", "--state-dir", state_dir)
        print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.2f}" for k, v in results.items()), flush=True)
    report(results, args.runs, [
        ("leader's put p99 without a snapshot", "baseline", "ms", "none set"),
        (f"leader's put p99 during a {args.mb} MB snapshot to S3", "during", "ms", "none set"),
        ("  rise of the p99 during the snapshot", "rise", "%", "<= 20 %"),
        (f"snapshot of {args.mb} MB: stream, check, upload, verify", "snapshot", "s", "none set"),
        ("all terminated -> a restored member leads", "first", "s", "none set"),
        ("all terminated -> healthy restored 3-member cluster", "restored", "s", "<= 60 s")])


if __name__ == "__main__":
    main()
