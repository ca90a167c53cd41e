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
import sys

sys.path.insert(0, os.path.dirname(__file__))

from bench_sim import cli, measure, report  # noqa: E402

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
        measure(up, args.steady_seconds, results, prefix="bench-stretched-")
        print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.2f}" for k, v in results.items()), flush=True)
    report(results, args.runs, [
        ("sim up (3 regions, 2+2+1) -> healthy 5-member cluster", "up", "s", "<= 40 s"),
        ("terminate one -> 5 healthy voting members", "heal", "s", "<= 30 s"),
        ("steady state: AWS API calls/min (busiest agent)", "calls", "calls/min", "none set"),
        ("steady state: CPU of the busiest agent", "cpu", "% core", "< 1%")])


if __name__ == "__main__":
    main()
