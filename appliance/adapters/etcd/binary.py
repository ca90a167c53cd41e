"""The local etcd binary's version, from ``etcd --version``."""

from __future__ import annotations

import re
import subprocess

from appliance.model.errors import ConfigError
from appliance.model.versions import parse


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
