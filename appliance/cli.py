"""The composition root: the ``etcd.py`` parser, and the dispatch to each command's handler.

Commands: ``run`` (the instance agent, the default), ``mirror``, ``verify``, ``cluster-mode``,
``switchover``, ``guard``, ``status``, ``backup``, ``snapshots``, ``restore``, and ``sim`` (the local
AWS) where the simulator is installed. This is the one module that imports the simulator, and only
if it is there: production commands never do, so an image need not carry it. Every exit code is
:class:`~appliance.model.exit_codes.ExitCode`'s.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Mapping

from appliance.adapters import logs
from appliance.adapters.etcd.binary import binary_version
from appliance.commands import (
    backup,
    cluster_mode,
    guard,
    mirror,
    restore,
    run,
    snapshots,
    status,
    switchover,
    verify,
)
from appliance.model.build import APPLIANCE_VERSION
from appliance.model.errors import ApplianceError
from appliance.model.exit_codes import ExitCode

log = logging.getLogger("etcd.py")

COMMANDS = (run, mirror, verify, cluster_mode, switchover, guard, status, backup, snapshots, restore)


def _simulator():
    """The simulator's command module, None where it is not installed (the image leaves it out)."""
    try:
        from appliance.sim import command
    except ModuleNotFoundError as exc:
        if exc.name != "appliance.sim":
            raise  # the simulator is there but broken: say so, do not hide it
        return None
    return command


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage block) and exit 2: the reference's promise for bad input."""

    def error(self, message: str):
        print(f"{self.prog}: error: {' '.join(message.split())}", file=sys.stderr)
        sys.exit(ExitCode.CONFIG)


def parser() -> argparse.ArgumentParser:
    """The whole command line: every command's flags (subcommands' parsers are of the same class)."""
    top = _Parser(prog="etcd.py", description="Self-managing etcd appliance for AWS.")
    # Answered by main() before parsing (it runs the etcd binary); here for the help.
    top.add_argument("--version", action="store_true", help="print the appliance's version and the etcd it runs")
    sub = top.add_subparsers(dest="command")
    simulator = _simulator()
    for command in COMMANDS[:1]:
        command.add_parser(sub)
    if simulator is not None:
        simulator.add_parser(sub)
        # status, backup, snapshots and restore find a simulator's cluster through this (``--sim``).
        top.set_defaults(sim_target=simulator.target)
    for command in COMMANDS[1:]:
        command.add_parser(sub)
    for _, action in typed_flags(top):
        # The grammar's own words, so that the help and the errors say the same range.
        action.help = f"{action.help or ''}; {action.type.value.allowed}".lstrip("; ")
    return top


def typed_flags(top: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """(command, flag) of every flag parsed through the grammar (:func:`appliance.commands.values.flag`)."""
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return [(name, action) for name, parser in sub.choices.items() for action in parser._actions
            if action.option_strings and hasattr(action.type, "value")]


def version(environ: Mapping[str, str]) -> int:
    """``etcd.py --version``: the appliance's version, then that of the etcd it runs (APPLIANCE_ETCD_BINARY, or its
    deprecated name ETCD_BINARY, default ``etcd`` on the PATH), one per line. Exit 2, after the first line, when the
    binary does not say its version."""
    print(f"etcd-appliance {APPLIANCE_VERSION}")
    binary = environ.get("APPLIANCE_ETCD_BINARY") or environ.get("ETCD_BINARY") or "etcd"
    try:
        print(f"etcd {'.'.join(map(str, binary_version(binary)))}")
    except ApplianceError as exc:
        print(f"etcd.py: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    return ExitCode.OK


def main(argv: list[str]) -> int:
    """Parse ``argv`` and run the command; returns the exit code."""
    if argv[:1] == ["--version"]:
        return version(os.environ)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    args = parser().parse_args(argv)
    logs.setup()
    threading.excepthook = _thread_failed
    try:
        return args.handler(args)
    except ApplianceError as exc:
        print(f"etcd.py: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return ExitCode.FAILURE
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line for the user, the trace in the log
        log.debug("%s failed unexpectedly", args.command or "run", exc_info=True)
        print(f"etcd.py: error: {args.command or 'run'} failed unexpectedly: {type(exc).__name__}: "
              f"{_one_line(str(exc))} (LOG_LEVEL=DEBUG logs the traceback)", file=sys.stderr)
        return ExitCode.FAILURE


def _thread_failed(hook: threading.ExceptHookArgs) -> None:
    """A background thread that dies says so in one log line; its traceback only at debug level."""
    if issubclass(hook.exc_type, SystemExit):
        return
    name = hook.thread.name if hook.thread is not None else "a thread"
    log.error("%s stopped unexpectedly: %s: %s", name, hook.exc_type.__name__, _one_line(str(hook.exc_value)))
    log.debug("traceback of %s", name, exc_info=(hook.exc_type, hook.exc_value, hook.exc_traceback))


def _one_line(text: str, limit: int = 400) -> str:
    """``text`` on one line and at most ``limit`` characters: an error quoting an answer must not flood the terminal."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
