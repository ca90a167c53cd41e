"""The upgrade lock and rolling rotations, with real etcd (3.4 and 3.5) and a client writing throughout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from appliance.model.keys import UPGRADE_KEY
from appliance.sim.supervisor import etcd_binary
from appliance.sim.writer import ContinuousWriter
from tests.integration.conftest import REPO, wait_until

# A holder of the upgrade lock that keeps its lease alive until killed, as an upgrading agent would.
HOLDER = """
import sys, time
from appliance.adapters.etcd import locks
from appliance.adapters.etcd.client import EtcdClient
from appliance.model.keys import UPGRADE_KEY
client = EtcdClient(sys.argv[1].split(","), timeout=2)
assert locks.take(client, UPGRADE_KEY, "i-0holder", 10) == "i-0holder"
lease = client.get(UPGRADE_KEY)[1]
print("held", flush=True)
for _ in range(600):
    client.lease_keepalive(lease)
    time.sleep(2)
"""


def lock_value(sim) -> str:
    done = sim.etcdctl("get", UPGRADE_KEY, "--print-value-only")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def cluster_version(sim) -> str:
    url = sim.status()["instances"][0]["client_url"]
    return requests.get(url + "/version", timeout=3).json()["etcdcluster"]


def all_present(sim, keys: list[str], prefix: str) -> list[str]:
    """The acknowledged keys missing from the cluster (read with etcdctl, linearizable)."""
    done = sim.etcdctl("get", prefix, "--prefix", "--keys-only")
    assert done.returncode == 0, done.stderr
    present = set(done.stdout.split())
    return [k for k in keys if k not in present]


# A soak test (`make test-all`) since TLS and checkov joined `make test`: the lock blocking removals and
# records is a row of tests/unit/rules/test_housekeeping.py and test_records.py, and the rolling upgrade below
# takes and releases it on a real cluster.
@pytest.mark.soak
def test_upgrade_lock_blocks_removals_until_its_holder_dies(sim_factory):
    sim = sim_factory("lock")
    sim.up(3)
    # Records lag the membership by a cycle or two; the lock must freeze a complete set.
    wait_until(sim.records_match, 30, "the records of the 3 members")
    published = sim.our_records()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, sim.endpoints()], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        victim = sim.non_leader()["id"]
        members_before = {m["name"] for m in sim.members()}
        assert sim.cli("terminate", victim).returncode == 0
        # The replacement joins (same etcd version: no lock needed), but the dead member stays:
        # the grace period is 5 s, and the leader says why it removes nothing.
        wait_until(lambda: "upgrade lock held by i-0holder" in sim.agent_status(sim.leader()["id"])["housekeeping"],
                   60, "the leader to see the lock")
        time.sleep(12)
        assert victim in {m["name"] for m in sim.members()}, "removed while the upgrade lock was held"
        assert members_before <= {m["name"] for m in sim.members()}
        assert holder.poll() is None, "the lock holder died early"
        assert sim.our_records() == published, "records changed while the upgrade lock was held"
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # the holder dies: no release, only lease expiry
        holder.wait(10)
    wait_until(lambda: lock_value(sim) == "", 20, "the lock to expire with its lease (TTL 10 s)")
    wait_until(lambda: victim not in {m["name"] for m in sim.members()}, 60, "the dead member's removal")
    sim.wait_healthy(60)


def test_rolling_upgrade_from_34_to_35_loses_no_acknowledged_write(sim_factory, etcd_old):
    sim = sim_factory("upgrade")
    sim.up(3, etcd_bin=etcd_old)
    assert cluster_version(sim) == "3.4.0"
    writer = ContinuousWriter(sim.state_dir, prefix="/upgrade/")
    writer.start()
    try:
        done = sim.cli("rotate", "--etcd-bin", etcd_binary(), timeout=600)
    finally:
        writer.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(writer.acknowledged) > 100, f"only {len(writer.acknowledged)} writes acknowledged"
    assert all_present(sim, writer.acknowledged, "/upgrade/") == []
    wait_until(lambda: cluster_version(sim) == "3.5.0", 30, "cluster version 3.5")
    assert lock_value(sim) == ""
    logs = "".join(sim.agent_log(i["id"]) for i in sim.status()["instances"])
    assert logs.count("upgrade lock: taken") == 3 and logs.count("upgrade lock released") == 3


# An extended test (`make test-all`) since the snapshots' tests joined `make test`: the join rule is a row of
# tests/unit/rules/test_bootstrap.py, and the rotation above runs the same rotate code on a newer binary.
@pytest.mark.extended  # a row of the bootstrap table in make test
def test_an_older_etcd_refuses_to_join(sim_factory, etcd_old):
    sim = sim_factory("downgrade")
    sim.up(3)
    before = {i["id"] for i in sim.status()["instances"]}
    done = sim.cli("rotate", "--etcd-bin", etcd_old, "--timeout", "20", timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "taking the new instance out again" in done.stdout
    newcomers = sorted(set(os.listdir(os.path.join(sim.state_dir, "instances"))) - before)
    assert newcomers, "no instance was launched"
    assert "refusing to join: this instance's etcd 3.4 is older than the cluster version 3.5" in \
        sim.agent_log(newcomers[0])
    status = sim.wait_healthy(60)
    assert {i["id"] for i in status["instances"]} == before


# With the extended tests: the launch-first rotation under a writer runs in `make test` (the rolling
# upgrade above), and the soak's rounds terminate members under writes too.
@pytest.mark.extended  # the launch-first rotation runs in make test
def test_terminate_first_rotation_loses_no_acknowledged_write(sim_factory):
    sim = sim_factory("rotate")
    sim.up(3)
    before = {i["id"] for i in sim.status()["instances"]}
    writer = ContinuousWriter(sim.state_dir, prefix="/rotate/")
    writer.start()
    try:
        done = sim.cli("rotate", "--terminate-first", timeout=600)
    finally:
        writer.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    after = {i["id"] for i in sim.wait_healthy(60)["instances"]}
    assert not before & after and len(after) == 3
    assert all_present(sim, writer.acknowledged, "/rotate/") == []
