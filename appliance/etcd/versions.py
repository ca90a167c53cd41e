"""etcd versions: of the local binary, of the cluster, and what etcd allows between them.

etcd upgrades one minor version at a time, member by member; the cluster
version (``etcdcluster`` of ``GET /version``) is the lowest server version of
its members and rises only once every member runs the newer release; a member
older than the cluster version is refused (etcd docs, "Upgrading etcd clusters
and applications": upgrade 3.4 → 3.5 and "downgrade is not supported" before
the 3.5 downgrade feature).
"""

from __future__ import annotations

import re
import subprocess

from appliance.errors import ConfigError

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse(text: str) -> tuple[int, int, int] | None:
    """``"3.5.1"`` -> (3, 5, 1); ``"3.5"`` -> (3, 5, 0); None if ``text`` holds no version."""
    found = _VERSION.search(text or "")
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


def minor(version: tuple[int, int, int]) -> str:
    """(3, 5, 1) -> ``"3.5"``."""
    return f"{version[0]}.{version[1]}"


def binary_version(binary: str, timeout: float = 10.0) -> tuple[int, int, int]:
    """The version ``binary --version`` prints ("etcd Version: 3.5.1").

    Raises:
        ConfigError: the binary does not run or prints no version (exit code 2).
    """
    try:
        done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"ETCD_BINARY: {binary} --version failed: {exc}") from None
    found = re.search(r"etcd Version:\s*(\S+)", done.stdout)
    version = parse(found.group(1)) if found else None
    if done.returncode != 0 or version is None:
        raise ConfigError(f"ETCD_BINARY: {binary} --version printed no etcd version "
                          f"(exit code {done.returncode})")
    return version


def join_verdict(binary: tuple[int, int, int], cluster: tuple[int, int, int]) -> str:
    """Compare this binary with the cluster version, by minor version.

    Returns:
        "same" (join as usual), "upgrade" (one minor newer: join under the upgrade
        lock), "older" (refuse: etcd supports no downgrade by joining) or "too-new"
        (more than one minor newer: refuse, etcd upgrades one minor at a time).
    """
    mine, theirs = binary[:2], cluster[:2]
    if mine == theirs:
        return "same"
    if mine < theirs:
        return "older"
    if mine[0] == theirs[0] and mine[1] == theirs[1] + 1:
        return "upgrade"
    return "too-new"
