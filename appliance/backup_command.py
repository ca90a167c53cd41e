"""``etcd.py backup``, ``etcd.py snapshots`` and ``etcd.py restore``: the operators' side of the snapshots.

Where things are comes from the agent's settings (``SNAPSHOT_BUCKET``, ``SNAPSHOT_PREFIX``,
``CLUSTER_NAME``, ``DATA_DIR``, ``ETCD_BINARY``, ``ETCD_CREDENTIALS_FILE``, ``CLIENT_*_FILE``), so on an instance the
commands need no flags beyond ``--endpoints``; ``--sim`` takes them from a simulator's state instead.

Exit codes: 0 done; 1 a runtime failure (e.g. the agent did not answer a restore in time);
2 bad input; 12 the snapshot could not be taken or uploaded; 13 the snapshot asked for does not
check (corrupt); 14 the agent refused the restore (e.g. the cluster has a quorum).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import uuid

from appliance.errors import EXIT_FAILURE, EXIT_OK, ConfigError
from appliance.etcd.tls import TlsFiles

EXIT_SNAPSHOT_FAILED = 12
EXIT_CORRUPT = 13
EXIT_REFUSED = 14


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a command works: the cluster's snapshots, its members, and (for restore) one instance."""

    bucket: str | None
    prefix: str
    cluster: str
    endpoints: tuple[str, ...]
    etcd_binary: str
    credentials_file: str | None
    data_dir: str = ""
    instance_id: str = ""
    tls: TlsFiles | None = None  # the CA and client certificate where the members speak HTTPS


def _sim_target(args) -> Target:
    from appliance.sim import state
    from appliance.sim.supervisor import etcd_binary

    current = state.load(args.state_dir)
    if current is None or not state.pid_alive(current.get("supervisor_pid")):
        raise ConfigError(f"--sim: no simulator runs in {os.path.abspath(args.state_dir)}")
    region = args.region or current["region"]
    if region not in current.get("regions", {}):
        raise ConfigError(f"--region {region}: the simulator runs in {', '.join(current.get('regions', {}))}")
    instances = {i: facts for i, facts in current.get("instances", {}).items()
                 if facts.get("private_ip") and facts.get("region") == region}
    instance_id = getattr(args, "instance", None) or ""
    if instance_id and instance_id not in instances:
        raise ConfigError(f"--instance {instance_id}: not a running instance of the simulator in {region}")
    # The commands reach the simulator's AWS as its operator would: directly, not as an instance.
    os.environ.update(AWS_ENDPOINT_URL=current["aws_endpoint"], AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=region)
    os.environ.pop("AWS_SDK_UA_APP_ID", None)
    chosen = instances.get(instance_id, {})
    return Target(current.get("snapshot_bucket"), "", current["regions"][region]["stack"],
                  tuple(state.client_url(current, i["private_ip"]) for i in instances.values()),
                  chosen.get("etcd_binary") or etcd_binary(), current.get("credentials_file"),
                  os.path.join(state.instance_dir(current["state_dir"], instance_id), "data") if instance_id else "",
                  instance_id, state.tls_files(current))


def _env_target(args) -> Target:
    from appliance.config import load_agent_settings
    from appliance.replication.commands import _urls

    settings = load_agent_settings({}, os.environ)
    endpoints = _urls(args.endpoints, "--endpoints") if getattr(args, "endpoints", None) else ()
    return Target(settings.snapshot_bucket, settings.snapshot_prefix, settings.cluster_name, tuple(endpoints),
                  settings.etcd_binary, settings.credentials_file, settings.data_dir, tls=settings.client_tls)


def _target(args) -> Target:
    target = _sim_target(args) if args.sim else _env_target(args)
    if args.bucket:
        target = dataclasses.replace(target, bucket=args.bucket)
    return target


def _store(target: Target):
    from appliance.aws.snapshots import SnapshotStore

    if not target.bucket:
        raise ConfigError("no snapshot bucket: set SNAPSHOT_BUCKET (or --bucket)")
    return SnapshotStore(target.bucket, target.prefix, target.cluster, os.environ.get("AWS_DEFAULT_REGION"))


def cmd_backup(args) -> int:
    """Take one snapshot now, from a follower (else any member that answers), and upload it verified."""
    from appliance.aws.snapshots import StoreError
    from appliance.cluster import backup
    from appliance.cluster.access import credentials_for
    from appliance.etcd import snapshot as snapshots
    from appliance.etcd.client import EtcdClient, EtcdError, EtcdUnavailable

    target = _target(args)
    if not target.endpoints:
        raise ConfigError("backup needs --endpoints (the cluster's client URLs), or --sim")
    store = _store(target)
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
        except (EtcdError, EtcdUnavailable):
            continue
        source = source or endpoint
        if status.leader_id and status.leader_id != status.member_id and not status.is_learner:
            source = endpoint
            break
    if source is None:
        print("etcd.py: error: no member answered: " + ", ".join(target.endpoints))
        return EXIT_SNAPSHOT_FAILED
    work_dir = args.work_dir or os.path.join(os.environ.get("TMPDIR", "/tmp"), "etcd-appliance-backup")
    os.nice(19)  # as the leader's snapshots: hashing and uploading yield to etcd and its clients
    try:
        stored = backup.take(source, store, tools, work_dir, cluster_id, credentials, tls=target.tls)
    except (StoreError, snapshots.SnapshotError, OSError) as exc:
        print(f"etcd.py: error: snapshot failed: {exc}")
        return EXIT_SNAPSHOT_FAILED
    print(f"{stored.uri} (revision {stored.revision}, {stored.size} bytes, verified) from {source}")
    return EXIT_OK


