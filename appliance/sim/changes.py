"""``sim update``, ``sim scale`` and ``sim add-region``: stack changes the supervisor carries out, as an
operator's CloudFormation updates do."""

from __future__ import annotations

import sys
import time

from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.sim import aws, state, view
from appliance.sim.instances import running_state
from appliance.sim.up import region_names


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
    current = running_state(args.state_dir)
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
        return ExitCode.FAILURE
    return ExitCode.OK


def cmd_scale(args) -> int:
    """``sim scale [--region R] N``: set one region's group to N instances, as a stack update of its
    InstanceCount does on AWS (in place: moto's stack update would replace the whole group)."""
    current = running_state(args.state_dir)
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
        return ExitCode.FAILURE
    return ExitCode.OK


def cmd_add_region(args) -> int:
    """``sim add-region R [--instances N]``: deploy the stack in one more active region and wait until
    its instances are healthy members of the cluster."""
    current = running_state(args.state_dir)
    if args.instances not in (1, 2, 3):
        raise ConfigError(f"--instances: must be 1, 2 or 3, the multiregion template's InstanceCount "
                          f"(got {args.instances})")
    try:
        _request(current, "add-region", args.timeout, region=args.region, instances=args.instances)
    except RuntimeError as exc:
        print(f"etcd.py: error: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    return ExitCode.OK
