"""``--sim`` for ``status``, ``backup``, ``snapshots`` and ``restore``: the simulator's cluster as their target."""

from __future__ import annotations

import argparse
import os

from appliance.commands.targets import Target
from appliance.model.errors import ConfigError
from appliance.sim import state
from appliance.sim.supervisor import etcd_binary


def target(args: argparse.Namespace, whole_cluster: bool = False) -> Target:
    """The simulator in ``args.state_dir`` as a target: the instances of ``args.region`` (default its first
    region) as endpoints, or with ``whole_cluster`` (``status``) every instance of a cluster stretched across
    regions (a mirrored simulator runs a cluster per region: still the one region's); ``args.instance``
    (``restore``) names one of those instances. Points the AWS SDK of this process at the simulator's AWS.

    Raises:
        ConfigError: no simulator runs there, it has no such region or instance, or no instance has an address.
    """
    current = state.load(args.state_dir)
    if current is None or not state.pid_alive(current.get("supervisor_pid")):
        raise ConfigError(f"--sim: no simulator runs in {os.path.abspath(args.state_dir)}")
    regions = current.get("regions", {})
    home = args.region or current["region"]
    if home not in regions:
        raise ConfigError(f"--region {home}: the simulator runs in {', '.join(regions)}")
    stretched = current.get("mode") != "mirrored"
    region = None if whole_cluster and stretched and not args.region else home
    instances = {i: facts for i, facts in current.get("instances", {}).items()
                 if facts.get("private_ip") and region in (None, facts.get("region"))}
    if not instances:
        raise ConfigError(f"--sim: no running simulator with instances in {args.state_dir}")
    instance_id = getattr(args, "instance", None) or ""
    if instance_id and instance_id not in instances:
        raise ConfigError(f"--instance {instance_id}: not a running instance of the simulator in {home}")
    # The commands reach the simulator's AWS as its operator would: directly, not as an instance.
    os.environ.update(AWS_ENDPOINT_URL=current["aws_endpoint"], AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=home)
    os.environ.pop("AWS_SDK_UA_APP_ID", None)
    chosen = instances.get(instance_id, {})
    return Target(current.get("snapshot_bucket"), "", regions[home]["stack"],
                  tuple(state.client_url(current, i["private_ip"]) for i in instances.values()),
                  chosen.get("etcd_binary") or etcd_binary(), current.get("credentials_file"),
                  os.path.join(state.instance_dir(current["state_dir"], instance_id), "data") if instance_id else "",
                  instance_id, state.tls_files(current))
