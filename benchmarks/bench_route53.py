#!/usr/bin/env python3
"""Route53 calls of the leader's record keeping, in the local AWS, as medians over several windows.

Figures (targets from the records/upgrade issue):
  * ChangeResourceRecordSets requests per leader housekeeping cycle while nothing changes (target 0),
    and every Route53 call a minute in that state (the zone is re-read every 300 s to repair hand edits);
  * change batches per change of the published members: a replacement changes them twice (the old
    member leaves, the new one is promoted), so the target is at most 2 batches per replacement.

Usage: python benchmarks/bench_route53.py [--runs 3] [--quiet-seconds 60]
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

from appliance.sim import aws, state, view  # noqa: E402

ENTRY = os.path.join(os.path.dirname(__file__), "..", "etcd.py")
LEADER_CYCLE = 5.0  # seconds: the agents' default LOOP_INTERVAL


def cli(*args: str, timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, ENTRY, *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"etcd.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def route53_calls(state_dir: str, since: float, until: float) -> list[str]:
    with open(os.path.join(state_dir, "aws-calls.log")) as f:
        rows = [line.split() for line in f]
    return [r[2] for r in rows if r[2].startswith("route53:") and since <= float(r[0]) <= until]


def published(state_dir: str) -> frozenset[str]:
    current = state.load(state_dir)
    zone = aws.clients(current["aws_endpoint"], current["region"])["route53"].list_resource_record_sets(
        HostedZoneId=current["hosted_zone_id"])
    return frozenset(v["Value"] for r in zone["ResourceRecordSets"] if r["Type"] == "SRV"
                     for v in r["ResourceRecords"])


def settle(state_dir: str, timeout: float = 120) -> None:
    """Wait for a healthy cluster whose SRV records name exactly its instances, then for INSYNC."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = view.observe(state.load(state_dir))
        names = {i["id"] for i in report.instances}
        srv = published(state_dir)
        if report.healthy and srv and {v.split()[3].split(".")[0] for v in srv} == names:
            time.sleep(2 * LEADER_CYCLE)
            return
        time.sleep(0.5)
    raise SystemExit("records did not settle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quiet-seconds", type=float, default=60)
    args = parser.parse_args()
    quiet_changes, quiet_calls, batches = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-route53-") as state_dir:
        try:
            cli("sim", "up", "--detach", "--state-dir", state_dir)
            for run in range(args.runs):
                settle(state_dir)
                since = time.time()
                time.sleep(args.quiet_seconds)
                calls = route53_calls(state_dir, since, time.time())
                quiet_changes.append(calls.count("route53:ChangeResourceRecordSets")
                                     / (args.quiet_seconds / LEADER_CYCLE))
                quiet_calls.append(len(calls) * 60 / args.quiet_seconds)
                current = state.load(state_dir)
                victim = next(i for i in view.observe(current).instances if i["member"] and not i["leader"])
                since = time.time()
                cli("sim", "terminate", "--state-dir", state_dir, victim["id"])
                settle(state_dir)
                batches.append(route53_calls(state_dir, since, time.time()).count(
                    "route53:ChangeResourceRecordSets"))
                print(f"run {run + 1}: quiet change requests/cycle={quiet_changes[-1]:.2f}, "
                      f"quiet Route53 calls/min={quiet_calls[-1]:.1f}, batches for one replacement={batches[-1]}",
                      flush=True)
        finally:
            subprocess.run([sys.executable, ENTRY, "sim", "down", "--state-dir", state_dir], capture_output=True,
                           timeout=120)
    print(f"\nmedians of {args.runs} runs on {os.cpu_count()} cores")
    print(f"ChangeResourceRecordSets per leader cycle, nothing changing   median {statistics.median(quiet_changes):.2f}"
          f" (max {max(quiet_changes):.2f}; target 0)")
    print(f"Route53 calls a minute, nothing changing                      median {statistics.median(quiet_calls):.1f}"
          f" (max {max(quiet_calls):.1f})")
    print(f"change batches for one replacement (2 changes of the members) median {statistics.median(batches):.0f}"
          f" (max {max(batches)}; target <= 2)")


if __name__ == "__main__":
    main()
