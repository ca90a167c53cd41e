"""etcd versions: parsing version strings, and the join verdict between this binary and the cluster version
(same / older / upgrade / too-new)."""

import pytest

from appliance.model import versions
from appliance.rules.versions import join_verdict


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
    assert join_verdict(binary, cluster) == verdict
