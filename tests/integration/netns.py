"""Hosts in network namespaces, joined by a bridge, that a test can cut off from each other.

Each host is a namespace with one veth interface, ``eth0``, holding the loopback
address ``127.0.77.<i>/24``; the other ends hang on a bridge in a namespace of
their own. Nothing is added to the namespace the tests run in, so the addresses
collide with nothing, reach nothing outside these namespaces and vanish with them.

Loopback addresses on a veth need two changes inside each host namespace, and
only there: ``route_localnet=1`` (Linux otherwise drops 127/8 arriving on a
non-loopback interface and will not answer ARP for it), and the kernel's
``local 127.0.0.0/8`` route removed (it claims every 127/8 destination for the
host's own ``lo``; ``local 127.0.0.1`` stays).

``cut(i)`` sets host ``i``'s port on the bridge down: a full partition of that
host from all others, in both directions, with its own processes still running.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

SUBNET = "127.0.77"


def available() -> str | None:
    """Why namespaces cannot be made here (no ``ip``, not root), or None when they can."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    return None


def _run(*argv: str, netns: str | None = None) -> None:
    command = list(argv) if netns is None else ["ip", "netns", "exec", netns, *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")


class Hosts:
    """``count`` hosts numbered 1..count; ``address(i)`` is host i's address.

    Raises:
        RuntimeError: a namespace, link or address could not be made (the partial
            set-up is removed first).
    """

    def __init__(self, count: int):
        self.prefix = f"ap{os.getpid() % 100000}"  # interface names are limited to 15 bytes
        self.switch = f"{self.prefix}-sw"
        self.count = count
        self.procs: list[subprocess.Popen] = []
        self._made: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        _run("ip", "netns", "add", self.switch)
        self._made.append(self.switch)
        _run("ip", "link", "add", "br0", "type", "bridge", netns=self.switch)
        _run("ip", "link", "set", "br0", "up", netns=self.switch)
        for i in range(1, self.count + 1):
            host, port = self.namespace(i), self.port(i)
            _run("ip", "netns", "add", host)
            self._made.append(host)
            # Made inside the host, its peer sent straight to the switch: never a link in our own namespace.
            _run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.switch, netns=host)
            _run("ip", "link", "set", port, "master", "br0", "up", netns=self.switch)
            _run("ip", "link", "set", "lo", "up", netns=host)
            _run("sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf.eth0.route_localnet=1",
                 netns=host)
            _run("ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local", netns=host)
            _run("ip", "addr", "add", f"{self.address(i)}/24", "dev", "eth0", netns=host)
            _run("ip", "link", "set", "eth0", "up", netns=host)

    def namespace(self, i: int) -> str:
        return f"{self.prefix}-h{i}"

    def port(self, i: int) -> str:
        return f"{self.prefix}-p{i}"

    def address(self, i: int) -> str:
        return f"{SUBNET}.{i}"

    def spawn(self, i: int, argv: list[str], **popen) -> subprocess.Popen:
        """Start ``argv`` in host ``i`` in a process group of its own; ``close`` kills it."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.namespace(i), *argv], start_new_session=True, **popen)
        self.procs.append(proc)
        return proc

    def run(self, i: int, argv: list[str], timeout: float, **options) -> subprocess.CompletedProcess:
        """Run ``argv`` in host ``i`` to completion (stdout and stderr as text)."""
        return subprocess.run(["ip", "netns", "exec", self.namespace(i), *argv], capture_output=True, text=True,
                              timeout=timeout, **options)

    def cut(self, i: int) -> None:
        """Partition host ``i`` from every other host."""
        _run("ip", "link", "set", self.port(i), "down", netns=self.switch)

    def heal(self, i: int) -> None:
        _run("ip", "link", "set", self.port(i), "up", netns=self.switch)

    def close(self) -> None:
        """Kill every process started here (their groups), then delete the namespaces."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(10)
        for name in reversed(self._made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        self._made.clear()
