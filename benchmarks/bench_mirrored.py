#!/usr/bin/env python3
"""Speed of regional clusters linked by the mirror in the simulator (3 + 3 instances), as medians.

Figures (targets from the multiregion issue, and the agent's for the rest):
  * ``sim up --mode mirrored`` to two healthy clusters, modes set and the inbound mirror holding a
    position (no target set);
  * mirror takeover: the passive leader (the mirror lock's holder) terminated, to the first write
    made in the active cluster after the kill arriving in the passive one (target <= 15 s), with a
    writer putting a key every 0.1 s;
  * steady state: AWS API calls a minute of the busiest agent (the passive leader lists its group
    and reads the other region's read record) and its CPU (the agent, not etcd nor the mirror).

Usage: python benchmarks/bench_mirrored.py [--runs 3] [--kills 3] [--steady-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_sim import cli, report, steady_state  # noqa: E402

from appliance.adapters.etcd.errors import EtcdFailure  # noqa: E402
from appliance.sim import mirrored, state, view  # noqa: E402

ACTIVE, PASSIVE = "eu-central-1", "eu-west-1"


def up(state_dir: str) -> float:
    out = cli("sim", "up", "--detach", "--mode", "mirrored", "--regions", f"{ACTIVE},{PASSIVE}", "--instances", "3",
              "--timeout", "180", "--state-dir", state_dir)
    return float(re.search(r"linked by the mirror, after ([\d.]+) s", out).group(1))


def takeover(state_dir: str) -> float:
    """Terminate the mirror lock's holder; seconds until a write made after that is in the passive cluster."""
    current = state.load(state_dir)
    holder = mirrored.mirror_state(current, PASSIVE)["mirror_lock_holder"]
    active = mirrored.client(current, ACTIVE)
    cli("sim", "terminate", holder, "--state-dir", state_dir)
    killed = time.monotonic()
    n = 0
    while time.monotonic() - killed < 60:
        n += 1
        active.put("/config/bench/tick", str(n))
        try:
            found = mirrored.client(state.load(state_dir), PASSIVE, timeout=1).get("/config/bench/tick")
            if found and found[0] == str(n).encode():
                return time.monotonic() - killed
        except EtcdFailure:
            pass
        time.sleep(0.1)
    raise SystemExit("no write crossed within 60 s of the kill")


def wait_healthy(state_dir: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if view.observe(state.load(state_dir), timeout=0.5).healthy:
            return
        time.sleep(0.5)
    raise SystemExit(f"not healthy again within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=3, help="takeovers measured per run")
    parser.add_argument("--steady-seconds", type=float, default=60)
    args = parser.parse_args()
    results: dict[str, list[float]] = {k: [] for k in ("up", "takeover", "calls", "cpu")}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-mirrored-") as state_dir:
            try:
                results["up"].append(up(state_dir))
                for _ in range(args.kills):
                    results["takeover"].append(takeover(state_dir))
                    wait_healthy(state_dir)
                calls, cpu = steady_state(state_dir, args.steady_seconds)
                results["calls"].append(calls)
                results["cpu"].append(cpu)
            finally:
                cli("sim", "down", "--state-dir", state_dir)
        print(f"run {run + 1}: up={results['up'][-1]:.2f} takeovers="
              + ",".join(f"{t:.2f}" for t in results["takeover"][-args.kills:])
              + f" calls={results['calls'][-1]:.1f} cpu={results['cpu'][-1]:.2f}", flush=True)
    report(results, args.runs, [
        ("sim up --mode mirrored (3+3) -> linked", "up", "s", "none set"),
        (f"mirror takeover after the passive leader dies ({args.kills} a run)", "takeover", "s", "<= 15 s"),
        ("steady state: AWS API calls/min (busiest agent)", "calls", "calls/min", "<= 6"),
        ("steady state: CPU of the busiest agent", "cpu", "% core", "< 1%")])


if __name__ == "__main__":
    main()
