"""Commands: ``run`` (the instance agent, the default), ``sim`` (the local AWS), ``mirror``, ``verify``,
``cluster-mode``, ``switchover``, ``guard``, ``status``, ``backup``, ``snapshots`` and ``restore``.

Exit codes: 0 success, 1 runtime failure, 2 bad input (a setting, AWS access,
the metadata service, a switchover's preconditions) detected before anything is
started or changed; the mirror adds 3 (source compacted past its position), 4
(``--strict`` found a difference) and 5 (another mirror writes the same
position); ``switchover`` 6 (failed, every step undone), 7 (the new cluster is
active, steps remain) and 8 (undoing failed); ``guard`` 10 (stale: COMMAND not
started), 11 (COMMAND stopped as stale) and 127 (COMMAND cannot be executed),
else COMMAND's own code; ``status`` 9 (the cluster is degraded); ``backup`` 12 (no snapshot
taken or uploaded); ``restore`` 13 (the snapshot is corrupt) and 14 (the agent refused).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from appliance import logs
from appliance.errors import EXIT_FAILURE, ApplianceError, StatusPortError

log = logging.getLogger("etcd.py")


def _parser() -> argparse.ArgumentParser:
    from appliance.config import add_agent_flags
    from appliance.sim import commands as sim_commands

    parser = argparse.ArgumentParser(prog="etcd.py", description="Self-managing etcd appliance for AWS.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the instance agent (the default command)")
    add_agent_flags(run)
    sim = sub.add_parser("sim", help="the local AWS: a simulated stack on this machine")
    sim_commands.add_parser(sim)
    from appliance.replication import commands as replication_commands
    replication_commands.add_parsers(sub)
    from appliance.guard import command as guard_command
    guard_command.add_parser(sub)
    from appliance import status_command
    status_command.add_parser(sub)
    from appliance import backup_command
    backup_command.add_parsers(sub)
    return parser


def run_agent(flags: dict) -> int:
    """``etcd.py run``: the instance agent; see :mod:`appliance.agent`."""
    from appliance import agent
    from appliance.aws.metadata import DEFAULT_ENDPOINT, MetadataClient
    from appliance.config import load_agent_settings

    settings = load_agent_settings(flags, os.environ)
    logs.setup(settings.log_level, settings.log_format)
    # The inbound mirror the agent starts writes to the same stream: it reads LOG_FORMAT (a flag may have set it).
    os.environ["LOG_FORMAT"] = settings.log_format
    endpoint = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT
    metadata = MetadataClient(endpoint, timeout=settings.request_timeout)
    try:
        instance_agent, server = agent.start(settings, metadata)
    except OSError as exc:
        raise StatusPortError(f"cannot bind the status endpoint on port {settings.status_port}: {exc}") from None
    return instance_agent.run(server)


def main(argv: list[str]) -> int:
    """Parse ``argv`` and run the command; returns the exit code."""
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    args = _parser().parse_args(argv)
    logs.setup()
    try:
        if args.command == "run":
            return run_agent(vars(args))
        return args.handler(args)
    except ApplianceError as exc:
        print(f"etcd.py: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_FAILURE
