"""``etcd.py run`` (the default command): the instance agent (see :mod:`appliance.agent.loop`).

Exit codes: 0 after a clean stop or after leaving the cluster; 1 a runtime failure; 2 bad input
(a setting, AWS access, the metadata service, the status port), detected before anything starts.
"""

from __future__ import annotations

import argparse
import os

from appliance.adapters import logs
from appliance.commands.settings import add_agent_flags, load_agent_settings, log_notices


def add_parser(sub) -> None:
    """Add ``run`` (one flag per agent setting) to the top-level subparsers."""
    run = sub.add_parser("run", help="run the instance agent (the default command)")
    add_agent_flags(run)
    run.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """Validate the settings, start the agent and run it until it stops or leaves."""
    from appliance.adapters.aws.metadata import DEFAULT_ENDPOINT, MetadataClient
    from appliance.agent.start import start

    settings = load_agent_settings(vars(args), os.environ)
    logs.setup(settings.log_level, settings.log_format)
    log_notices(settings)  # a deprecated variable name: once, in the log's own format
    # The inbound mirror the agent starts writes to the same stream: it reads LOG_FORMAT (a flag may have set it).
    os.environ["LOG_FORMAT"] = settings.log_format
    endpoint = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or DEFAULT_ENDPOINT
    metadata = MetadataClient(endpoint, timeout=settings.request_timeout)
    agent, server = start(settings, metadata)
    return agent.run(server)
