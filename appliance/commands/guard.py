"""``etcd.py guard --endpoints URLS --max-staleness SECONDS [options] -- COMMAND [ARGS…]``.

Exit codes: COMMAND's own; 10 stale at the start (COMMAND not started); 11 COMMAND stopped as
stale; 2 bad input; 127 COMMAND cannot be executed.
"""

from __future__ import annotations

import argparse

from appliance.adapters import logs
from appliance.commands import flags, values
from appliance.model.errors import ConfigError
from appliance.model.keys import HEARTBEAT_KEY


def add_parser(sub) -> None:
    """Add ``guard`` to the top-level subparsers."""
    p = sub.add_parser("guard", help="run COMMAND only while the cluster's data is fresh")
    p.add_argument("--endpoints", required=True, help="client URLs of the cluster COMMAND's data comes from")
    p.add_argument("--max-staleness", type=values.flag(values.seconds(0.1, 86400)), required=True,
                   help="seconds the newest heartbeat read with a quorum may be old")
    p.add_argument("--interval", type=values.flag(values.seconds(0.05, 60)), default=1.0,
                   help="seconds between checks (default 1)")
    p.add_argument("--grace", type=values.flag(values.seconds(0, 3600)), default=10.0,
                   help="seconds between SIGTERM and SIGKILL when stopping COMMAND (default 10)")
    p.add_argument("--heartbeat-key", default=HEARTBEAT_KEY, help="the heartbeat key")
    p.add_argument("--credentials", help="credentials file (see cluster-mode), where authentication is on")
    p.add_argument("--user", default="client", help="the user in --credentials (default client)")
    flags.add_tls_flags(p)
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS…]")
    p.set_defaults(handler=cmd_guard)


def cmd_guard(args: argparse.Namespace) -> int:
    """Run COMMAND while the data is fresh; see the module's exit codes."""
    from appliance.guard.freshness import FreshnessCheck
    from appliance.guard.supervise import run_guarded

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ConfigError("guard: no COMMAND given (put it after --)")
    if args.interval <= 0 or args.grace < 0:
        raise ConfigError("--interval must be positive and --grace zero or more seconds")
    if args.max_staleness <= args.interval:
        raise ConfigError(f"--max-staleness ({args.max_staleness:g} s) must exceed --interval ({args.interval:g} s)")
    credentials = flags.user_credentials(args.credentials, args.user)
    check = FreshnessCheck(flags.urls(args.endpoints, "--endpoints"), args.max_staleness, args.heartbeat_key,
                           credentials, timeout=min(args.interval, 3.0), tls=flags.tls_from(args))
    logs.setup()
    return run_guarded(argv, check, args.interval, args.grace)
