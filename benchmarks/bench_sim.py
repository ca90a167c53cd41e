#!/usr/bin/env python3
"""Speed of the appliance in the local AWS, printed as medians over several runs.

Figures (targets from the agent issue):
  * ``sim up`` to a healthy 3-member cluster (target <= 20 s) and 5-member cluster (<= 30 s);
  * terminating one instance to 3 healthy voting members again, replacement promoted and the
    old member removed (target <= 30 s with the simulator's 5 s grace period);
  * steady state per agent: AWS API calls a minute (target <= 6) and CPU use (target < 1% of a core).

With ``--tls`` every simulator runs TLS everywhere (``sim up --tls``): the same figures with
certificates on every connection.

Usage: python benchmarks/bench_sim.py [--runs 3] [--steady-seconds 60] [--tls]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from appliance.sim import aws, state, view  # noqa: E402

ENTRY = os.path.join(os.path.dirname(__file__), "..", "etcd.py")
TICKS = os.sysconf("SC_CLK_TCK")


def cli(*args: str, timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, ENTRY, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"etcd.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


TLS: list[str] = []  # ["--tls"] with --tls


def up(state_dir: str, instances: int) -> float:
    out = cli("sim", "up", "--detach", "--instances", str(instances), "--state-dir", state_dir, *TLS)
    return float(re.search(r"healthy \d+-member cluster after ([\d.]+) s", out).group(1))


def heal_after_termination(state_dir: str) -> float:
    current = state.load(state_dir)
    report = view.observe(current)
    victim = next(i for i in report.instances if i["member"] and not i["leader"])
    ec2 = aws.clients(current["aws_endpoint"], victim["region"])["ec2"]
    started = time.monotonic()
    ec2.terminate_instances(InstanceIds=[victim["id"]])
    deadline = started + 120
    while time.monotonic() < deadline:
        report = view.observe(state.load(state_dir), timeout=0.5)
        if report.healthy and victim["id"] not in {i["id"] for i in report.instances}:
            return time.monotonic() - started
        time.sleep(0.25)
    raise SystemExit(f"not healed within 120 s: {report.reason}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def steady_state(state_dir: str, seconds: float) -> tuple[float, float]:
    """Max AWS calls a minute and max CPU % of one agent (not etcd) over ``seconds``."""
    time.sleep(15)  # let the last change settle into the calm cadence
    current = state.load(state_dir)
    pids = {i: v["agent_pid"] for i, v in current["instances"].items() if v["agent_pid"]}
    cpu_before = {i: cpu_seconds(p) for i, p in pids.items()}
    started = time.time()
    time.sleep(seconds)
    ended = time.time()
    cpu = {i: 100 * (cpu_seconds(p) - cpu_before[i]) / seconds for i, p in pids.items()}
    calls = {i: 0 for i in pids}
    with open(os.path.join(state_dir, "aws-calls.log")) as f:
        for line in f:
            stamp, caller, _ = line.split(" ", 2)
            if caller in calls and started <= float(stamp) <= ended:
                calls[caller] += 1
    return max(calls.values()) * 60 / seconds, max(cpu.values())


def measure(up_fn, steady_seconds: float, results: dict[str, list[float]], prefix: str = "bench-sim-") -> None:
    """One run in a fresh simulator: ``up_fn(state_dir)`` (seconds to healthy), then a termination
    healed, then the steady state; appends to results["up"], ["heal"], ["calls"] and ["cpu"]."""
    with tempfile.TemporaryDirectory(prefix=prefix) as state_dir:
        try:
            results["up"].append(up_fn(state_dir))
            results["heal"].append(heal_after_termination(state_dir))
            calls, cpu = steady_state(state_dir, steady_seconds)
            results["calls"].append(calls)
            results["cpu"].append(cpu)
        finally:
            cli("sim", "down", "--state-dir", state_dir)


def report(results: dict[str, list[float]], runs: int, rows: list[tuple[str, str, str, str]]) -> None:
    """Print each row (label, results key, unit, target) as median, min and max."""
    print(f"\nmedians of {runs} runs on {os.cpu_count()} cores{', TLS everywhere' if TLS else ''}")
    for label, key, unit, target in rows:
        values = results[key]
        print(f"{label:<52} median {statistics.median(values):6.2f} {unit:<9} "
              f"(min {min(values):.2f}, max {max(values):.2f}; target {target})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--tls", action="store_true", help="sim up --tls: TLS everywhere")
    args = parser.parse_args()
    TLS[:] = ["--tls"] if args.tls else []
    results: dict[str, list[float]] = {k: [] for k in ("up", "heal", "calls", "cpu", "up5")}
    for run in range(args.runs):
        measure(lambda state_dir: up(state_dir, 3), args.steady_seconds, results)
        with tempfile.TemporaryDirectory(prefix="bench-sim-") as state_dir:
            try:
                results["up5"].append(up(state_dir, 5))
            finally:
                cli("sim", "down", "--state-dir", state_dir)
        print(f"run {run + 1}: " + ", ".join(f"{k}={v[-1]:.2f}" for k, v in results.items()), flush=True)
    report(results, args.runs, [
        ("sim up -> healthy 3-member cluster", "up", "s", "<= 20 s"),
        ("sim up -> healthy 5-member cluster", "up5", "s", "<= 30 s"),
        ("terminate one -> 3 healthy voting members", "heal", "s", "<= 30 s"),
        ("steady state: AWS API calls/min (busiest agent)", "calls", "calls/min", "<= 6"),
        ("steady state: CPU of the busiest agent", "cpu", "% core", "< 1%")])


if __name__ == "__main__":
    main()
