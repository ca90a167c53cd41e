"""A bad certificate setting stops the agent with exit 2 and one line before anything starts.

A TLS cluster bootstrapping, refusing strangers, healing and taking snapshots is
tests/integration/test_cluster.py (its stack runs with ``--tls``); the mirror over TLS is
tests/integration/test_mirrored.py."""

from __future__ import annotations

import os

import pytest

from appliance.sim.certificates import Authority
from appliance.sim.supervisor import etcd_binary
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("change,message", [
    ({"CLIENT_CERT_FILE": "/nonexistent/instance.pem"}, "CLIENT_CERT_FILE: must be a readable regular file"),
    ({"CLIENT_KEY_FILE": None}, "CLIENT_KEY_FILE missing"),
    ({"CLIENT_KEY_FILE": "other-key"}, "are not a certificate and its key"),
    ({"CLIENT_CA_FILE": "instance"}, "holds no usable CA certificate"),
    ({"CLIENT_CA_FILE": "other-ca"}, "is not signed by a CA in"),
], ids=["missing-file", "key-not-given", "key-of-another-certificate", "ca-is-not-a-ca", "another-ca"])
def test_a_bad_certificate_setting_exits_2_before_anything_starts(tmp_path, change, message):
    authority = Authority(str(tmp_path / "ca"))
    mine, other = authority.issue_instance("i-1", ["127.0.0.1"]), authority.issue("other")
    paths = {"instance": mine.cert_file, "other-key": other.key_file,
             "other-ca": Authority(str(tmp_path / "other-ca"), "another CA").ca_file}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ETCD"))}
    env.update(CLIENT_CA_FILE=mine.ca_file, CLIENT_CERT_FILE=mine.cert_file, CLIENT_KEY_FILE=mine.key_file,
               DATA_DIR=str(tmp_path / "data"), APPLIANCE_ETCD_BINARY=etcd_binary(),
               # No metadata service: the agent must stop on its settings before it asks anything.
               AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:9/")
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = paths.get(value, value)
    done = run_cli("run", env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "data").exists()
