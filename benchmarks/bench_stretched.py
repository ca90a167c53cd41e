#!/usr/bin/env python3
"""Speed of one cluster stretched across three regions of the simulator (2 + 2 + 1 instances), as medians.

Figures (targets from the multiregion issue, and the single-region agent's for the rest):
  * ``sim up --regions eu-central-1,eu-west-1,eu-north-1 --instances 2,2,1`` to a healthy
    5-member cluster (target <= 40 s);
  * terminating one instance to 5 healthy voting members again, its member removed (<= 30 s);
  * steady state: AWS API calls a minute of the busiest agent (the leader lists three regions and
    reads three security groups) and its CPU use.

Usage: python benchmarks/bench_stretched.py [--runs 3] [--steady-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

from bench_sim import cli, heal_after_termination, steady_state  # noqa: E402

REGIONS = "eu-central-1,eu-west-1,eu-north-1"


def up(state_dir: str) -> float:
    out = cli("sim", "up", "--detach", "--regions", REGIONS, "--instances", "2,2,1", "--timeout", "180",
              "--state-dir", state_dir)
    return float(re.search(r"healthy \d+-member cluster after ([\d.]+) s", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady-seconds", type=float, default=60)
    args = parser.parse_args()
    results: dict[str, list[float]] = {k: [] for k in ("up", "heal", "calls", "cpu")}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-stretched-") as state_dir:
            try:
                results["up"].append(up(state_dir))
                results["heal"].append(heal_after_termination(state_dir))
                calls, cpu = steady_state(state_dir, args.steady_seconds)
                results["calls"].append(calls)
                results["cpu"].append(cpu)
            finally:
                cli("sim", "down", "--state-dir", state_dir)
        print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.2f}" for k, v in results.items()), flush=True)

    def line(label: str, key: str, unit: str, target: str) -> None:
        values = results[key]
        print(f"{label:<52} median {statistics.median(values):6.2f} {unit:<9} "
              f"(min {min(values):.2f}, max {max(values):.2f}; target {target})")

    print(f"\nmedians of {args.runs} runs on {os.cpu_count()} cores")
    line("sim up (3 regions, 2+2+1) -> healthy 5-member cluster", "up", "s", "<= 40 s")
    line("terminate one -> 5 healthy voting members", "heal", "s", "<= 30 s")
    line("steady state: AWS API calls/min (busiest agent)", "calls", "calls/min", "none set")
    line("steady state: CPU of the busiest agent", "cpu", "% core", "< 1%")


if __name__ == "__main__":
    main()
