"""The local etcd binary: its version (``etcd --version``) and the flags it knows (``etcd --help``)."""

from __future__ import annotations

import re
import subprocess

from appliance.adapters.etcd.bounded import run_bounded
from appliance.model.errors import ConfigError
from appliance.model.versions import parse

SETTING = "APPLIANCE_ETCD_BINARY"  # the setting that names the binary, for the errors
_FLAG = re.compile(r"(?<![\w-])--([a-z0-9][a-z0-9-]*[a-z0-9])\b")


def _run(binary: str, argument: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        return run_bounded([binary, argument], timeout)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{SETTING}: {binary} {argument} did not answer within {timeout:g} s (its process "
                          "group was killed)") from None
    except OSError as exc:
        raise ConfigError(f"{SETTING}: {binary} {argument} did not run: {exc.strerror or exc}") from None


def binary_version(binary: str, timeout: float = 10.0) -> tuple[int, int, int]:
    """The version ``binary --version`` prints ("etcd Version: 3.5.1").

    Raises:
        ConfigError: the binary does not run or prints no version (exit code 2), naming APPLIANCE_ETCD_BINARY.
    """
    done = _run(binary, "--version", timeout)
    found = re.search(r"etcd Version:\s*(\S+)", done.stdout[:4096])
    version = parse(found.group(1)) if found else None
    if done.returncode != 0 or version is None:
        raise ConfigError(f"{SETTING}: {binary} --version printed no etcd version "
                          f"(exit code {done.returncode})")
    return version


def binary_flags(binary: str, timeout: float = 10.0) -> frozenset[str]:
    """The flags ``binary --help`` lists, as names without ``--`` (``heartbeat-interval``): every ``--flag-name``
    token of its output (etcd 3.4 and 3.5 list each flag as ``  --name 'default'``, on stdout or stderr).

    Raises:
        ConfigError: the binary does not run, or lists no flag such as ``--data-dir`` (not etcd) (exit code 2),
            naming APPLIANCE_ETCD_BINARY.
    """
    done = _run(binary, "--help", timeout)
    flags = frozenset(_FLAG.findall((done.stdout + done.stderr)[:256 * 1024]))
    if done.returncode != 0 or "data-dir" not in flags:
        raise ConfigError(f"{SETTING}: {binary} --help listed no etcd flags (exit code {done.returncode})")
    return flags
