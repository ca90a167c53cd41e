#!/usr/bin/env python3
"""Rolling rotation of a 3-member cluster while a client writes continuously, as medians over several runs.

Figures (targets from the records/upgrade issue):
  * the longest stretch with no acknowledged write during the rotation (target <= 3 s per replaced
    member: the figure is the longest single stretch of the whole rotation);
  * acknowledged writes lost (target 0), writes acknowledged per second, and the rotation's duration.

Shapes: the rolling upgrade etcd 3.4 -> 3.5, launch before terminate (skipped, saying so, without an
etcd 3.4 binary: `make etcd-old` fetches one), and a terminate-first rotation on 3.5.

Usage: python benchmarks/bench_rotate.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from appliance.sim import state  # noqa: E402
from appliance.sim.supervisor import etcd_binary  # noqa: E402
from appliance.sim.writer import ContinuousWriter  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ENTRY = os.path.join(ROOT, "etcd.py")
ETCD_OLD = os.environ.get("ETCD_OLD_BINARY") or os.path.join(ROOT, ".cache", "etcd-3.4", "usr", "bin", "etcd")


def cli(*args: str, timeout: float = 600) -> str:
    done = subprocess.run([sys.executable, ENTRY, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"etcd.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def lost(state_dir: str, keys: list[str], prefix: str) -> int:
    """How many acknowledged ``keys`` the cluster does not hold (etcdctl, a linearizable read)."""
    current = state.load(state_dir)
    urls = ",".join(f"http://{i['private_ip']}:2379" for i in current["instances"].values())
    etcdctl = os.path.join(os.path.dirname(etcd_binary()), "etcdctl")
    done = subprocess.run([etcdctl, "--endpoints", urls, "--command-timeout=30s", "get", prefix, "--prefix",
                           "--keys-only"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"etcdctl get failed: {done.stderr}")
    present = set(done.stdout.split())
    return sum(1 for k in keys if k not in present)


def one_run(start_bin: str, rotate_args: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-rotate-") as state_dir:
        try:
            cli("sim", "up", "--detach", "--state-dir", state_dir, "--etcd-bin", start_bin)
            writer = ContinuousWriter(state_dir, prefix="/bench/")
            writer.start()
            time.sleep(2)
            started = time.monotonic()
            try:
                cli("sim", "rotate", "--state-dir", state_dir, *rotate_args)
            finally:
                duration = time.monotonic() - started
                time.sleep(1)
                writer.stop()
            return {"gap": writer.longest_gap(), "lost": lost(state_dir, writer.acknowledged, "/bench/"),
                    "rate": len(writer.acknowledged) / (writer.stopped_at - writer.started_at),
                    "duration": duration}
        finally:
            subprocess.run([sys.executable, ENTRY, "sim", "down", "--state-dir", state_dir], capture_output=True,
                           timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    new = etcd_binary()
    shapes = []
    if os.access(ETCD_OLD, os.X_OK):
        shapes.append(("upgrade 3.4 -> 3.5, launch first", ETCD_OLD, ["--etcd-bin", new]))
    else:
        print(f"no etcd 3.4 at {ETCD_OLD} (make etcd-old): the upgrade shape is skipped")
    shapes.append(("rotation on 3.5, terminate first", new, ["--terminate-first"]))
    print(f"medians of {args.runs} runs on {os.cpu_count()} cores")
    for label, start_bin, rotate_args in shapes:
        results: dict[str, list[float]] = {}
        for run in range(args.runs):
            figures = one_run(start_bin, rotate_args)
            for key, value in figures.items():
                results.setdefault(key, []).append(value)
            print(f"  {label}, run {run + 1}: " + ", ".join(f"{k}={v:.2f}" for k, v in figures.items()), flush=True)
        med = {k: statistics.median(v) for k, v in results.items()}
        print(f"{label}:\n"
              f"  longest stretch without an acknowledged write  median {med['gap']:5.2f} s "
              f"(max {max(results['gap']):.2f}; target <= 3 s per replaced member)\n"
              f"  acknowledged writes lost                        max {max(results['lost']):.0f} (target 0)\n"
              f"  writes acknowledged per second                  median {med['rate']:.0f}\n"
              f"  rotation of 3 members                           median {med['duration']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
