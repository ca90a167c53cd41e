"""``etcd.py backup``: take a snapshot of the cluster now, from a follower, and upload it to S3, verified.

Exit codes: 0 done; 2 bad input; 12 no snapshot was taken or uploaded.
"""

from __future__ import annotations

import argparse
import os

from appliance.commands import settings, targets, values
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode


def add_parser(sub) -> None:
    """Add ``backup`` to the top-level subparsers."""
    backup = sub.add_parser("backup", help="take a snapshot of the cluster now and upload it to S3, verified")
    targets.add_sim_flags(backup)
    backup.add_argument("--bucket", type=values.flag(settings.BUCKET),
                        help="the snapshot bucket (default SNAPSHOT_BUCKET, or the simulator's)")
    backup.add_argument("--endpoints", help="client URLs of the cluster, comma-separated (not with --sim)")
    backup.add_argument("--timeout", type=values.flag(values.REQUEST_SECONDS), default=10.0,
                        help="seconds per etcd request (default 10)")
    backup.add_argument("--work-dir", help="where the snapshot is spooled before the upload (default $TMPDIR)")
    backup.set_defaults(handler=cmd_backup)


def cmd_backup(args: argparse.Namespace) -> int:
    """Take one snapshot now, from a follower (else any member that answers), and upload it verified."""
    from appliance.adapters.aws.s3 import StoreError
    from appliance.adapters.credentials import credentials_for
    from appliance.adapters.etcd import snapshot as snapshots
    from appliance.adapters.etcd.client import EtcdClient
    from appliance.adapters.etcd.errors import EtcdFailure
    from appliance.backup.take import take

    target = targets.resolve(args)
    if not target.endpoints:
        raise ConfigError("backup needs --endpoints (the cluster's client URLs), or --sim")
    store = targets.store(target)
    try:
        tools = snapshots.tools_for(target.etcd_binary)
    except snapshots.SnapshotError as exc:
        raise ConfigError(str(exc)) from None
    credentials = credentials_for(target.credentials_file, "appliance") if target.credentials_file else None
    client = EtcdClient(list(target.endpoints), timeout=args.timeout, credentials=credentials, tls=target.tls)
    source, cluster_id = None, 0
    for endpoint in target.endpoints:  # a follower with a leader, as the agent does; else whoever answers
        try:
            status = client.status(endpoint)
            cluster_id = client.member_list(endpoint).cluster_id
        except EtcdFailure:
            continue
        source = source or endpoint
        if status.leader_id and status.leader_id != status.member_id and not status.is_learner:
            source = endpoint
            break
    if source is None:
        print("etcd.py: error: no member answered: " + ", ".join(target.endpoints))
        return ExitCode.BACKUP_FAILED
    work_dir = args.work_dir or os.path.join(os.environ.get("TMPDIR", "/tmp"), "etcd-appliance-backup")
    os.nice(19)  # as the leader's snapshots: hashing and uploading yield to etcd and its clients
    try:
        stored = take(source, store, tools, work_dir, cluster_id, credentials, tls=target.tls)
    except (StoreError, snapshots.SnapshotError, OSError) as exc:
        print(f"etcd.py: error: snapshot failed: {exc}")
        return ExitCode.BACKUP_FAILED
    print(f"{stored.uri} (revision {stored.revision}, {stored.size} bytes, verified) from {source}")
    return ExitCode.OK
