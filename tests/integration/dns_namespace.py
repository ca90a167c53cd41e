"""Run a program whose DNS resolver is a given name server, without touching the machine's /etc/resolv.conf.

The program runs in its own mount namespace (``unshare --mount``, root only) in which a
file saying ``nameserver <ip>`` is bind-mounted over /etc/resolv.conf; the network is
the machine's. Resolvers that read /etc/resolv.conf (glibc's, Go's) then ask only that
server, and always on port 53: the server must listen on ``<ip>:53``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

# $1 is the resolv.conf to mount, the rest is the command; exec keeps the command's pid
# the one subprocess.run kills on a timeout.
_SCRIPT = 'mount --bind "$1" /etc/resolv.conf || exit 125; shift; exec "$@"'
MOUNT_FAILED = 125   # the exit code when the bind mount failed (the command did not run)


def run_with_resolver(nameserver_ip: str, argv: list[str], timeout: float,
                      env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` with ``nameserver_ip`` as its only name server; return the completed process (text output).

    The resolv.conf also says ``options timeout:2 attempts:1`` so that an unanswered
    query fails in 2 s rather than glibc's or Go's default of 5 s times 2.

    Raises:
        RuntimeError: the namespace cannot be made here (see :func:`namespace_unavailable`), or the bind
            mount failed (exit code 125; stderr says why).
        subprocess.TimeoutExpired: ``argv`` ran longer than ``timeout`` seconds (it is killed).
    """
    reason = namespace_unavailable()
    if reason:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory(prefix="resolv-") as tmp:
        resolv_conf = os.path.join(tmp, "resolv.conf")
        with open(resolv_conf, "w") as f:
            f.write(f"nameserver {nameserver_ip}\noptions timeout:2 attempts:1\n")
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT, "sh",
                               resolv_conf, *argv], capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    if done.returncode == MOUNT_FAILED and "mount" in done.stderr:
        raise RuntimeError(f"cannot bind-mount a resolv.conf over /etc/resolv.conf: {done.stderr.strip()}")
    return done


@functools.lru_cache(maxsize=1)
def namespace_unavailable() -> str | None:
    """Why :func:`run_with_resolver` cannot work on this machine, or None when it can (checked once, by trying)."""
    if os.geteuid() != 0:
        return "unshare --mount and mount --bind need root"
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "the unshare or mount program (util-linux) is missing"
    if not os.path.exists("/etc/resolv.conf"):
        return "there is no /etc/resolv.conf to bind-mount over"
    with tempfile.TemporaryDirectory(prefix="resolv-") as tmp:
        probe = os.path.join(tmp, "resolv.conf")
        with open(probe, "w") as f:
            f.write("nameserver 127.0.0.254\n")
        try:
            done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT, "sh",
                                   probe, "cat", "/etc/resolv.conf"], capture_output=True, text=True, timeout=20,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unshare --mount failed: {exc}"
    if done.returncode != 0 or "127.0.0.254" not in done.stdout:
        return f"unshare --mount with a bind-mounted resolv.conf failed (exit {done.returncode}): " \
               f"{done.stderr.strip()}"
    return None
