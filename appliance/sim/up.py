"""``sim up``: start the local AWS and a stack in the background, wait for a healthy cluster, print it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.sim import aws, state, view
from appliance.sim.cfn_signals import SIGNALS_FILE
from appliance.sim.instances import down
from appliance.sim.lifecycle_hooks import OUTCOMES_FILE, PENDING_FILE

ENTRY_POINT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "etcd.py"))


def agent_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--agent-env: expected NAME=VALUE (got {pair!r})")
        env[name] = value
    return env


def etcd_bin(path: str | None, flag: str = "--etcd-bin") -> str | None:
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


def hook_timeout(seconds: float) -> int:
    """The termination hook's HeartbeatTimeout from ``--hook-timeout``.

    Raises:
        ConfigError: not a whole number of seconds from 30 to 7200 (AWS's bounds: Auto Scaling API
            reference, PutLifecycleHook, HeartbeatTimeout).
    """
    if seconds != int(seconds) or not 30 <= seconds <= 7200:
        raise ConfigError(f"--hook-timeout: must be 30 to 7200 seconds, as AWS allows (got {seconds:g})")
    return int(seconds)


def cmd_supervise(args) -> int:
    """Hidden: the long-running supervisor that ``sim up`` starts in the background."""
    from appliance.sim.supervisor import Supervisor

    regions, counts = shape(args.regions, args.instances, bool(args.mirror_prefix))
    return Supervisor(args.state_dir, counts, args.grace_period, agent_env=agent_env(args.agent_env),
                      regions=regions, mirror_prefix=args.mirror_prefix,
                      public_addresses=args.public_addresses, tls=args.tls,
                      hook_timeout=hook_timeout(args.hook_timeout)).run()


def cmd_up(args) -> int:
    """``sim up``: start the supervisor, wait for a healthy cluster, print it; exit 1 on timeout."""
    mirrored = args.mode == "mirrored"
    regions, counts = shape(args.regions, args.instances, mirrored)
    if mirrored:
        from appliance.commands.settings import parse_mirror_prefix
        try:
            parse_mirror_prefix(args.prefix)
        except ValueError as exc:
            raise ConfigError(f"--prefix: {exc} (got {args.prefix!r})") from None
    if args.public_addresses and (mirrored or len(regions) < 2):
        raise ConfigError("--public-addresses: for a cluster stretched across two regions or more")
    agent_env(args.agent_env)
    hook_timeout(args.hook_timeout)
    binary = etcd_bin(args.etcd_bin)
    state_dir = os.path.abspath(args.state_dir)
    current = state.load(state_dir)
    if current and state.pid_alive(current.get("supervisor_pid")):
        raise ConfigError(f"a simulator already runs in {state_dir}; stop it with: etcd.py sim down")
    # A new run starts clean; the old run's logs (sim.log, moto.log) are appended to.
    shutil.rmtree(os.path.join(state_dir, "instances"), ignore_errors=True)
    shutil.rmtree(os.path.join(state_dir, state.TLS_DIR), ignore_errors=True)  # a new CA for a new run
    for stale in (state.STATE_FILE, state.LAUNCH_FILE, state.REQUEST_FILE, state.CREDENTIALS_FILE, "faults.json",
                  "aws-calls.log", PENDING_FILE, OUTCOMES_FILE, SIGNALS_FILE):
        if os.path.exists(os.path.join(state_dir, stale)):
            os.remove(os.path.join(state_dir, stale))
    os.makedirs(state_dir, exist_ok=True)
    if mirrored:
        from appliance.adapters.credentials import create_credentials
        create_credentials(state.credentials_file(state_dir))  # on AWS it comes with the instance
    if binary:
        state.save_launch(state_dir, {"etcd_binary": binary})
    started = time.monotonic()
    command = [sys.executable, ENTRY_POINT, "sim", "supervise", "--state-dir", state_dir,
               "--instances", ",".join(map(str, counts)), "--regions", ",".join(regions),
               "--grace-period", str(args.grace_period), "--hook-timeout", str(args.hook_timeout)]
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
            return ExitCode.FAILURE
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
        down(state_dir)
        return ExitCode.FAILURE
    current = state.load(state_dir)
    if mirrored:
        problem = _link_clusters(current, deadline)
        if problem:
            print(f"etcd.py: error: {problem}; stopping the simulator", file=sys.stderr)
            down(state_dir)
            return ExitCode.FAILURE
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
        return ExitCode.OK
    print("\nCtrl-C stops the simulator and everything it started.", flush=True)
    try:
        while supervisor.poll() is None:
            time.sleep(1)
        print("etcd.py: error: the simulator stopped by itself; see its log", file=sys.stderr)
        return ExitCode.FAILURE
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        down(state_dir)
        return ExitCode.OK


def _link_clusters(current: dict, deadline: float) -> str | None:
    """Mirrored: set the modes (the first region active) and wait for the inbound mirror; None when
    done, else the problem."""
    from appliance.adapters.etcd.errors import EtcdFailure
    from appliance.sim import mirrored

    try:
        for region, done in mirrored.set_modes(current).items():
            print(f"  {region}: {done}", flush=True)
    except EtcdFailure as exc:
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
