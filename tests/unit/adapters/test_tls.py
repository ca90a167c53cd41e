"""TLS settings and what they turn into: checked files, etcd's flags, https URLs, the -ssl record names."""

from __future__ import annotations

import pytest

from appliance.adapters.etcd import tls
from appliance.adapters.etcd.process import EtcdUrls, etcd_command
from appliance.commands.settings import load_agent_settings
from appliance.model.errors import ConfigError
from appliance.model.exit_codes import ExitCode
from appliance.rules import records
from appliance.sim.certificates import Authority

GOOD = {"DATA_DIR": "/tmp/etcd-data", "APPLIANCE_ETCD_BINARY": "/bin/sh"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """An instance's files, a peer certificate, and files that are wrong in one way each."""
    base = tmp_path_factory.mktemp("pki")
    authority, other = Authority(str(base / "ca")), Authority(str(base / "other"), "another CA")
    instance, peer = authority.issue_instance("i-1", ["10.0.1.4"]), authority.issue_instance("peer", ["10.0.1.4"])
    not_pem = base / "not.pem"
    not_pem.write_text("hello\n")
    return {"instance": instance, "peer": peer, "stranger": other.issue("stranger"), "other_ca": other.ca_file,
            "not_pem": str(not_pem)}


def client_env(files: tls.TlsFiles) -> dict:
    return {"CLIENT_CA_FILE": files.ca_file, "CLIENT_CERT_FILE": files.cert_file, "CLIENT_KEY_FILE": files.key_file}


def test_no_tls_settings_mean_plain_http():
    s = load_agent_settings({}, GOOD)
    assert s.client_tls is None and s.peer_tls is None


def test_client_files_serve_peers_too_unless_peer_files_are_given(pki):
    instance, peer = pki["instance"], pki["peer"]
    s = load_agent_settings({}, {**GOOD, **client_env(instance)})
    assert s.client_tls == instance and s.peer_tls == instance
    s = load_agent_settings({}, {**GOOD, **client_env(instance), "PEER_CA_FILE": peer.ca_file,
                                 "PEER_CERT_FILE": peer.cert_file, "PEER_KEY_FILE": peer.key_file})
    assert s.client_tls == instance and s.peer_tls == peer


@pytest.mark.parametrize("change,words", [
    ({"CLIENT_KEY_FILE": ""}, "CLIENT_CA_FILE, CLIENT_CERT_FILE, CLIENT_KEY_FILE go together: CLIENT_KEY_FILE missing"),
    ({"CLIENT_CERT_FILE": "certs/instance.pem"}, "CLIENT_CERT_FILE: must be an absolute path"),
    ({"CLIENT_CERT_FILE": "/nonexistent/instance.pem"}, "must be a readable regular file; there is none"),
    ({"CLIENT_CA_FILE": "not_pem"}, "CLIENT_CA_FILE: {not_pem} is not a PEM file"),
    ({"CLIENT_CA_FILE": "instance_cert"}, "holds no usable CA certificate (none may sign others)"),
    ({"CLIENT_KEY_FILE": "stranger_key"}, "are not a certificate and its key"),
    ({"CLIENT_CA_FILE": "other_ca"}, "CLIENT_CERT_FILE: {instance_cert} is not signed by a CA in {other_ca}"),
    ({"PEER_CERT_FILE": "instance_cert"}, "PEER_CA_FILE, PEER_CERT_FILE, PEER_KEY_FILE go together"),
], ids=["key-missing", "relative-path", "unreadable", "not-pem", "leaf-as-ca", "key-of-another-certificate",
        "signed-by-another-ca", "peer-files-incomplete"])
def test_bad_tls_settings_name_their_variable(pki, change, words):
    paths = {"not_pem": pki["not_pem"], "instance_cert": pki["instance"].cert_file,
             "stranger_key": pki["stranger"].key_file, "other_ca": pki["other_ca"]}
    env = {**GOOD, **client_env(pki["instance"]), **{k: paths.get(v, v) for k, v in change.items()}}
    with pytest.raises(ConfigError) as caught:
        load_agent_settings({}, env)
    assert words.format(**paths) in str(caught.value)
    assert caught.value.exit_code == ExitCode.CONFIG


def test_peer_tls_without_client_tls_is_refused(pki):
    peer = pki["peer"]
    with pytest.raises(ConfigError, match="PEER_KEY_FILE need CLIENT_CA_FILE"):
        load_agent_settings({}, {**GOOD, "PEER_CA_FILE": peer.ca_file, "PEER_CERT_FILE": peer.cert_file,
                                 "PEER_KEY_FILE": peer.key_file})


def test_etcd_requires_client_and_peer_certificates(pki):
    instance, peer = pki["instance"], pki["peer"]
    urls = EtcdUrls.for_ip("10.0.1.4", client_scheme="https", peer_scheme="https")
    cmd = etcd_command("etcd", "i-1", "/data", urls, None, "new", "token", client_tls=instance, peer_tls=peer)
    flags = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert "--client-cert-auth" in cmd and "--peer-client-cert-auth" in cmd
    assert (flags["--cert-file"], flags["--key-file"], flags["--trusted-ca-file"]) == (
        instance.cert_file, instance.key_file, instance.ca_file)
    assert cmd[cmd.index("--peer-cert-file") + 1] == peer.cert_file
    assert cmd[cmd.index("--peer-trusted-ca-file") + 1] == peer.ca_file
    assert cmd[cmd.index("--advertise-client-urls") + 1] == "https://10.0.1.4:2379"
    assert cmd[cmd.index("--initial-advertise-peer-urls") + 1] == "https://10.0.1.4:2380"
    # /metrics and /health stay plain HTTP, for scrapers and load balancers without certificates.
    assert cmd[cmd.index("--listen-metrics-urls") + 1] == "http://10.0.1.4:2381"
    plain = etcd_command("etcd", "i-1", "/data", EtcdUrls.for_ip("10.0.1.4"), None, "new", "token")
    assert not [arg for arg in plain if "cert" in arg or "https" in arg]


@pytest.mark.parametrize("on,client,write,read", [
    (False, "_etcd-client._tcp.etcd.example.org.", "_etcd-client-rw._tcp.svc.example.org.",
     "_etcd-client._tcp.svc.example.org."),
    (True, "_etcd-client-ssl._tcp.etcd.example.org.", "_etcd-client-ssl-rw._tcp.svc.example.org.",
     "_etcd-client-ssl._tcp.svc.example.org."),
], ids=["plain", "tls"])
def test_record_names_follow_etcds_ssl_convention(on, client, write, read):
    assert records.client_srv_name("etcd.example.org", on) == client
    assert records.write_record_name("svc.example.org", on) == write
    assert records.read_record_name("svc", "example.org", on) == read


def test_etcdctl_gets_the_files_in_its_environment(pki):
    files = pki["instance"]
    assert files.etcdctl_environment() == {"ETCDCTL_CACERT": files.ca_file, "ETCDCTL_CERT": files.cert_file,
                                           "ETCDCTL_KEY": files.key_file}
