"""The inbound mirror as the agent's child process (``etcd.py mirror … --lock-holder <instance id>``).

A child process rather than a thread: the mirror keeps its own threads, memory and
signal handling, and a crash of either side leaves the other running. The child
dies with the agent (PR_SET_PDEATHSIG, as etcd does), so no mirror outlives the
agent that decided to run it; its output goes to the agent's.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

from appliance.adapters.etcd.process import child_environment, die_with_parent, terminate
from appliance.model.exit_codes import ExitCode
from appliance.model.tls import TlsFiles

log = logging.getLogger("agent")

ENTRY_POINT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "etcd.py"))
RESTART_DELAY = 5.0   # seconds between a mirror's exit and the next start
STOP_TIMEOUT = 10.0   # seconds a stopping mirror gets to release its lock before SIGKILL
# The mirror's exit codes said as what happened to this child (it always runs with --auto-reload and
# --lock-holder), for the agent's log line and the inbound mirror's reason on the status endpoint.
EXIT_MEANINGS = {ExitCode.CONFIG: "its settings were refused",
                 ExitCode.MIRROR_COMPACTED: "the source compacted past its position",
                 ExitCode.MIRROR_STRICT: "--strict found a difference",
                 ExitCode.MIRROR_POSITION_TAKEN: "another mirror wrote its position",
                 ExitCode.MIRROR_LOCK_LOST: "it lost the mirror lock",
                 ExitCode.MIRROR_CLUSTER_CHANGED: "another cluster answers at its source or destination URLs"}


class MirrorChild:
    """At most one running mirror process.

    Args:
        dest: this cluster's client URL(s) (the leader's own member).
        prefix: the mirrored prefix (the same in both clusters).
        credentials_file: the file holding the user ``mirror``'s password.
        holder: the lock holder's name (the instance id).
        tls: the agent's CA and client certificate, handed to the mirror (``--cacert`` and so on).
    """

    def __init__(self, dest: tuple[str, ...], prefix: str, credentials_file: str, holder: str,
                 tls: TlsFiles | None = None):
        self.dest = dest
        self.tls = tls
        self.prefix = prefix
        self.credentials_file = credentials_file
        self.holder = holder
        self.proc: subprocess.Popen | None = None
        self.source: tuple[str, ...] | None = None  # of the running mirror
        self.exited_at = -RESTART_DELAY
        self.last_exit = ""

    def command(self, source: tuple[str, ...]) -> list[str]:
        return [sys.executable, ENTRY_POINT, "mirror", "--source", ",".join(source), "--source-prefix", self.prefix,
                "--dest", ",".join(self.dest), "--dest-prefix", self.prefix, "--credentials", self.credentials_file,
                "--lock-holder", self.holder, "--auto-reload",
                *(self.tls.flags() if self.tls is not None else [])]

    def running_source(self) -> tuple[str, ...] | None:
        """The running mirror's source URLs, None if none runs (an exit since the last look is logged)."""
        if self.proc is not None and self.proc.poll() is not None:
            code = self.proc.returncode
            self.last_exit = f"exited with code {code}" + (f" ({EXIT_MEANINGS[code]})" if code in EXIT_MEANINGS
                                                          else "")
            log.warning("inbound mirror (pid %d) %s", self.proc.pid, self.last_exit)
            self.proc, self.source, self.exited_at = None, None, time.monotonic()
        return self.source

    def hold_off(self) -> float:
        """Seconds before the next start is allowed (0: now)."""
        return max(0.0, self.exited_at + RESTART_DELAY - time.monotonic())

    def start(self, source: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen(self.command(source), stdin=subprocess.DEVNULL,
                                     env=child_environment(os.environ), preexec_fn=die_with_parent)
        self.source = source
        log.info("inbound mirror started (pid %d): %s -> %s, prefix %s", self.proc.pid, ",".join(source),
                 ",".join(self.dest), self.prefix)

    def stop(self) -> None:
        """SIGTERM (the mirror releases its lock), SIGKILL after :data:`STOP_TIMEOUT` seconds."""
        if self.proc is None:
            return
        terminate(self.proc, STOP_TIMEOUT, "the inbound mirror (its lock expires by itself)")
        log.info("inbound mirror (pid %d) stopped", self.proc.pid)
        self.proc, self.source = None, None
