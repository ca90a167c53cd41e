"""The local etcd process: its URLs and flags, start, stop and restart backoff."""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import socket
import subprocess
import time
from typing import Mapping, Sequence

from appliance.model.tls import TlsFiles

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclasses.dataclass(frozen=True)
class EtcdUrls:
    """This member's URLs: ``peer`` and ``client`` as advertised (on the address peers reach it at),
    ``metrics`` and ``local_client`` on the private IP, and what etcd listens on (comma-separated;
    "" means the advertised URL)."""

    peer: str
    client: str
    metrics: str
    listen_peer: str = ""
    listen_client: str = ""
    local_client: str = ""

    @classmethod
    def for_ip(cls, ip: str, peer_port: int = 2380, client_port: int = 2379,
               metrics_port: int = 2381, listen: Sequence[str] = (), client_scheme: str = "http",
               peer_scheme: str = "http") -> "EtcdUrls":
        """URLs advertised on ``ip``; ``listen``: the addresses to listen on, the private IP first
        (default: ``ip`` only). On AWS a public address is not on any interface (the VPC maps it
        to the private one), so etcd listens on the private IP and advertises the public one.
        ``client_scheme``, ``peer_scheme``: ``https`` with TLS. The metrics URL stays plain HTTP: it
        serves only ``/metrics`` and ``/health``, for scrapers and load balancers without certificates."""
        hosts = tuple(listen) or (ip,)
        c, p = client_scheme, peer_scheme
        return cls(f"{p}://{ip}:{peer_port}", f"{c}://{ip}:{client_port}", f"http://{hosts[0]}:{metrics_port}",
                   ",".join(f"{p}://{h}:{peer_port}" for h in hosts),
                   ",".join(f"{c}://{h}:{client_port}" for h in hosts), f"{c}://{hosts[0]}:{client_port}")


def local_address(address: str) -> bool:
    """Whether ``address`` is one of this host's (it can be bound): a public IPv4 on AWS is not
    (the VPC translates it to the private one); in the simulator it is a loopback address."""
    with socket.socket() as s:
        try:
            s.bind((address, 0))
            return True
        except OSError:
            return False


def etcd_command(binary: str, name: str, data_dir: str, urls: EtcdUrls,
                 initial_cluster: Mapping[str, str] | None, state: str, token: str,
                 force_new_cluster: bool = False, client_tls: TlsFiles | None = None,
                 peer_tls: TlsFiles | None = None, quota_backend_bytes: int = 2 * 1024 ** 3) -> list[str]:
    """The etcd command line.

    Args:
        initial_cluster: member name -> peer URL, used only when ``data_dir`` is
            empty (etcd ignores it once it has data); None to restart with data.
        state: ``new`` (a one-member cluster: never several, docs/design.md, "One seeder") or ``existing``.
        token: the initial cluster token, so that two clusters never cross-talk.
        force_new_cluster: restart ``data_dir`` as a one-member cluster (etcd's disaster
            recovery; for one start only, see :mod:`appliance.rules.recovery`).
        client_tls, peer_tls: HTTPS with certificates required on the client port, TLS between
            members; None for plain HTTP.
        quota_backend_bytes: etcd's backend quota in bytes, always passed (the agent's maintenance
            sizes itself by it, so it must be the one etcd applies).
    """
    cmd = [
        binary, "--name", name, "--data-dir", data_dir,
        "--listen-peer-urls", urls.listen_peer or urls.peer, "--initial-advertise-peer-urls", urls.peer,
        "--listen-client-urls", urls.listen_client or urls.client, "--advertise-client-urls", urls.client,
        "--listen-metrics-urls", urls.metrics,
        "--initial-cluster-token", token,
        # etcd's default; stated so a reader knows reconfiguration is checked for quorum.
        "--strict-reconfig-check=true",
        # Progress notifications every second instead of every 10 min, for watchers that ask (the
        # mirror): a quiet prefix's position keeps up with compactions, and at a switchover the
        # mirror reaches the old cluster's last revision within a second, which bounds how long
        # clients cannot write. One small message a second per watch. Both 3.4 and 3.5 know the flag.
        "--experimental-watch-progress-notify-interval=1s",
        "--quota-backend-bytes", str(quota_backend_bytes),
    ]
    if client_tls is not None:
        cmd += client_tls.etcd_client_flags()
    if peer_tls is not None:
        cmd += peer_tls.etcd_peer_flags()
    if force_new_cluster:
        cmd.append("--force-new-cluster")
    if initial_cluster is not None:
        cmd += ["--initial-cluster", ",".join(f"{n}={u}" for n, u in initial_cluster.items()),
                "--initial-cluster-state", state]
    return cmd


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # If the agent dies, etcd gets SIGTERM instead of living on unsupervised.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_environment(environ: Mapping[str, str], etcd_environment: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The environment for etcd and its tools: ``environ`` without ETCD_* / ETCDCTL_* (etcd and etcdctl read
    them as flags), plus exactly ``etcd_environment`` ((name, value) pairs, already checked by the settings)."""
    return {**{k: v for k, v in environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}, **dict(etcd_environment)}


class EtcdProcess:
    """Starts, watches and stops one etcd process, with restart backoff; its output goes to the agent's."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.failures = 0  # consecutive exits that came soon after a start
        self.next_start_at = 0.0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reap(self) -> int | None:
        """If etcd exited since the last look, record it and return its exit code."""
        if self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        lived = time.monotonic() - self.started_at
        self.failures = 0 if lived > 60 else self.failures + 1
        delay = min(30.0, 0.5 * 2 ** self.failures) if self.failures else 0.5
        self.next_start_at = time.monotonic() + delay
        log.warning("etcd exited with code %s after %.1f s; restart allowed in %.1f s", code, lived, delay)
        self.proc = None
        return code

    def may_start(self) -> bool:
        """False while the restart backoff after a crash is still running."""
        return time.monotonic() >= self.next_start_at

    def start(self, command: Sequence[str], environment: Sequence[tuple[str, str]] = ()) -> None:
        """Start etcd with ``command``; it inherits the agent's stdout and stderr, and the agent's environment
        without any ETCD_* / ETCDCTL_* variable plus exactly ``environment`` ((name, value) pairs: the
        settings' ``etcd_environment``).

        Raises:
            OSError: ``command`` cannot be started.
        """
        self.proc = subprocess.Popen(list(command), stdin=subprocess.DEVNULL,
                                     env=child_environment(os.environ, environment), preexec_fn=die_with_parent)
        self.started_at = time.monotonic()
        log.info("started etcd (pid %d): %s%s", self.proc.pid, " ".join(command[1:]),
                 "".join(f"; {name}={value}" for name, value in environment))

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM etcd and wait up to ``timeout`` seconds, then SIGKILL."""
        if self.proc is not None:
            terminate(self.proc, timeout, "etcd")
        self.proc = None


def terminate(proc: subprocess.Popen, timeout: float, what: str) -> None:
    """SIGTERM ``proc`` (if it still runs) and wait up to ``timeout`` seconds, then SIGKILL; ``what``
    names it in the log line of a kill."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %.0f s; killing it", what, timeout)
        proc.kill()
        proc.wait(5)
