"""``etcd.py verify``: compare a source prefix with its mirror; exit 0 if equal, 1 if not (or a side did not
answer), 2 bad flags."""

from __future__ import annotations

import argparse

from appliance.adapters.etcd.client import EtcdClient
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.commands import flags
from appliance.model.exit_codes import ExitCode


def add_parser(sub) -> None:
    """Add ``verify`` to the top-level subparsers."""
    verify = sub.add_parser("verify", help="compare a source prefix with its mirror; exit 1 on any difference")
    flags.add_pair_flags(verify)
    verify.set_defaults(handler=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """Print the comparison (see :mod:`appliance.replication.verify`)."""
    from appliance.replication.verify import verify

    source, dest = flags.urls(args.source, "--source"), flags.urls(args.dest, "--dest")
    source_prefix = flags.prefix(args.source_prefix, "--source-prefix")
    dest_prefix = flags.prefix(args.dest_prefix, "--dest-prefix")
    credentials, files = flags.user_credentials(args.credentials, "mirror"), flags.tls_from(args)
    try:
        report = verify(EtcdClient(source, timeout=args.timeout, credentials=credentials, tls=files),
                        EtcdClient(dest, timeout=args.timeout, credentials=credentials, tls=files),
                        source_prefix, dest_prefix, flags.position_key_of(args))
    except EtcdFailure as exc:
        print(f"etcd.py: error: cannot compare: {exc}")
        return ExitCode.FAILURE
    print("\n".join(report.lines()))
    return ExitCode.OK if report.equal else ExitCode.FAILURE
