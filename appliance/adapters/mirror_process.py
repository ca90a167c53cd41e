"""The inbound mirror as the agent's child process (``etcd.py mirror … --lock-holder <instance id>``).

A child process rather than a thread: the mirror keeps its own threads, memory and
signal handling, and a crash of either side leaves the other running. The child
dies with the agent (PR_SET_PDEATHSIG, as etcd does), so no mirror outlives the
agent that decided to run it; its output goes to the agent's.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from appliance.adapters.etcd.process import child_environment, die_with_parent, terminate
from appliance.model.exit_codes import ExitCode
from appliance.model.tls import TlsFiles

log = logging.getLogger("agent")

ENTRY_POINT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "etcd.py"))
RESTART_DELAY = 5.0   # seconds between a mirror's exit and the next start
STOP_TIMEOUT = 10.0   # seconds a stopping mirror gets to release its lock before SIGKILL
LAG_TIMEOUT = 1.0     # seconds the agent's /metrics waits for the child's
LAG_CACHE = 1.0       # seconds a read of the child's lag serves scrapes (two gauges, one read)
_NO_LAG = (math.nan, math.nan)
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
        self.metrics_port: int | None = None  # the running child's, on 127.0.0.1
        self._lag = (0.0, _NO_LAG)  # (monotonic time read, (seconds, revisions))
        self._http = requests.Session()

    def command(self, source: tuple[str, ...]) -> list[str]:
        return [sys.executable, ENTRY_POINT, "mirror", "--source", ",".join(source), "--source-prefix", self.prefix,
                "--dest", ",".join(self.dest), "--dest-prefix", self.prefix, "--credentials", self.credentials_file,
                "--lock-holder", self.holder, "--auto-reload",
                *(["--metrics-port", str(self.metrics_port), "--metrics-address", "127.0.0.1"]
                  if self.metrics_port else []),
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
        # The child serves its metrics on loopback only; the agent re-exports its lag (:meth:`lag`).
        self.metrics_port = _free_port()
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
        self.proc, self.source, self.metrics_port = None, None, None

    def lag(self) -> tuple[float, float]:
        """The running child's (``etcd_mirror_lag_seconds``, ``etcd_mirror_lag_revisions``), read from its
        metrics port at most once a second; NaN for each while none runs, it does not answer within
        :data:`LAG_TIMEOUT`, or it does not know yet."""
        read_at, lag = self._lag
        if time.monotonic() - read_at < LAG_CACHE:
            return lag
        lag = _NO_LAG
        # Read once: the agent's loop may stop the child (and clear both) while a scrape runs this.
        proc, port = self.proc, self.metrics_port
        if proc is not None and proc.poll() is None and port:
            try:
                answer = self._http.get(f"http://127.0.0.1:{port}/metrics", timeout=LAG_TIMEOUT)
                lag = _lag_of(answer.text) if answer.status_code == 200 else _NO_LAG
            except (requests.RequestException, ValueError):
                lag = _NO_LAG  # starting, or stopping: the gauges say unknown
        self._lag = (time.monotonic(), lag)
        return lag


def _free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's choice), for the child to bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _lag_of(exposition: str) -> tuple[float, float]:
    """(lag seconds, lag revisions) in a mirror's Prometheus text; NaN for either it lacks."""
    found = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name in ("etcd_mirror_lag_seconds", "etcd_mirror_lag_revisions"):
                found[sample.name] = float(sample.value)
    return found.get("etcd_mirror_lag_seconds", math.nan), found.get("etcd_mirror_lag_revisions", math.nan)
