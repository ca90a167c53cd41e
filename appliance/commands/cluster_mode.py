"""``etcd.py cluster-mode``: show or set a cluster's mode (active: clients read and write the prefix;
passive: they only read it). Exit codes: 0 done, 1 etcd failed, 2 bad input."""

from __future__ import annotations

import argparse
import os

from appliance.adapters import credentials as credentials_file
from appliance.adapters.etcd.auth import admin_client, authentication_on, read_mode
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.commands import flags, values
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.model.modes import USERS, Mode
from appliance.replication.modes import set_mode
from appliance.rules.modes import mode_of


def add_parser(sub) -> None:
    """Add ``cluster-mode`` to the top-level subparsers."""
    mode = sub.add_parser("cluster-mode", help="show or set a cluster's mode: active (clients read and write the "
                          "prefix) or passive (clients only read it)")
    mode.add_argument("--endpoints", required=True, help="the cluster's client URLs, comma-separated")
    mode.add_argument("--credentials", required=True,
                      help="credentials file (JSON user -> password, mode 0600); created if missing")
    mode.add_argument("--prefix", required=True, help="the clients' prefix, e.g. /config/")
    mode.add_argument("--timeout", type=values.flag(values.REQUEST_SECONDS), default=5.0,
                      help="seconds per etcd request (default 5)")
    flags.add_tls_flags(mode)
    mode.add_argument("mode", nargs="?", choices=("active", "passive"), help="the mode to set (none: show it)")
    mode.set_defaults(handler=cmd_cluster_mode)


def cmd_cluster_mode(args: argparse.Namespace) -> int:
    """Print the mode (and what was changed)."""
    endpoints = flags.urls(args.endpoints, "--endpoints")
    prefix = flags.client_prefix(args.prefix, "--prefix")
    files = flags.tls_from(args)
    if args.mode and not os.path.exists(args.credentials):
        credentials = credentials_file.create_credentials(args.credentials)
        print(f"created the credentials file {args.credentials} (mode 0600): keep it secret, give it to both regions")
    else:
        credentials = credentials_file.load_credentials(args.credentials)
    missing = sorted(set(USERS) - set(credentials))
    if missing:
        raise ConfigError(f"--credentials {args.credentials}: no password for {', '.join(missing)}")
    try:
        if args.mode:
            done, _ = set_mode(endpoints, credentials, Mode(args.mode), prefix, args.timeout, files)
            print("; ".join(done))
        client = admin_client(endpoints, credentials, args.timeout, files)
        mode, revision = read_mode(client)
        enforced = mode_of(client.role_permissions("client"), prefix) if authentication_on(client) else None
    except EtcdFailure as exc:
        print(f"etcd.py: error: {exc}")
        return ExitCode.FAILURE
    may = "read and write" if mode is Mode.ACTIVE else "read, not write,"
    print(f"{mode.value} since revision {revision}: clients {may} {prefix.decode()}"
          + ("" if enforced is mode else f" (but the client role says {enforced.value if enforced else 'nothing'} "
                                         "there: run cluster-mode again)"))
    return ExitCode.OK
