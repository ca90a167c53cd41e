"""Where ``status``, ``backup``, ``snapshots`` and ``restore`` work: a cluster's members, its snapshots, an instance.

On an instance, the agent's own settings say it (``SNAPSHOT_BUCKET``, ``SNAPSHOT_PREFIX``,
``CLUSTER_NAME``, ``DATA_DIR``, ``APPLIANCE_ETCD_BINARY``, ``APPLIANCE_CREDENTIALS_FILE``, ``CLIENT_*_FILE``;
the old names ``ETCD_BINARY`` and ``ETCD_CREDENTIALS_FILE`` still work, with a warning), so the
commands need no flags beyond ``--endpoints``. With ``--sim`` a simulator's state says it instead:
the simulator is not imported here (an image need not carry it); :mod:`appliance.cli` hands its
resolver in as the parsed arguments' ``sim_target``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Callable

from appliance.commands import flags
from appliance.model.errors import ConfigError
from appliance.model.tls import TlsFiles


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


SimTarget = Callable[..., Target]
"""The simulator's resolver: (the parsed arguments: ``--state-dir``, ``--region``, ``--instance``; and
``whole_cluster``: every region's instances of a stretched cluster) -> a :class:`Target`; it points the AWS
SDK at the simulator's AWS as a side effect. Raises ConfigError."""


def add_sim_flags(p: argparse.ArgumentParser, exclusive=None,
                  region_help: str = "with --sim: the region's cluster (default the simulator's first)") -> None:
    """``--sim``, ``--state-dir`` and ``--region``: work on a simulator's cluster. ``exclusive``: a
    mutually exclusive group of ``p`` that ``--sim`` joins (``status``: --endpoints or --sim)."""
    (exclusive or p).add_argument("--sim", action="store_true", help="the simulator's cluster (see --state-dir)")
    p.add_argument("--state-dir", default=".sim", help="with --sim: the simulator's state directory")
    p.add_argument("--region", help=region_help)


def sim(args: argparse.Namespace, whole_cluster: bool = False) -> Target:
    """The simulator's target for ``args`` (``whole_cluster``: see :data:`SimTarget`).

    Raises:
        ConfigError: no simulator is part of this installation, or it refused ``args``.
    """
    resolver: SimTarget | None = getattr(args, "sim_target", None)
    if resolver is None:
        raise ConfigError("--sim: this installation has no simulator (appliance/sim)")
    return resolver(args, whole_cluster=whole_cluster)


def from_environment(args: argparse.Namespace) -> Target:
    """The target an instance's own settings give (``--endpoints`` for the members).

    Raises:
        ConfigError: a setting or ``--endpoints`` is malformed.
    """
    from appliance.commands.settings import load_agent_settings, log_notices

    settings = load_agent_settings({}, os.environ)
    log_notices(settings)
    endpoints = flags.urls(args.endpoints, "--endpoints") if getattr(args, "endpoints", None) else ()
    return Target(settings.snapshot_bucket, settings.snapshot_prefix, settings.cluster_name, tuple(endpoints),
                  settings.etcd_binary, settings.credentials_file, settings.data_dir, tls=settings.client_tls)


def resolve(args: argparse.Namespace) -> Target:
    """The simulator's target with ``--sim``, else the instance's; ``--bucket`` replaces the bucket."""
    target = sim(args) if args.sim else from_environment(args)
    if getattr(args, "bucket", None):
        target = dataclasses.replace(target, bucket=args.bucket)
    return target


def store(target: Target):
    """The target's :class:`~appliance.adapters.aws.s3.SnapshotStore`.

    Raises:
        ConfigError: no bucket is set.
    """
    from appliance.adapters.aws.s3 import SnapshotStore

    if not target.bucket:
        raise ConfigError("no snapshot bucket: set SNAPSHOT_BUCKET (or --bucket)")
    return SnapshotStore(target.bucket, target.prefix, target.cluster, os.environ.get("AWS_DEFAULT_REGION"))
