"""The simulator's metadata service speaks IMDSv2 only, and the agent's client reads it."""

import pytest
import requests

from appliance.adapters.aws.metadata import MetadataClient
from appliance.sim.metadata_server import InstanceMetadata, MetadataServer, write_lifecycle


@pytest.fixture
def server(tmp_path):
    srv = MetadataServer()
    srv.register(InstanceMetadata("i-0abc0000", "eu-central-1", "eu-central-1b", "127.0.3.4",
                                  str(tmp_path / "lifecycle")))
    yield srv
    srv.close()


def test_identity_and_lifecycle_through_imdsv2(server, tmp_path):
    client = MetadataClient(server.endpoint("i-0abc0000"), timeout=2)
    identity = client.identity()
    assert (identity.instance_id, identity.region, identity.availability_zone, identity.private_ip) == \
        ("i-0abc0000", "eu-central-1", "eu-central-1b", "127.0.3.4")
    assert client.target_lifecycle_state() == "InService"
    write_lifecycle(str(tmp_path / "lifecycle"), "Terminated")
    assert client.target_lifecycle_state() == "Terminated"
    # A state Auto Scaling never writes is unknown (None), never taken for Terminated.
    write_lifecycle(str(tmp_path / "lifecycle"), "Terminated please")
    assert client.target_lifecycle_state() is None


def test_imdsv1_is_refused(server):
    base = server.endpoint("i-0abc0000")
    assert requests.get(base + "latest/meta-data/instance-id", timeout=2).status_code == 401
    assert requests.put(base + "latest/api/token", timeout=2).status_code == 400  # no TTL header


def test_other_instances_are_unknown(server):
    assert requests.put(server.endpoint("i-other") + "latest/api/token", timeout=2,
                        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}).status_code == 404


def test_a_public_address_is_read_only_when_asked_for_and_may_be_absent(server, tmp_path):
    client = MetadataClient(server.endpoint("i-0abc0000"), timeout=2)
    assert client.identity().public_ip is None and client.identity(public=True).public_ip is None
    server.register(InstanceMetadata("i-0b0b0000", "eu-central-1", "eu-central-1b", "127.0.3.5",
                                     str(tmp_path / "lifecycle"), public_ip="127.200.3.5"))
    assert MetadataClient(server.endpoint("i-0b0b0000"), timeout=2).identity(public=True).public_ip == "127.200.3.5"


def test_an_agent_told_to_advertise_a_public_address_it_lacks_exits_2(server, tmp_path):
    import os

    from appliance.sim.supervisor import etcd_binary
    from tests.integration.conftest import run_cli

    env = {**os.environ, "AWS_EC2_METADATA_SERVICE_ENDPOINT": server.endpoint("i-0abc0000"),
           "APPLIANCE_ETCD_BINARY": etcd_binary(), "DATA_DIR": str(tmp_path / "data"), "ADVERTISE_ADDRESS": "public",
           "ACTIVE_REGIONS": "eu-central-1,eu-west-1"}
    done = run_cli("run", env=env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ADVERTISE_ADDRESS=public, but the instance has no public IPv4 address" in done.stderr
    assert not (tmp_path / "data").exists()
