"""The local etcd binary's version, from ``etcd --version``."""

from __future__ import annotations

import re
import subprocess

from appliance.adapters.etcd.bounded import run_bounded
from appliance.model.errors import ConfigError
from appliance.model.versions import parse


def binary_version(binary: str, timeout: float = 10.0) -> tuple[int, int, int]:
    """The version ``binary --version`` prints ("etcd Version: 3.5.1").

    Raises:
        ConfigError: the binary does not run or prints no version (exit code 2).
    """
    try:
        done = run_bounded([binary, "--version"], timeout)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"ETCD_BINARY: {binary} --version did not answer within {timeout:g} s (its process "
                          "group was killed)") from None
    except OSError as exc:
        raise ConfigError(f"ETCD_BINARY: {binary} --version did not run: {exc.strerror or exc}") from None
    found = re.search(r"etcd Version:\s*(\S+)", done.stdout[:4096])
    version = parse(found.group(1)) if found else None
    if done.returncode != 0 or version is None:
        raise ConfigError(f"ETCD_BINARY: {binary} --version printed no etcd version "
                          f"(exit code {done.returncode})")
    return version
