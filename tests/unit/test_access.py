"""Roles per mode, the mode read back from permissions, the credentials file, the write record."""

import json
import os

import pytest

from appliance.cluster import access, records
from appliance.cluster.access import Mode
from appliance.errors import ConfigError
from appliance.etcd.client import Credentials, Permission


@pytest.mark.parametrize("mode, kind", [(Mode.ACTIVE, "READWRITE"), (Mode.PASSIVE, "READ")])
def test_the_client_role_reads_or_writes_its_prefix_and_reads_the_heartbeat(mode, kind):
    roles = access.role_permissions(mode, b"/app/")
    assert roles["client"] == (Permission(kind, b"/app/", b"/app0"),
                               Permission("READ", b"/__appliance/", b"/__appliance0"))
    assert roles["mirror"] == (Permission("READWRITE", b"\0", b"\0"),)
    assert access.mode_of(roles["client"], b"/app/") is mode


@pytest.mark.parametrize("permissions, expected", [
    (None, None),
    ((), None),
    ((Permission("READWRITE", b"/other/", b"/other0"),), None),
    ((Permission("READ", b"/app/", b"/app0"),), Mode.PASSIVE),
    ((Permission("WRITE", b"/app/", b"/app0"),), Mode.PASSIVE),  # not read-write: not what active means
])
def test_mode_of(permissions, expected):
    assert access.mode_of(permissions, b"/app/") is expected


def test_credentials_file_is_private_never_overwritten_and_validated(tmp_path):
    path = str(tmp_path / "c.json")
    made = access.create_credentials(path)
    assert set(made) == set(access.USERS) and oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert access.load_credentials(path) == made
    assert "password" not in repr(made["client"]) and made["client"].password not in repr(made["client"])
    with pytest.raises(ConfigError, match="cannot create it"):
        access.create_credentials(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        access.load_credentials(path)
    os.chmod(path, 0o600)
    with open(path, "w") as f:
        json.dump(["not", "a", "map"], f)
    with pytest.raises(ConfigError, match="user name to password"):
        access.load_credentials(path)
    with pytest.raises(ConfigError, match="cannot read it"):
        access.load_credentials(str(tmp_path / "missing.json"))
    with open(path, "w") as f:
        json.dump({"client": "x"}, f)
    with pytest.raises(ConfigError, match="no password for the user 'mirror'"):
        access.credentials_for(path, "mirror")
    assert access.credentials_for(path, "client") == Credentials("client", "x")


def test_the_write_record_copies_the_active_cluster_s_client_srv_and_no_leader_owns_it():
    source = records.RecordSet("_etcd-client._tcp.b.example.org.", "SRV", 60, ("1 1 2379 i-1.b.example.org.",))
    wanted = records.write_record("etcd.example.org", source)
    assert wanted == records.RecordSet("_etcd-client-rw._tcp.etcd.example.org.", "SRV", 60, source.values)
    assert not records.owned(wanted, "etcd.example.org.")
    assert records.client_srv_name("b.example.org") == "_etcd-client._tcp.b.example.org."