def cmd_snapshots(args) -> int:
    """List the cluster's snapshots, newest first, and its marker."""
    from appliance.aws.snapshots import StoreError

    store = _store(_target(args))
    try:
        found = store.list()
        marker = store.read_marker()
    except StoreError as exc:
        print(f"etcd.py: error: {exc}")
        return EXIT_FAILURE
    if args.json:
        print(json.dumps({"location": store.location, "marker": marker, "snapshots": [
            {"uri": s.uri, "taken_at": s.taken_at.isoformat(), "revision": s.revision, "size": s.size}
            for s in found]}, indent=1))
        return EXIT_OK
    print(f"{store.location}: marker {'present' if marker else 'absent'}"
          + (f" (cluster {marker.get('cluster_id')}, created {marker.get('created_at')})" if marker else ""))
    print(f"{'TAKEN (UTC)':20} {'REVISION':>10} {'SIZE':>12}  URI")
    for s in found:
        print(f"{s.taken_at:%Y-%m-%d %H:%M:%S}  {s.revision:>10} {s.size:>12}  {s.uri}")
    if not found:
        print("(no snapshots)")
    return EXIT_OK


def cmd_restore(args) -> int:
    """Check the snapshot, then ask the instance's agent to restore it (or its own data) as a one-member cluster."""
    from appliance.aws.snapshots import StoreError
    from appliance.cluster import restore
    from appliance.etcd import snapshot as snapshots

    if (args.snapshot is None) == (not args.own_data):
        raise ConfigError("give exactly one of --snapshot s3://…|FILE|latest and --own-data")
    target = _target(args)
    if args.sim and not target.instance_id:
        raise ConfigError("--sim: name the instance whose agent restores with --instance")
    if args.own_data:
        source = "own-data"
        plan = f"restart the member data in {target.data_dir} as a one-member cluster (--force-new-cluster)"
    else:
        source = "" if args.snapshot == "latest" else args.snapshot
        store = _store(target) if target.bucket else None
        try:
            tools = snapshots.tools_for(target.etcd_binary)
            checked, origin = restore.fetch(source, store, tools, restore.spool_dir(target.data_dir))
        except snapshots.SnapshotCorrupt as exc:
            print(f"etcd.py: error: the snapshot does not check: {exc}")
            return EXIT_CORRUPT
        except (snapshots.SnapshotError, StoreError) as exc:
            print(f"etcd.py: error: {exc}")
            return EXIT_FAILURE
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        source = source if source and not source.startswith("s3://") else origin
        plan = (f"restore {origin} (revision {checked.revision}, {checked.size} bytes, checked) into {target.data_dir} "
                "as a one-member cluster; writes after that revision are lost")
    plan += (f"; the old data goes to {target.data_dir}.previous, and the other instances set theirs aside and join. "
             "The agent refuses while any member sees a leader.")
    if args.dry_run:
        print(f"dry run: would {plan}")
        return EXIT_OK
    request_id = uuid.uuid4().hex
    restore.write_request(target.data_dir, source, request_id)
    print(f"asked the agent to {plan}")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        result = restore.read_result(target.data_dir, request_id)
        if result is not None:
            print(("done: " if result["ok"] else "refused: ") + result["message"])
            return EXIT_OK if result["ok"] else EXIT_REFUSED
        time.sleep(0.5)
    print(f"etcd.py: error: the agent did not answer within {args.timeout:.0f} s; the request stays at "
          f"{restore.request_path(target.data_dir)} (delete it to withdraw it)")
    return EXIT_FAILURE


def add_parsers(sub) -> None:
    """Add ``backup``, ``snapshots`` and ``restore`` to the top-level subparsers."""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sim", action="store_true", help="the simulator's cluster (see --state-dir)")
        p.add_argument("--state-dir", default=".sim", help="with --sim: the simulator's state directory")
        p.add_argument("--region", help="with --sim: the region's cluster (default the simulator's first)")
        p.add_argument("--bucket", help="the snapshot bucket (default SNAPSHOT_BUCKET, or the simulator's)")

    backup = sub.add_parser("backup", help="take a snapshot of the cluster now and upload it to S3, verified")
    common(backup)
    backup.add_argument("--endpoints", help="client URLs of the cluster, comma-separated (not with --sim)")
    backup.add_argument("--timeout", type=float, default=10.0, help="seconds per etcd request (default 10)")
    backup.add_argument("--work-dir", help="where the snapshot is spooled before the upload (default $TMPDIR)")
    backup.set_defaults(handler=cmd_backup)

    listing = sub.add_parser("snapshots", help="list the cluster's snapshots in S3, newest first, and its marker")
    common(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_snapshots)

    restore = sub.add_parser("restore", help="restore a snapshot (or this member's data) as a one-member cluster, "
                             "through the instance's agent")
    common(restore)
    restore.add_argument("--snapshot", help="s3://bucket/key, a snapshot file, or latest (the newest that checks)")
    restore.add_argument("--own-data", action="store_true",
                         help="restart this instance's member data as a one-member cluster (after a quorum loss)")
    restore.add_argument("--instance", help="with --sim: the instance whose agent restores")
    restore.add_argument("--dry-run", action="store_true", help="check the snapshot and say what would happen")
    restore.add_argument("--timeout", type=float, default=300.0,
                         help="seconds to wait for the agent's answer (default 300)")
    restore.set_defaults(handler=cmd_restore)
