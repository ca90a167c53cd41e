"""``etcd.py snapshots``: list the cluster's snapshots in S3, newest first, and its marker.

Exit codes: 0 listed; 1 S3 did not answer; 2 bad input.
"""

from __future__ import annotations

import argparse
import json

from appliance.commands import settings, targets, values
from appliance.model.exit_codes import ExitCode


def add_parser(sub) -> None:
    """Add ``snapshots`` to the top-level subparsers."""
    listing = sub.add_parser("snapshots", help="list the cluster's snapshots in S3, newest first, and its marker")
    targets.add_sim_flags(listing)
    listing.add_argument("--bucket", type=values.flag(settings.BUCKET),
                         help="the snapshot bucket (default SNAPSHOT_BUCKET, or the simulator's)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_snapshots)


def cmd_snapshots(args: argparse.Namespace) -> int:
    """List the cluster's snapshots, newest first, and its marker."""
    from appliance.adapters.aws.s3 import StoreError

    store = targets.store(targets.resolve(args))
    try:
        found = store.list()
        marker = store.read_marker()
    except StoreError as exc:
        print(f"etcd.py: error: {exc}")
        return ExitCode.FAILURE
    if args.json:
        print(json.dumps({"location": store.location, "marker": marker, "snapshots": [
            {"uri": s.uri, "taken_at": s.taken_at.isoformat(), "revision": s.revision, "size": s.size}
            for s in found]}, indent=1))
        return ExitCode.OK
    print(f"{store.location}: marker {'present' if marker else 'absent'}"
          + (f" (cluster {marker.get('cluster_id')}, created {marker.get('created_at')})" if marker else ""))
    print(f"{'TAKEN (UTC)':20} {'REVISION':>10} {'SIZE':>12}  URI")
    for s in found:
        print(f"{s.taken_at:%Y-%m-%d %H:%M:%S}  {s.revision:>10} {s.size:>12}  {s.uri}")
    if not found:
        print("(no snapshots)")
    return ExitCode.OK
