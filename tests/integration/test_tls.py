"""TLS everywhere (``sim up --tls``): the simulator's CA signs a certificate per instance and one for the
operator; the members require client certificates on both ports. A TLS cluster bootstraps, publishes
the ``-ssl`` records, refuses plain HTTP and certificates of another CA, heals, and takes snapshots;
``status`` and ``guard`` speak TLS. A bad certificate path stops the agent with exit 2 before anything
starts. (The mirror over TLS: tests/integration/test_mirrored.py runs its clusters with ``--tls``.)"""

from __future__ import annotations

import dataclasses
import os

import pytest
import requests

from appliance.etcd.client import EtcdClient, EtcdUnavailable
from appliance.sim.certificates import Authority
from appliance.sim.supervisor import etcd_binary
from tests.integration.conftest import Sim, run_cli, wait_until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    sim = Sim(tmp_path_factory.mktemp("tls"))
    try:
        sim.up(3, tls=True, agent_env=("LOOP_INTERVAL=2",))
        yield sim
    finally:
        sim.down()


def test_a_tls_cluster_bootstraps_with_https_urls_and_publishes_the_ssl_records(secured):
    members = secured.members()
    assert len(members) == 3
    assert all(u.startswith("https://") for m in members for u in m["peerURLs"] + m["clientURLs"]), members
    wait_until(secured.records_match, 60, "the -ssl SRV and A records to name the three members")
    assert not [name for name, _ in secured.records() if name.startswith(("_etcd-client._tcp", "_etcd-server._tcp"))]
    shown = run_cli("status", "--sim", "--state-dir", secured.state_dir, timeout=60)
    assert shown.returncode == 0 and "https://" in shown.stdout and "housekeeping (" in shown.stdout, \
        shown.stdout + shown.stderr
    leader = secured.leader()["id"]
    assert secured.agent_status(leader)["leader"] is True  # the status endpoint over HTTPS, verified
    # The staleness guard reads the heartbeat over TLS with the operator's certificate.
    guarded = run_cli("guard", "--endpoints", secured.endpoints(), "--max-staleness", "30", *secured.tls_flags(),
                      "--", "true", timeout=60)
    assert guarded.returncode == 0, guarded.stdout + guarded.stderr


def test_plain_http_and_certificates_of_another_ca_are_refused(secured, tmp_path):
    url = secured.leader()["client_url"]
    files, stranger = secured.tls, Authority(str(tmp_path / "other-ca"), "another CA").issue("intruder", server=False)
    assert EtcdClient([url], timeout=3, tls=files).member_list().members  # the operator's certificate works
    with pytest.raises(requests.ConnectionError):  # plain HTTP to a TLS port: etcd closes the connection
        requests.get(url.replace("https://", "http://") + "/version", timeout=3)
    no_certificate = requests.Session()
    with pytest.raises(requests.exceptions.SSLError):
        no_certificate.post(url + "/v3/cluster/member/list", data="{}", verify=files.ca_file, timeout=3)
    with pytest.raises(EtcdUnavailable, match="TLS"):  # a client certificate the cluster's CA did not sign
        EtcdClient([url], timeout=3, tls=dataclasses.replace(stranger, ca_file=files.ca_file)).member_list()
    with pytest.raises(EtcdUnavailable, match="certificate verify failed"):  # members not signed by the CA we trust
        EtcdClient([url], timeout=3, tls=stranger).member_list()
    # The status endpoints speak HTTPS only, too.
    ip = url.split("//", 1)[1].rsplit(":", 1)[0]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{ip}:2378/status", timeout=3)


def test_a_tls_cluster_heals_and_takes_verified_snapshots(secured):
    gone = secured.non_leader()["id"]
    assert secured.cli("terminate", gone).returncode == 0
    wait_until(lambda: (lambda s: s["healthy"] and gone not in {i["id"] for i in s["instances"]})(secured.status())
               or None, 120, "the replacement to join over TLS", interval=1)
    assert all(u.startswith("https://") for m in secured.members() for u in m["peerURLs"])
    # etcdctl snapshot save gets the CA and the client certificate in its environment.
    done = run_cli("backup", "--sim", "--state-dir", secured.state_dir, timeout=120)
    assert done.returncode == 0 and "verified" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("change,message", [
    ({"CLIENT_CERT_FILE": "/nonexistent/instance.pem"}, "CLIENT_CERT_FILE: cannot read /nonexistent/instance.pem"),
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
               DATA_DIR=str(tmp_path / "data"), ETCD_BINARY=etcd_binary(),
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
