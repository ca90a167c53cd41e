"""``etcd.py restore``: restore a snapshot (or this member's data) as a one-member cluster, through the
instance's agent, which refuses while any member sees a leader.

Exit codes: 0 done; 1 a runtime failure (e.g. the agent did not answer in time); 2 bad input;
13 the snapshot asked for does not check (corrupt); 14 the agent refused.
"""

from __future__ import annotations

import argparse
import time
import uuid

from appliance.commands import settings, targets, values
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode


def add_parser(sub) -> None:
    """Add ``restore`` to the top-level subparsers."""
    restore = sub.add_parser("restore", help="restore a snapshot (or this member's data) as a one-member cluster, "
                             "through the instance's agent")
    targets.add_sim_flags(restore)
    restore.add_argument("--bucket", type=values.flag(settings.BUCKET),
                         help="the snapshot bucket (default SNAPSHOT_BUCKET, or the simulator's)")
    restore.add_argument("--snapshot", help="s3://bucket/key, a snapshot file, or latest (the newest that checks)")
    restore.add_argument("--own-data", action="store_true",
                         help="restart this instance's member data as a one-member cluster (after a quorum loss)")
    restore.add_argument("--instance", help="with --sim: the instance whose agent restores")
    restore.add_argument("--dry-run", action="store_true", help="check the snapshot and say what would happen")
    restore.add_argument("--timeout", type=values.flag(values.seconds(1, 86400)), default=300.0,
                         help="seconds to wait for the agent's answer (default 300)")
    restore.set_defaults(handler=cmd_restore)


def cmd_restore(args: argparse.Namespace) -> int:
    """Check the snapshot, then ask the instance's agent to restore it (or its own data) as a one-member cluster."""
    from appliance.adapters.aws.s3 import StoreError
    from appliance.adapters.etcd import restore_requests
    from appliance.adapters.etcd import snapshot as snapshots
    from appliance.backup import restore

    if (args.snapshot is None) == (not args.own_data):
        raise ConfigError("give exactly one of --snapshot s3://…|FILE|latest and --own-data")
    target = targets.resolve(args)
    if args.sim and not target.instance_id:
        raise ConfigError("--sim: name the instance whose agent restores with --instance")
    if args.own_data:
        source = "own-data"
        plan = f"restart the member data in {target.data_dir} as a one-member cluster (--force-new-cluster)"
    else:
        source = "" if args.snapshot == "latest" else args.snapshot
        store = targets.store(target) if target.bucket else None
        try:
            tools = snapshots.tools_for(target.etcd_binary)
            checked, origin = restore.fetch(source, store, tools, restore_requests.spool_dir(target.data_dir))
        except snapshots.SnapshotCorrupt as exc:
            print(f"etcd.py: error: the snapshot does not check: {exc}")
            return ExitCode.SNAPSHOT_CORRUPT
        except (snapshots.SnapshotError, StoreError) as exc:
            print(f"etcd.py: error: {exc}")
            return ExitCode.FAILURE
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        source = source if source and not source.startswith("s3://") else origin
        plan = (f"restore {origin} (revision {checked.revision}, {checked.size} bytes, checked) into {target.data_dir} "
                "as a one-member cluster; writes after that revision are lost")
    plan += (f"; the old data goes to {target.data_dir}.previous, and the other instances set theirs aside and join. "
             "The agent refuses while any member sees a leader.")
    if args.dry_run:
        print(f"dry run: would {plan}")
        return ExitCode.OK
    request_id = uuid.uuid4().hex
    restore_requests.write_request(target.data_dir, source, request_id)
    print(f"asked the agent to {plan}")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        result = restore_requests.read_result(target.data_dir, request_id)
        if result is not None:
            print(("done: " if result["ok"] else "refused: ") + result["message"])
            return ExitCode.OK if result["ok"] else ExitCode.RESTORE_REFUSED
        time.sleep(0.5)
    print(f"etcd.py: error: the agent did not answer within {args.timeout:.0f} s; the request stays at "
          f"{restore_requests.request_path(target.data_dir)} (delete it to withdraw it)")
    return ExitCode.FAILURE
